"""No modelled rate exceeds the datasheet: every shipped profile on every catalog GPU, and every catalog entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwmodels.kernels import elementwise_rates
from hwmodels.profile import PROFILE_DIR, class_dtype, read_profile
from hwmodels.registry import catalog, load_gpu, load_nic, load_node
from simulator.analytic.profile import apply_profile, refusal, sol_rates

MEASURED_DIR = Path(__file__).parents[2] / "calibration" / "data" / "measured"
PROFILES = sorted(PROFILE_DIR.glob("*.json")) + sorted(MEASURED_DIR.glob("*profile*.json"))
GPUS = catalog("gpus")
SLACK = 1 + 1e-12  # float rounding of a rate scaled by two datasheets' ratio


def test_the_walk_sees_every_shipped_profile():
    names = {p.stem for p in PROFILES}
    assert {"h800-published", "cpu-measured", "h200-measured", "h200-profile-2026-12-04"} <= names


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("gpu_name", GPUS)
def test_no_profile_rate_exceeds_the_datasheet(path, gpu_name):
    # a profile from a catalog GPU applies as fractions of its peaks; one it may not price (a CPU's, a measured
    # one from another die) is refused with its reason
    gpu = load_gpu(gpu_name)
    profile = read_profile(path)
    reason = refusal(profile, gpu)
    if reason:
        with pytest.raises(ValueError) as err:
            apply_profile(profile, gpu)
        assert str(err.value) == reason
        return
    rates = apply_profile(profile, gpu)
    assert rates.fits
    for cls, fit in rates.fits.items():
        assert fit.bytes_per_s <= gpu.hbm_bw_bytes_per_s * SLACK, f"{cls}: {fit.bytes_per_s / 1e9:.0f} GB/s"
        if cls != "memory":  # the memory class does no FLOPs
            peak = gpu.peak_flop_per_s(class_dtype(cls))
            assert fit.flop_per_s <= peak * SLACK, f"{cls}: {fit.flop_per_s / 1e12:.0f} TFLOPS"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_a_profile_is_within_the_datasheet_it_was_measured_on(path):
    profile = read_profile(path)
    if profile.catalog_gpu is None:
        pytest.skip("measured outside the catalog: no datasheet of its own")
    gpu = load_gpu(profile.catalog_gpu)
    for cls, fit in profile.fits.items():
        assert fit.bytes_per_s <= gpu.hbm_bw_bytes_per_s * SLACK, cls
        assert cls == "memory" or fit.flop_per_s <= gpu.peak_flop_per_s(class_dtype(cls)) * SLACK, cls


@pytest.mark.parametrize("gpu_name", GPUS)
def test_speed_of_light_is_the_datasheet(gpu_name):
    gpu = load_gpu(gpu_name)
    for cls, fit in sol_rates(gpu).fits.items():
        assert fit.bytes_per_s == gpu.hbm_bw_bytes_per_s and fit.overhead_s == 0
        if cls != "memory":
            assert fit.flop_per_s == gpu.peak_flop_per_s(class_dtype(cls))


def test_element_wise_kernels_reach_at_most_the_datasheet():
    assert all(0 < share <= 1 for share in elementwise_rates().share.values())


@pytest.mark.parametrize("nic_name", catalog("nics"))
def test_no_nic_beats_its_line_rate(nic_name):
    nic = load_nic(nic_name)
    assert nic.effective_bw_bytes_per_s <= nic.bw_bytes_per_s


@pytest.mark.parametrize("node_name", catalog("nodes"))
def test_no_node_beats_its_links(node_name):
    node = load_node(node_name)
    assert 0 < node.scaleup_efficiency <= 1
    assert node.scaleup_achieved_bw_bytes_per_s <= node.gpu.scaleup_bw_bytes_per_s
    assert node.scaleout_achieved_bw_bytes_per_s_per_gpu <= node.scaleout_bw_bytes_per_s_per_gpu

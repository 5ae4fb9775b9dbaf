"""Calibration profiles: the fit, the JSON schema, the shipped profiles, and how the simulator applies them."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.fit import PUBLISHED_DIR, fit_kernel, published_profile
from hwmodels.profile import PROFILE_DIR, KernelFit, Sample, profile_from_dict, read_profile, write_profile
from hwmodels.registry import load_gpu, load_node
from simulator.analytic.profile import apply_profile, load_profile, rates_for, sol_rates
from simulator.analytic.report import estimate
from simulator.analytic.training import stage_times
from simulator.cli import main
from simulator.runspec import v3_pretraining
from workloads.gemms import gemm_bytes

H800 = load_gpu("h800")


def synthetic(flop_per_s: float, bytes_per_s: float, overhead_s: float, shapes) -> list[Sample]:
    out = []
    for m, n, k in shapes:
        flops, nbytes = 2.0 * m * n * k, gemm_bytes(m, n, k, 1, 2, 2)
        t = flops / flop_per_s + nbytes / bytes_per_s + overhead_s
        out.append(Sample("gemm", "bf16", flops, nbytes, t, m, n, k))
    return out


SHAPES = [(m, n, k) for m in (16, 256, 4096) for n, k in ((512, 7168), (7168, 2048), (24576, 1536))]


@given(
    st.floats(1e11, 2e15),  # FLOP/s, from a CPU core to a Hopper fp8 peak
    st.floats(1e10, 8e12),  # bytes/s
    st.floats(0, 1e-4),  # launch overhead, s
)
def test_fit_recovers_the_parameters_of_exact_data(flop_per_s, bytes_per_s, overhead_s):
    f = fit_kernel(synthetic(flop_per_s, bytes_per_s, overhead_s, SHAPES))
    # the fitted model reproduces every sample; identifiable terms come back themselves
    assert f.rel_rmse < 1e-6
    for s in synthetic(flop_per_s, bytes_per_s, overhead_s, SHAPES):
        assert f.time_s(s.flops, s.bytes) == pytest.approx(s.time_s, rel=1e-6)


def test_fit_gets_rates_right_where_the_samples_determine_them():
    f = fit_kernel(synthetic(1e15, 3e12, 5e-6, SHAPES))
    assert f.flop_per_s == pytest.approx(1e15, rel=1e-6)
    assert f.bytes_per_s == pytest.approx(3e12, rel=1e-6)
    assert f.overhead_s == pytest.approx(5e-6, rel=1e-6)


def test_fit_keeps_one_term_when_samples_are_too_few():
    f = fit_kernel([Sample("memory", "bf16", 0.0, 3e9, 1e-3)])
    assert f.bytes_per_s == pytest.approx(3e12) and f.overhead_s == 0 and math.isinf(f.flop_per_s)


@pytest.mark.parametrize("table", sorted(p.stem for p in PUBLISHED_DIR.glob("*.toml")))
def test_shipped_published_profiles_are_the_fit_of_their_tables(table):
    rebuilt = published_profile(PUBLISHED_DIR / f"{table}.toml")
    shipped = read_profile(PROFILE_DIR / f"{rebuilt.name}.json")
    assert shipped.fits == rebuilt.fits  # `v3sim calibrate publish` was run after the tables changed
    assert len(shipped.samples) == len(rebuilt.samples) and all(s.source for s in shipped.samples)


def test_published_samples_carry_the_published_rates():
    # deepseek-ai/DeepGEMM README (first release), H800: 4096 x 7168 x 16384 at 1358 TFLOPS, 343 GB/s
    p = read_profile(PROFILE_DIR / "h800-published.json")
    s = next(s for s in p.samples if (s.kernel, s.m, s.n, s.k) == ("gemm", 4096, 7168, 16384))
    assert s.flop_per_s == pytest.approx(1358e12)
    assert s.bytes / s.time_s == pytest.approx(343e9, rel=0.01)  # our byte count is theirs
    # the fit follows the table: large-M GEMMs near their measured rate, M = 64 far below (memory-bound)
    fit = p.fits["gemm_fp8"]
    assert fit.rel_rmse < 0.15
    big = fit.time_s(s.flops, s.bytes)
    assert s.flops / big == pytest.approx(1358e12, rel=0.1)
    small = next(s for s in p.samples if (s.kernel, s.m, s.n, s.k) == ("gemm", 64, 7168, 16384))
    assert small.flops / fit.time_s(small.flops, small.bytes) == pytest.approx(336e12, rel=0.15)


def test_profile_round_trips_through_json(tmp_path):
    p = read_profile(PROFILE_DIR / "h800-published.json")
    path = write_profile(p, tmp_path / "copy.json")
    assert read_profile(path) == p


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema="other"), "not a v3sim calibration profile"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.pop("fits"), "missing field 'fits'"),
        (lambda d: d["fits"].update(warp_speed_bf16={"flop_per_s": 1.0}), "unknown kernel class"),
        (lambda d: d["fits"]["gemm_fp8"].update(flop_per_s=-5), "must be > 0"),
        (lambda d: d["samples"][0].update(time_s=0), "time_s=0"),
        (lambda d: d["samples"][0].update(kernel="conv"), "sample kernel 'conv'"),
        (lambda d: d.update(kind="guessed"), "kind 'guessed'"),
    ],
)
def test_malformed_profiles_are_one_line_errors(tmp_path, edit, message):
    data = json.loads((PROFILE_DIR / "h800-published.json").read_text())
    edit(data)
    with pytest.raises(ValueError, match=message) as err:
        profile_from_dict(data, "bad.json")
    assert "\n" not in str(err.value) and str(err.value).startswith("bad.json")


def test_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_profile(path)


def test_speed_of_light_is_the_peaks():
    sol = sol_rates(H800)
    assert sol.time_s("gemm_fp8", 1.979e15) == pytest.approx(1.0)
    assert sol.time_s("memory", 0.0, 3.35e12) == pytest.approx(1.0)


def test_compute_time_follows_the_profile_rates():
    # Halving every GEMM rate of an overhead-free profile doubles the GEMM time of a stage, exactly.
    run = v3_pretraining(stage_layers=(4,) * 15 + (1,))
    sol = sol_rates(H800)
    slow = sol.scaled(0.5)
    assert stage_times(run, slow, 5).w == pytest.approx(2 * stage_times(run, sol, 5).w)
    # and the whole estimate ranks the profiles as their rates do
    steps = [estimate(run, rates_for(p, H800), check_memory=False).step_time_s for p in ("sol", "published")]
    assert steps[0] < steps[1]


def test_a_profile_from_another_gpu_applies_as_fractions_of_peak():
    p = load_profile("h800-published")
    a100 = load_gpu("a100")
    rates = apply_profile(p, a100)
    assert "gemm_fp8" not in rates.fits  # no fp8 tensor cores
    ratio = a100.peak_flop_per_s("bf16") / H800.peak_flop_per_s("bf16")
    assert rates.fits["gemm_bf16"].flop_per_s == pytest.approx(p.fits["gemm_bf16"].flop_per_s * ratio)
    with pytest.raises(ValueError, match=r"no gemm_fp8 fit.*--precision bf16"):
        rates.time_s("gemm_fp8", 1e12)
    run = v3_pretraining(node=load_node("a100-ib"), precision="bf16")
    assert estimate(run, rates, check_memory=False).step_time_s > estimate(v3_pretraining()).step_time_s


def test_published_picks_the_gpus_own_profile():
    assert rates_for("published", load_gpu("h100")).name == "h100-published"
    assert rates_for("published", H800).name == "h800-published"
    assert rates_for("published", load_gpu("b200")).name == "h800-published"  # scaled; noted
    assert any("fractions of its peaks" in n for n in rates_for("published", load_gpu("b200")).notes)


def test_unknown_profile_is_a_clear_error(capsys):
    assert main(["train", "--profile", "fastest"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'fastest'" in err and "sol" in err and err.count("\n") == 1


def test_train_runs_with_each_profile_kind(capsys):
    for choice in ("sol", "published", str(PROFILE_DIR / "h100-published.json")):
        assert main(["train", "--json", "--profile", choice]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["run"]["profile"] in ("sol", "h800-published", "h100-published")


def test_calibrate_show_and_publish(capsys, tmp_path):
    assert main(["calibrate", "show", "published"]) == 0
    out = capsys.readouterr().out
    assert "gemm_fp8" in out and "DeepGEMM" in out and "timed on the h200" in out  # bf16 GEMMs: our H200 run
    assert main(["calibrate", "publish", "--json", "--out-dir", str(tmp_path)]) == 0
    written = json.loads(capsys.readouterr().out)["written"]
    assert {p.rsplit("/", 1)[-1] for p in written} == {"h100-published.json", "h800-published.json"}
    assert main(["calibrate", "show", str(tmp_path / "nope.json")]) == 2


def test_kernel_fit_rejects_nonsense():
    with pytest.raises(ValueError):
        KernelFit(flop_per_s=0)
    with pytest.raises(ValueError):
        KernelFit()

"""Calibration profiles: the fit, the JSON schema, the shipped profiles, and how the simulator applies them."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.fit import PUBLISHED_DIR, fit_classes, fit_kernel, published_profile
from hwmodels.profile import (
    PROFILE_DIR,
    KernelFit,
    RateCaps,
    Sample,
    profile_from_dict,
    read_profile,
    write_profile,
)
from hwmodels.registry import load_gpu, load_node
from simulator.analytic.profile import apply_profile, load_profile, rates_for, sol_rates
from simulator.analytic.report import estimate
from simulator.analytic.training import stage_times
from simulator.cli import main
from simulator.runspec import v3_pretraining
from workloads.gemms import gemm_bytes

H800 = load_gpu("h800")
MEASURED_DIR = PUBLISHED_DIR.parent / "measured"


def synthetic(flop_per_s: float, bytes_per_s: float, overhead_s: float, shapes) -> list[Sample]:
    out = []
    for m, n, k in shapes:
        flops, nbytes = 2.0 * m * n * k, gemm_bytes(m, n, k, 1, 2, 2)
        t = max(flops / flop_per_s, nbytes / bytes_per_s) + overhead_s
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
    # with a datasheet, the term one sample cannot determine sits at it (not infinitely fast)
    f = fit_kernel(synthetic(5e14, 1e12, 0.0, SHAPES[:1]), RateCaps(989.5e12, 3.35e12))
    assert f.flop_per_s == pytest.approx(2 * 16 * 512 * 7168 / f.time_s(2 * 16 * 512 * 7168, 0.0))
    assert f.bytes_per_s == 3.35e12 and f.overhead_s == 0


def test_the_roofline_is_the_slower_term_plus_overhead():
    f = KernelFit(1e15, 2e12, 1e-6)
    assert f.time_s(1e12, 1e9) == pytest.approx(1e-3 + 1e-6)  # compute-bound: the bytes hide under it
    assert f.time_s(1e9, 1e10) == pytest.approx(5e-3 + 1e-6)  # memory-bound
    assert KernelFit(math.inf, 2e12).time_s(1e30, 1e10) == pytest.approx(5e-3)  # an infinite rate drops its term
    # a share of the SMs slows the FLOP term only: HBM is not split with them
    rates = sol_rates(H800)
    assert rates.time_s("gemm_bf16", 0.0, 3.35e9, sm_share=0.5) == pytest.approx(1e-3)
    assert rates.time_s("gemm_bf16", 989.5e9, 0.0, sm_share=0.5) == pytest.approx(2e-3)


def test_fit_stays_within_the_datasheet():
    # samples faster than a datasheet (L2-served bytes, a wrong peak) cannot pull the fit past it
    caps = RateCaps(989.5e12, 3.35e12)
    f = fit_kernel(synthetic(1.2e15, 5e12, 2e-6, SHAPES), caps)
    assert f.flop_per_s == caps.flop_per_s and f.bytes_per_s == caps.bytes_per_s
    # within the caps, exact data comes back exactly
    f = fit_kernel(synthetic(8e14, 3e12, 2e-6, SHAPES), caps)
    assert (f.flop_per_s, f.bytes_per_s, f.overhead_s) == pytest.approx((8e14, 3e12, 2e-6), rel=1e-6)


def test_a_rate_the_samples_do_not_determine_sits_at_the_datasheet():
    # compute-bound shapes only: the bytes term limits none of them, so it takes the HBM datasheet
    big = [(m, n, k) for m, n, k in SHAPES if m == 4096]
    f = fit_kernel(synthetic(8e14, 3e12, 2e-6, big), RateCaps(989.5e12, 3.35e12))
    assert f.flop_per_s == pytest.approx(8e14, rel=1e-6) and f.bytes_per_s == 3.35e12
    assert math.isinf(fit_kernel(synthetic(8e14, 3e12, 2e-6, big)).bytes_per_s)  # no datasheet: left out
    # the same bytes in every sample (FlashAttention's benchmarks hold batch x seq fixed) is a constant, told
    # from the overhead by nothing: the bytes rate stays at the datasheet, the constant goes to the overhead
    p = published_profile(PUBLISHED_DIR / "h800.toml")
    assert p.fits["attention_fwd_bf16"].bytes_per_s == H800.hbm_bw_bytes_per_s
    assert p.fits["attention_fwd_bf16"].overhead_s > 0


def test_a_series_timed_on_another_gpu_is_bounded_by_that_gpus_datasheet():
    # the H800's bf16 GEMMs were timed on an H200 (4.8 TB/s): fitted within it, then scaled by the datasheets
    p = published_profile(PUBLISHED_DIR / "h800.toml")
    h200 = fit_classes([s for s in p.samples if s.kernel_class == "gemm_bf16"], "h200")["gemm_bf16"]
    ratio = H800.hbm_bw_bytes_per_s / load_gpu("h200").hbm_bw_bytes_per_s
    assert p.fits["gemm_bf16"].bytes_per_s == pytest.approx(h200.bytes_per_s * ratio)
    assert h200.bytes_per_s > H800.hbm_bw_bytes_per_s  # an H200 rate, above the H800's datasheet before scaling


def same_fits(a: dict, b: dict) -> bool:
    """The same classes, each fit equal but for the last digits a least-squares solve leaves to the numpy and
    scipy builds installed (a fresh install picks the newest)."""
    if a.keys() != b.keys():
        return False
    for cls in a:
        x, y = asdict(a[cls]), asdict(b[cls])
        if any(x[k] != pytest.approx(y[k], rel=1e-6, abs=1e-15) if isinstance(x[k], float) else x[k] != y[k]
               for k in x):  # fmt: skip
            return False
    return True


@pytest.mark.parametrize("table", sorted(p.stem for p in PUBLISHED_DIR.glob("*.toml")))
def test_shipped_published_profiles_are_the_fit_of_their_tables(table):
    rebuilt = published_profile(PUBLISHED_DIR / f"{table}.toml")
    shipped = read_profile(PROFILE_DIR / f"{rebuilt.name}.json")
    assert same_fits(shipped.fits, rebuilt.fits)  # `v3sim calibrate publish` was run after the tables changed
    assert len(shipped.samples) == len(rebuilt.samples) and all(s.source for s in shipped.samples)


@pytest.mark.parametrize("path", [PROFILE_DIR / "cpu-measured.json", MEASURED_DIR / "h200-profile-2026-12-04.json"])
def test_shipped_measured_profiles_are_the_fit_of_their_samples(path, tmp_path):
    out = tmp_path / "refit.json"
    assert main(["calibrate", "refit", str(path), "--out", str(out), "--json"]) == 0
    refit, shipped = read_profile(out), read_profile(path)
    assert same_fits(refit.fits, shipped.fits)  # `v3sim calibrate refit` was run after the fit changed
    assert replace(refit, fits=shipped.fits) == shipped


def test_refit_takes_measured_profiles_only(capsys):
    assert main(["calibrate", "refit", "h800-published", "--out", "x.json"]) == 2
    assert "only a measured profile is refitted" in capsys.readouterr().err


def test_published_samples_carry_the_published_rates():
    # deepseek-ai/DeepGEMM README (first release), H800: 4096 x 7168 x 16384 at 1358 TFLOPS, 343 GB/s
    p = read_profile(PROFILE_DIR / "h800-published.json")
    s = next(s for s in p.samples if (s.kernel, s.m, s.n, s.k) == ("gemm", 4096, 7168, 16384))
    assert s.flop_per_s == pytest.approx(1358e12)
    assert s.bytes / s.time_s == pytest.approx(343e9, rel=0.01)  # our byte count is theirs
    # the fit follows the table: large-M GEMMs near their measured rate, M = 64 far below (memory-bound)
    fit = p.fits["gemm_fp8"]
    assert fit.rel_rmse < 0.2  # the roofline cannot follow the 590 TFLOPS row (K = 512), which pulls F down
    big = fit.time_s(s.flops, s.bytes)
    assert s.flops / big == pytest.approx(1358e12, rel=0.2)
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


def test_published_is_one_kernel_table_per_die():
    """The H100 and H800 are one die (GH100): the same published table gives them the same rates, so an FP8 run
    is not slower on the H100 than on the H800 for want of its own benchmark. The B200 has its own table (XLA's
    sm_100 GEMMs), which the GB200 shares; a die with none (the A100) is priced as fractions of its peaks, and
    its rates say that no source covers it."""
    h100 = rates_for("published", load_gpu("h100"))
    assert h100.name == rates_for("published", H800).name == "h800-published"
    for cls, fit in rates_for("published", H800).fits.items():
        assert h100.fits[cls].flop_per_s == pytest.approx(fit.flop_per_s)
        assert h100.fits[cls].bytes_per_s == pytest.approx(fit.bytes_per_s)
    assert any("the same die, gh100" in n for n in h100.notes)
    assert any("the same die, gh100" in n for n in rates_for("published", load_gpu("h200")).notes)
    assert rates_for("published", load_gpu("b200")).name == "b200-published"
    gb200 = rates_for("published", load_gpu("gb200"))
    assert gb200.name == "b200-published" and any("the same die, gb100" in n for n in gb200.notes)
    a100 = rates_for("published", load_gpu("a100"))
    assert a100.name == "h800-published" and any("another die" in n for n in a100.notes)


def test_unknown_profile_is_a_clear_error(capsys):
    assert main(["train", "--profile", "fastest"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'fastest'" in err and "sol" in err and err.count("\n") == 1


def test_train_runs_with_each_profile_kind(capsys):
    for choice in ("sol", "published", str(PROFILE_DIR / "h800-published.json")):
        assert main(["train", "--json", "--profile", choice]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["run"]["profile"] in ("sol", "h800-published")


def test_calibrate_show_and_publish(capsys, tmp_path):
    assert main(["calibrate", "show", "published"]) == 0
    out = capsys.readouterr().out
    assert "gemm_fp8" in out and "DeepGEMM" in out and "timed on the h200" in out  # bf16 GEMMs: our H200 run
    assert main(["calibrate", "publish", "--json", "--out-dir", str(tmp_path)]) == 0
    written = json.loads(capsys.readouterr().out)["written"]
    names = {p.rsplit("/", 1)[-1] for p in written}
    shipped = ("b200-published", "h800-published", "h800-v3-cutlass", "h800-v2-fa2", "h200-trtllm", "b200-trtllm",
               "h200-sglang", "mi300x-published")  # fmt: skip
    assert names == {f"{n}.json" for n in shipped}
    assert main(["calibrate", "show", str(tmp_path / "nope.json")]) == 2


def test_kernel_fit_rejects_nonsense():
    with pytest.raises(ValueError):
        KernelFit(flop_per_s=0)
    with pytest.raises(ValueError):
        KernelFit()

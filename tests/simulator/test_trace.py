"""`v3sim compare-trace`: a profiler trace's kernels classed and set beside what v3sim prices.

The committed reduction of DeepSeek's V3 training trace (calibration/data/measured/deepseek-v3-train-trace.toml:
kernel seconds per class, one example kernel name each; the trace itself states no licence and is not copied)
is turned back into a trace of one kernel per class, so CI needs no network. To regenerate the reduction,
download train.json from github.com/deepseek-ai/profile-data and sum `simulator.explore.trace.trace_table`.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from hwmodels.profile import PROFILE_DIR, read_profile
from simulator.analytic.profile import apply_profile, load_profile, published_for, rates_for
from simulator.cli import main
from simulator.explore.trace import classify, compare_trace, trace_kernels, trace_profile, trace_table
from simulator.explore.validate import training_run_rows
from simulator.runspec import v3_pretraining

REDUCED = Path(__file__).parents[2] / "calibration" / "data" / "measured" / "deepseek-v3-train-trace.toml"
CLASSES = tomllib.loads(REDUCED.read_text())


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory) -> Path:
    events = [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 5}]  # not a kernel: ignored
    ts = 0.0
    for row in CLASSES.values():
        events.append({"ph": "X", "cat": "kernel", "name": row["example"], "ts": ts, "dur": row["seconds"] * 1e6})
        ts += row["seconds"] * 1e6
    path = tmp_path_factory.mktemp("trace") / "train.json"
    path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": events}))
    return path


def test_each_example_kernel_lands_in_its_class():
    for cls, row in CLASSES.items():
        assert classify(row["example"]) == cls


def test_trace_table_sums_kernel_time_per_class(trace_file):
    table = trace_table(trace_kernels(trace_file))
    assert set(table) == set(CLASSES)
    for cls, row in CLASSES.items():
        assert table[cls][0] == pytest.approx(row["seconds"])


@pytest.fixture(scope="module")
def compared(trace_file):
    run = v3_pretraining()
    return {r["class"]: r for r in compare_trace(trace_file, run, rates_for(None, run.node.gpu))["rows"]}


def test_v3_compute_kernels_within_25_percent_of_the_trace(trace_file):
    run = v3_pretraining()
    out = compare_trace(trace_file, run, rates_for(None, run.node.gpu))
    assert out["compute_v3sim_s"] == pytest.approx(out["compute_trace_s"], rel=0.25)  # measured -14.6% (2026-12-07)
    assert out["compute_v3sim_s"] < out["compute_trace_s"]  # optimistic, as the GPU-hours are


def test_the_trace_ran_slower_wgrad_kernels_than_deepgemm_publishes(compared):
    """V3's trace ran DeepSeek's internal FP8 weight-gradient kernels; DeepGEMM's later ones (the published
    table v3sim prices) are faster: v3sim's wgrad time is a third short of the trace's."""
    assert -0.45 < compared["gemm_wgrad_fp8"]["rel_error"] < -0.25  # measured -34%


def test_gemm_and_attention_classes_within_25_percent(compared):
    for cls in (
        "grouped_gemm_fp8",
        "gemm_fp8",
        "attention_fwd_mla_bf16",
        "attention_bwd_mla_bf16",
        "ep_dispatch",
        "ep_combine",
    ):
        assert abs(compared[cls]["rel_error"]) <= 0.25, (cls, compared[cls]["rel_error"])  # worst: attention bwd +18%


def test_mla_attention_is_priced_as_its_own_shape(compared):
    """V3's attention (qk 192, v 128) is priced by the MLA-shaped kernel class (cuDNN's dsv3 benchmark on an
    H200), not FlashAttention-3's head-dim-128 rates: the trace's attention kernels are held against that class.
    Measured 2026-12-05: forward +8% -> +7%, backward -14% -> +18% (cuDNN's deterministic backward on the SMs
    DualPipe leaves runs slower than the kernels DeepSeek's trace ran)."""
    assert "attention_bwd_bf16" not in compared and "attention_fwd_bf16" not in compared
    assert 0 < compared["attention_bwd_mla_bf16"]["rel_error"] <= 0.25


def test_the_kernels_v3_ran_close_the_gemm_gap_from_kernel_sources(trace_file, compared):
    """Priced as the kernels V3 ran (h800-v3-cutlass: DeepGEMM's rates over its published speedups against the
    internal CUTLASS kernels the trace names), every FP8 GEMM class moves toward the trace, no rate read from it:
    wgrad -34% -> -21%, dense -5% -> +0%, grouped -3% -> +14% (measured 2026-12-05); compute -14.3% -> -7.1%."""
    run = v3_pretraining()
    out = compare_trace(trace_file, run, rates_for("h800-v3-cutlass", run.node.gpu))
    assert out["profile"] == "h800-v3-cutlass"
    as_ran = {r["class"]: r for r in out["rows"]}
    for cls in ("gemm_wgrad_fp8", "gemm_fp8", "grouped_gemm_fp8"):
        assert as_ran[cls]["v3sim_s"] > compared[cls]["v3sim_s"]  # the older kernels are slower
        assert abs(as_ran[cls]["rel_error"]) <= 0.25, (cls, as_ran[cls]["rel_error"])
    assert abs(as_ran["gemm_wgrad_fp8"]["rel_error"]) < abs(compared["gemm_wgrad_fp8"]["rel_error"])
    base = compare_trace(trace_file, run, rates_for(None, run.node.gpu))
    gap = out["compute_v3sim_s"] / out["compute_trace_s"] - 1
    assert base["compute_v3sim_s"] / base["compute_trace_s"] - 1 < gap < 0  # closer, still optimistic


@pytest.mark.xfail(
    strict=True,
    reason="issue 20's bar, not met by the kernel-level sources: FP8 wgrad -34% (the trace's kernels are slower "
    "than DeepGEMM's), casts -46%, forward norms -62%, copies -75%, permutes -40% (the trace's 0.7 ms of "
    "index-mapping kernels are not in v3sim's list; its data movement lands at -10%), "
    "MLA attention backward +18% (cuDNN's deterministic kernel), "
    "dequants -35%, DeepEP notify kernels (33 ms) not priced (measured on this reduction, 2026-12-07; "
    "the trace-derived profile matches every compute class by construction, which is in sample)",
)
def test_every_class_within_15_percent(compared):
    assert all(r["rel_error"] is not None and abs(r["rel_error"]) <= 0.15 for r in compared.values())


def test_norm_backward_is_priced_from_a_kernel_benchmark_out_of_sample(compared):
    """The norms' backward kernels (a reduction over the hidden size) are a class of their own, at the share of
    the HBM datasheet NVIDIA's norm benchmark measured for torch.compile's RMSNorm backward on an H200 (35.6%,
    hwmodels/data/kernels/elementwise.toml), no rate read from the trace: V3's ln_bwd kernels land within 15%
    (measured +3%, 2026-12-05; at the forward's share, as before, they were -45%). The forward norms stay
    short (-58%): the trace's ln_fwd kernels run at a third of what any kernel benchmark of them reaches."""
    row = compared["norm_backward"]
    assert CLASSES["norm_backward"]["kernels"] == 32 and abs(row["rel_error"]) <= 0.15
    assert compared["norm"]["rel_error"] < -0.3


def test_cli_compare_trace(capsys, trace_file, tmp_path):
    assert main(["compare-trace", str(trace_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layers"] == 4 and {r["class"] for r in out["rows"]} >= {"gemm_fp8", "ep_dispatch", "cast"}
    assert main(["compare-trace", str(trace_file)]) == 0
    assert "compute kernels: trace" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"traceEvents": [{"cat": "cpu_op", "name": "x", "dur": 1}]}')
    assert main(["compare-trace", str(bad)]) == 2
    assert "no GPU kernel events" in capsys.readouterr().err
    assert main(["compare-trace", str(trace_file), "--model", "llama-3.1-8b", "--ep", "1"]) == 2


SHIPPED_TRACE_PROFILE = PROFILE_DIR / "trace-deepseek-v3-train.json"


@pytest.fixture(scope="module")
def traced_profile(trace_file):
    run = v3_pretraining()
    return trace_profile(trace_file, run, load_profile(published_for(run.node.gpu)))


def test_calibrate_trace_rebuilds_the_shipped_profile_from_the_reduction(traced_profile):
    """The shipped profile was written by `v3sim calibrate trace` from DeepSeek's train.json; the committed
    reduction (class sums) gives the same rates, so CI checks the shipped file without the trace."""
    shipped = read_profile(SHIPPED_TRACE_PROFILE)
    assert "sha256" in shipped.source and "train.json" in shipped.source
    assert set(shipped.fits) == set(traced_profile.fits)
    for cls, fit in shipped.fits.items():
        assert fit.flop_per_s == pytest.approx(traced_profile.fits[cls].flop_per_s, rel=1e-4), cls
        assert fit.bytes_per_s == pytest.approx(traced_profile.fits[cls].bytes_per_s, rel=1e-4), cls
    assert shipped.elementwise_share == pytest.approx(traced_profile.elementwise_share, rel=1e-4)


def test_the_trace_profile_prices_each_class_it_took_at_the_traces_time(trace_file, traced_profile):
    """Every compute and element-wise class the trace holds comes out at the trace's seconds; the link classes
    are not taken. An element-wise class keeps its fixed cost per kernel; its share is solved so that the class
    sums to the trace, and no share is above the datasheet (permute was, while v3sim counted its backward at
    twice the bf16 bytes: the trace's kernels would have moved them faster than HBM can)."""
    run = v3_pretraining()
    rows = {r["class"]: r for r in compare_trace(trace_file, run, apply_profile(traced_profile, run.node.gpu))["rows"]}
    for cls in ("gemm_wgrad_fp8", "grouped_gemm_fp8", "gemm_fp8", "attention_bwd_mla_bf16"):
        assert rows[cls]["rel_error"] == pytest.approx(0, abs=1e-6), cls
    for cls in ("cast", "norm", "copy", "cast_transpose", "swiglu", "combine", "permute"):
        assert rows[cls]["rel_error"] == pytest.approx(0, abs=1e-6), cls
    assert all(0 < share < 1 for share in traced_profile.elementwise_share.values())
    assert not any("above the HBM datasheet" in n for n in traced_profile.notes)
    assert rows["ep_notify"]["v3sim_s"] == 0 and rows["ep_combine"]["rel_error"] < -0.1
    assert any("ep_notify" in n for n in traced_profile.notes)


def test_v3_priced_from_its_own_trace_lands_in_sample_and_says_so():
    rows = {r["figure"]: r for r in training_run_rows()}
    traced = rows["V3 pre-training H800 GPU-hours, kernels at the rates of V3's own trace"]
    assert traced["in_sample"] and abs(traced["rel_error"]) < 0.10  # measured -1.5%
    assert not rows["V3 pre-training H800 GPU-hours"]["in_sample"]


def test_profile_element_wise_shares_are_checked(tmp_path):
    data = json.loads(SHIPPED_TRACE_PROFILE.read_text())
    for bad, match in (({"cast": 1.5}, "must be in"), ({"warp": 0.5}, "unknown element-wise class"),
                       ({"cast": "fast"}, "must be a number")):  # fmt: skip
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({**data, "elementwise_share": bad}))
        with pytest.raises(ValueError, match=match):
            read_profile(path)


def test_cli_calibrate_trace(capsys, trace_file, tmp_path):
    out = tmp_path / "t.json"
    assert main(["calibrate", "trace", str(trace_file), "--out", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["command"] == "trace" and shown["elementwise_share"]["norm"] < 0.5 and out.is_file()
    assert main(["train", "--profile", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run"]["profile"].startswith("trace-")
    assert main(["calibrate", "trace", str(trace_file), "--out", str(tmp_path / "t.txt")]) == 2
    assert main(["calibrate", "trace", str(trace_file), "--out", str(out), "--model", "llama-3.1-8b"]) == 2
    assert "dense" in capsys.readouterr().err

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

from simulator.analytic.profile import rates_for
from simulator.cli import main
from simulator.explore.trace import classify, compare_trace, trace_kernels, trace_table
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
    assert out["compute_v3sim_s"] == pytest.approx(out["compute_trace_s"], rel=0.25)  # measured -20.9%
    assert out["compute_v3sim_s"] < out["compute_trace_s"]  # optimistic, as the GPU-hours are


def test_the_trace_ran_slower_wgrad_kernels_than_deepgemm_publishes(compared):
    """V3's trace ran DeepSeek's internal FP8 weight-gradient kernels; DeepGEMM's later ones (the published
    table v3sim prices) are faster: v3sim's wgrad time is a third short of the trace's."""
    assert -0.45 < compared["gemm_wgrad_fp8"]["rel_error"] < -0.25  # measured -34%


def test_gemm_and_attention_classes_within_25_percent(compared):
    for cls in (
        "grouped_gemm_fp8",
        "gemm_fp8",
        "attention_fwd_bf16",
        "attention_bwd_bf16",
        "ep_dispatch",
        "ep_combine",
    ):
        assert abs(compared[cls]["rel_error"]) <= 0.25, (cls, compared[cls]["rel_error"])  # worst: gemm_fp8 -15%


@pytest.mark.xfail(
    strict=True,
    reason="issue 20's bar, not met yet: FP8 wgrad -34% (the trace's kernels are slower than DeepGEMM's), casts "
    "-60%, norms -63%, copies -66%, combine +71%, DeepEP notify kernels (33 ms) not priced, dense FP8 GEMMs -20% "
    "(measured on this reduction, 2026-12-04)",
)
def test_every_class_within_15_percent(compared):
    assert all(r["rel_error"] is not None and abs(r["rel_error"]) <= 0.15 for r in compared.values())


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

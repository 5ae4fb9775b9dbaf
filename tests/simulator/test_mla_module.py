"""TensorRT-LLM's whole MLA decode module, as AIConfigurator timed it on an H200, beside v3sim's sum of the same ops.

Source: calibration/data/published/aic-mla-module-excerpt.csv (24 rows of AIConfigurator's mla_generation_module
table, Apache-2.0): the attention half of one DeepSeek-V3 decode step (projections, latent norms, RoPE, the
absorbed attention, the output projection; no all-reduce) under a CUDA graph, at 16 and 128 local heads (TP8,
attention DP), FP8 block GEMMs, bf16 and FP8 caches. v3sim prices the same half as its operation list
(`simulator.analytic.serving`, the `h200-trtllm` profile: the GEMMs, the attention looked up where timed, the
element-wise kernels at their die's fixed cost). Nothing here was read to set an input.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from simulator.analytic.profile import rates_for
from simulator.analytic.serving import _priced_layer_ops
from simulator.presets import deployment

EXCERPT = Path(__file__).parents[2] / "calibration" / "data" / "published" / "aic-mla-module-excerpt.csv"


def attention_half_s(heads: int, batch: int, cached: int, kv_dtype: str) -> float:
    """v3sim's seconds of the ops the module runs, on one GPU of a TP (128 / heads) instance at `batch` sequences."""
    tp = 128 // heads
    s = deployment("deepseek-v3", gpu="h200", weight_dtype="fp8", tp=tp, ep=8, redundant=0, kv_dtype=kv_dtype,
                   engine="trtllm", overlap="none", context=cached)  # fmt: skip
    rates = rates_for("h200-trtllm", s.node.gpu)
    per_gpu = batch / tp  # a TP group's GPUs share its sequences
    ops = _priced_layer_ops(s, rates, True, per_gpu, per_gpu, cached, "decode", 0.0, 1.0, 1.0)
    return sum(
        t for op, t in ops if op.part == "attn" and op.kind != "collective" and not op.name.startswith("add_norm")
    )


@pytest.fixture(scope="module")
def errors() -> list[float]:
    lines = [line for line in EXCERPT.read_text().splitlines() if not line.startswith("#")]
    out = []
    for r in csv.DictReader(lines):
        kv = "fp8" if r["kv_cache_dtype"] == "fp8" else "bf16"
        priced = attention_half_s(int(r["num_heads"]), int(r["batch_size"]), int(r["step"]), kv)
        out.append(priced / (float(r["latency"]) * 1e-3) - 1)
    return out


def test_v3sims_ops_price_the_module_under_its_timing(errors):
    """The module runs kernels v3sim's list does not name (such as the absorbed attention's second batched GEMM,
    the GEMMs' input quantization, the attention's split-KV combine: not yet read from TensorRT-LLM's code): its
    sum reads under the timing, by ~20% (measured 2026-12-07 over these rows: median -19%, -30% to +4%; over 624
    of the table's shapes at 16, 32 and 128 heads the median is -18% to -25% by heads and cache). At 4.6 us an
    element-wise kernel, the fixed cost the copy fit's intercept had put on every kernel, the same sum read -2%
    to +9%: the two errors hid each other."""
    assert len(errors) == 24
    assert -0.30 < statistics.median(errors) < -0.10
    assert max(errors) < 0.10


@pytest.mark.xfail(strict=True, reason="issue 27's kernel-level bar: the module's own kernels, not listed yet")
def test_every_module_timing_within_15_percent(errors):
    assert all(abs(e) <= 0.15 for e in errors)

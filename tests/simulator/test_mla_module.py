"""TensorRT-LLM's whole MLA decode module, as AIConfigurator timed it on an H200, beside v3sim's sum of the same ops.

Source: calibration/data/published/aic-mla-module-excerpt.csv (24 rows of AIConfigurator's mla_generation_module
table, Apache-2.0): the attention half of one DeepSeek-V3 decode step (projections, latent norms, RoPE, the
absorbed attention, the output projection; no all-reduce) under a CUDA graph, at 16 and 128 local heads (TP8,
attention DP), FP8 block GEMMs, bf16 and FP8 caches. v3sim prices the same half as its operation list
(`simulator.analytic.serving`, the `h200-trtllm` profile: the projections as TensorRT-LLM's Linear timed, the
attention looked up, the element-wise kernels at their die's fixed cost). Nothing here was read to set an input.
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


def test_v3sims_ops_price_the_module_within_20_percent(errors):
    """Each of the module's timings within 20% of v3sim's sum of its ops (measured 2026-12-07: median +10%, +2.6% to
    +17%). Every op is priced from its own kernel timing: TensorRT-LLM's projections as its Linear timed by shape
    (hwmodels/data/kernels/gemm), its MLA decode kernel at TP8's and TP4's 16 and 32 local heads, and the absorbed
    attention's two batched GEMMs as AIConfigurator timed them (hwmodels/data/kernels/mla_bmm: on Hopper FP8 with
    their activation's 1x128 quantize, 28 + 35 us at 128 heads and 128 tokens, where one GEMM op of their FLOPs
    and weights had priced them at 8.5). Before that split the sum read -6% (-13% to -1%): the BMMs' shortfall hid
    what now reads over; with the profile's fits for the projections, -19% (-30% to +4%)."""
    assert len(errors) == 24
    assert all(abs(e) <= 0.20 for e in errors)


def test_the_sum_of_kernels_timed_alone_reads_over_the_module(errors):
    """What is left reads over the timing in every row: kernels timed one at a time, each its own graph of repeated
    calls, cost more summed than back to back in the module's one graph (each keeps its full fixed cost in v3sim's
    sum; how much of it overlaps in a graph is not measured here). RoPE is not priced twice: the timed MLA generation
    op runs it inside (collector/trtllm/collect_mla.py: mla_rope_generation, then the attention), and under
    TensorRT-LLM v3sim's list drops its own."""
    assert 0.0 < statistics.median(errors) < 0.15 and min(errors) > 0.0

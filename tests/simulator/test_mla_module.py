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


def test_v3sims_ops_price_the_module_within_15_percent(errors):
    """Issue 27's kernel-level bar: each of the module's timings within 15% of v3sim's sum of its ops (measured
    2026-12-07: median -6%, -13% to -1%). It held once v3sim priced TensorRT-LLM's projections as its own Linear
    timed by shape (hwmodels/data/kernels/gemm: on Hopper its own 1x128 block-FP8 kernel, 1.1-2x the time of
    DeepGEMM's published rates at decode's few tokens) and its MLA decode kernel at TP8's and TP4's 16 and 32 local
    heads as timed; with the profile's fits instead the same sum read -19% (-30% to +4%)."""
    assert len(errors) == 24
    assert all(abs(e) <= 0.15 for e in errors)


def test_the_module_runs_kernels_v3sims_list_does_not_name(errors):
    """What is left reads under the timing, not over: the absorbed attention's two batched GEMMs run as one GEMM op
    in v3sim's list, without the input quantization TensorRT-LLM's FP8 BMMs run on Hopper before each (attention.py
    forward_absorption_generation, fp8_block_scaling_bmm_out; AIConfigurator times them as mla_bmm_gen_pre/post)."""
    assert -0.10 < statistics.median(errors) < 0.0 and max(errors) < 0.0

"""The oracle: FLOPs counted on the real layers (meta, full size) and KV bytes read off the real cache."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from calibration.oracle import (
    count_flops,
    flop_comparison,
    kv_comparison,
    measured_flops_breakdown,
    measured_kv_bytes_per_token,
)
from workloads.flops import forward_flops_breakdown
from workloads.memory import kv_bytes_per_token_per_layer
from workloads.registry import load_model, model_slugs

SLUGS = model_slugs()
TOLERANCE = 0.01  # DESIGN.md: the oracle and the formulas agree within 1% (in practice, exactly)


def test_counter_charges_2mnk_forward_and_twice_that_backward():
    linear = nn.Linear(32, 16, bias=False, device="meta")
    fwd, bwd = count_flops(linear, torch.empty(10, 32, device="meta", requires_grad=True))
    assert fwd == {"aten.mm": 2 * 10 * 32 * 16}
    assert bwd == {"aten.mm": 2 * 2 * 10 * 32 * 16}


@pytest.mark.parametrize("slug", SLUGS)
def test_measured_flops_agree_with_analytic_per_component(slug):
    spec = load_model(slug)
    rows = flop_comparison(spec, seq_len=4096)
    assert {r["component"] for r in rows} >= {"attn_core", "routed_experts:train", "total", "total:train"}
    off = {r["component"]: r["rel_error"] for r in rows if abs(r["rel_error"]) > TOLERANCE}
    assert not off
    positive = {r["component"] for r in rows if r["analytic_flops"] > 0}
    assert all(r["measured_flops"] > 0 for r in rows if r["component"] in positive)


def test_attention_core_counts_the_dense_square_and_causal_is_a_fixed_share():
    spec, seq = load_model("deepseek-v3"), 1024
    measured = measured_flops_breakdown(spec, seq)["attn_core"][0]
    causal = forward_flops_breakdown(spec, seq, causal=True)["attn_core"]
    assert causal == pytest.approx(measured * (seq + 1) / (2 * seq), rel=1e-12)


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("dtype", ["bf16", "fp8", "fp32"])
def test_kv_bytes_read_off_the_cache_equal_analytic_exactly(slug, dtype):
    spec = load_model(slug)
    assert measured_kv_bytes_per_token(spec, dtype) == kv_bytes_per_token_per_layer(spec, dtype)


def test_kv_comparison_rows_and_bad_dtype():
    rows = kv_comparison(load_model("deepseek-v3"))
    assert [(r["dtype"], r["measured_bytes"], r["cached"]) for r in rows] == [
        ("bf16", 1152, "latent + rope key"),
        ("fp8", 576, "latent + rope key"),
    ]
    with pytest.raises(ValueError, match="unknown dtype"):
        measured_kv_bytes_per_token(load_model("llama-3.1-8b"), "int3")

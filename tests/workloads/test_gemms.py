"""GEMM shapes: their FLOPs are the analytic weight FLOPs, and backward shapes keep them."""

from __future__ import annotations

import pytest

from workloads.flops import layer_forward_flops
from workloads.gemms import ffn_gemms, head_gemms, layer_gemms
from workloads.registry import load_model, model_slugs


@pytest.mark.parametrize("slug", model_slugs())
def test_layer_gemm_flops_are_the_weight_flops(slug):
    spec = load_model(slug)
    for moe in (False, True) if spec.is_moe else (False,):
        expected = layer_forward_flops(spec, moe, ctx=1.0)
        got: dict[str, float] = {}
        for g in layer_gemms(spec, moe, tokens=1.0):
            got[g.component] = got.get(g.component, 0.0) + g.flops
            assert g.dgrad().flops == pytest.approx(g.flops) and g.wgrad().flops == pytest.approx(g.flops)
        assert got == pytest.approx({k: v for k, v in expected.items() if k in got}, rel=1e-12)
        assert set(got) | {"attn_core"} >= {k for k, v in expected.items() if v}


def test_experts_spread_over_the_ep_group():
    v3 = load_model("deepseek-v3")
    # EP64: 4 experts per GPU; 4096 tokens x top-8 pairs land as 8192 tokens per local expert
    experts = [g for g in ffn_gemms(v3, True, 4096, ep=64) if g.component == "routed_experts"]
    assert {(g.groups, g.m) for g in experts} == {(4, 8192)}
    assert experts[0].n == 2 * 2048 and experts[0].k == 7168  # gate and up fused
    # the FLOPs do not depend on how the experts are spread
    spread = [g for g in ffn_gemms(v3, True, 4096, ep=1) if g.component == "routed_experts"]
    assert sum(g.flops for g in experts) == pytest.approx(sum(g.flops for g in spread))


def test_head_runs_once_per_prediction_depth():
    v3 = load_model("deepseek-v3")
    head, eh = head_gemms(v3, 10, mtp_depths=1)
    assert head.m == 20 and head.n == v3.vocab_size
    assert eh.k == 2 * v3.hidden_size and eh.groups == 1

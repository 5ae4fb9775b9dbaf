"""Attention tensor parallelism in serving's operation list: what every rank of a TP group runs whole on all the
group's tokens (MLA's down projections, their latent's norms and casts, the router where the experts sit on the
group), what it splits (heads, the shared experts), and SGLang's scattered attention input.

Sources: TensorRT-LLM docs "Parallelism in TensorRT-LLM" ("DeepSeek-R1: the fused_A GEMM is not sharded"),
TensorRT-LLM modeling_deepseekv3.py `_compute_shared_expert_tp_size`, SGLang pull 10568 (Ant Group, H20 TP8 prefill,
`--enable-attn-tp-input-scattered`: fused_qkv_a_proj_with_mqa 205.1 -> 26.14 ms).
"""

from __future__ import annotations

import json

import pytest

from simulator.analytic.profile import rates_for
from simulator.analytic.serving import _priced_layer_ops, spec_layer_ops
from simulator.cli import main
from simulator.presets import deployment
from workloads.registry import load_model
from workloads.servingops import REPLICATED_KERNELS, serving_layer_ops

V3 = load_model("deepseek-v3")


def ops(tp: int, ep: int, tokens: float = 64.0, phase: str = "decode", scattered: bool = False) -> dict:
    layer = serving_layer_ops(V3, True, tokens, tokens, 2048.0, phase, tp, ep, scattered=scattered)
    return {op.name: op for op in layer}


def test_mla_down_projections_run_whole_on_every_rank_over_the_groups_tokens():
    """Per GPU, TP8 runs q_a_proj and kv_a_proj_with_mqa on all 8 x 64 tokens at full width (the FLOPs of the
    whole GEMM), where the up projections and o_proj run 1/8 of theirs; scattered, 1/8 of the tokens again."""
    one, tp8, scattered = ops(1, 8, 8 * 64.0), ops(8, 8), ops(8, 8, scattered=True)
    for name in ("q_a_proj", "kv_a_proj_with_mqa"):
        assert tp8[name].flops == pytest.approx(one[name].flops)
        assert scattered[name].flops == pytest.approx(one[name].flops / 8)
        assert scattered[name].hbm_bytes > one[name].hbm_bytes / 8  # whole weights on every rank
    for name in ("q_b_proj", "kv_b_proj", "o_proj"):
        assert tp8[name].flops == pytest.approx(one[name].flops / 8)
        assert scattered[name].flops == tp8[name].flops


def test_the_scattered_input_all_gathers_the_latent_only():
    """(tp - 1) / tp of the group's latent (q 1536 + kv 512 + RoPE key 64, bf16) reaches each GPU; no all-gather
    without TP, without --attn-tp-scattered, or for attention without a latent (GQA)."""
    gather = ops(8, 8, scattered=True)["all_gather.latent"]
    assert gather.nvlink_bytes == pytest.approx(7 / 8 * 8 * 64 * (1536 + 512 + 64) * 2)
    assert "all_gather.latent" not in ops(8, 8)
    assert "all_gather.latent" not in ops(1, 8, scattered=True)
    llama = load_model("llama-3.1-70b")
    names = {op.name for op in serving_layer_ops(llama, False, 64.0, 64.0, 2048.0, "decode", 8, scattered=True)}
    assert "all_gather.latent" not in names


def test_the_latent_norms_and_casts_run_on_all_the_groups_tokens():
    """The down projections' latent is every rank's, for all the group's tokens: its norms and casts run on them
    all; heads, shards, expert copies and the norms after the all-reduces (fused into it) stay 1/tp."""
    one, tp8, scattered = ops(1, 8, 8 * 64.0), ops(8, 8), ops(8, 8, scattered=True)
    for name in REPLICATED_KERNELS:
        assert tp8[name].hbm_bytes == pytest.approx(one[name].hbm_bytes)
        assert scattered[name].hbm_bytes == tp8[name].hbm_bytes  # after the latent's all-gather
    for name in ("rope", "cast.o_proj_input", "swiglu", "permute", "add_norm.attn", "add_norm.mlp"):
        assert tp8[name].hbm_bytes == pytest.approx(one[name].hbm_bytes / 8)


def test_with_the_experts_on_the_group_the_router_is_whole_and_the_shared_experts_split():
    """TP8 with EP8 (experts on the attention TP group): every rank routes all the group's tokens and holds 1/8 of
    the shared expert's weights (TensorRT-LLM's shared_tp_size = tp). Attention DP (tp 1) keeps both on a GPU's
    own tokens with whole shared weights."""
    one, tp8 = ops(1, 8, 8 * 64.0), ops(8, 8)
    assert tp8["gate"].flops == pytest.approx(one["gate"].flops)
    assert tp8["router_topk"].hbm_bytes == pytest.approx(one["router_topk"].hbm_bytes)
    dp8 = ops(1, 8)
    small_tp8, small_dp8 = ops(8, 8, tokens=2.0), ops(1, 8, tokens=2.0)  # a decode step's weights dominate its bytes
    for name in ("shared_experts.gate_up", "shared_experts.down"):
        assert tp8[name].flops == pytest.approx(one[name].flops / 8)
        assert tp8[name].flops == pytest.approx(dp8[name].flops)  # the same FLOPs per GPU as attention DP's
        assert small_tp8[name].hbm_bytes < small_dp8[name].hbm_bytes / 6  # an eighth of the weights, not all


def test_scattering_cuts_the_down_projections_as_ant_groups_profile_measured():
    """SGLang pull 10568 (Ant Group's H20 TP8 prefill, 16K-token chunks): fused_qkv_a_proj_with_mqa 205.1 ->
    26.14 ms once the attention's input is scattered. v3sim's prices of the same GEMMs on the H20 (DeepSeek-V3,
    TP8, 2,048 prompt tokens per GPU) move by the same factor within 15%."""
    rates = rates_for(None, deployment("deepseek-v3", "h20").node.gpu)

    def seconds(scattered: bool) -> float:
        s = deployment("deepseek-v3", "h20", tp=8, prefill_ep=8, attn_tp_scattered=scattered).for_prefill()
        priced = _priced_layer_ops(s, rates, True, 2048.0, 2048.0, 4096.0, "prefill", 0.0, 1.0, 1.0)
        return sum(t for op, t in priced if op.name in ("q_a_proj", "kv_a_proj_with_mqa"))

    assert seconds(False) / seconds(True) == pytest.approx(205.1 / 26.14, rel=0.15)


def test_the_layer_ops_follow_the_deployment():
    s = deployment("deepseek-v3", "h200", tp=8, ep=8, redundant=0)
    names = {op.name for op in spec_layer_ops(s, True, 2, 2, 2048, "decode")}
    assert "all_gather.latent" not in names
    scattered = deployment("deepseek-v3", "h200", tp=8, ep=8, redundant=0, attn_tp_scattered=True)
    assert "all_gather.latent" in {op.name for op in spec_layer_ops(scattered, True, 2, 2, 2048, "decode")}
    with pytest.raises(ValueError, match="attn_tp_scattered"):
        deployment("deepseek-v3", "h200", tp=8, ep=8, redundant=0, attn_tp_scattered="yes")


def test_cli_scattered_input_speeds_a_tp8_prefill(capsys):
    argv = ["serve", "--gpu", "h20", "--tp", "8", "--prefill-ep", "8", "--phase", "prefill", "--json"]
    assert main(argv) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*argv, "--attn-tp-scattered"]) == 0
    scattered = json.loads(capsys.readouterr().out)
    assert scattered["input_tokens_per_s_per_gpu"] > 1.05 * plain["input_tokens_per_s_per_gpu"]

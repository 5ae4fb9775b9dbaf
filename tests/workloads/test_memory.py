"""Training and inference memory per GPU: sharding rules, recomputation, KV split."""

from __future__ import annotations

import pytest

from workloads.layout import ParallelLayout, check_layout, stage_layer_counts
from workloads.memory import (
    inference_memory_per_gpu,
    kv_bytes_per_token_per_layer,
    stage_params,
    training_memory_by_stage,
    training_memory_per_gpu,
)
from workloads.params import params_total
from workloads.registry import load_model

V3_LAYOUT = ParallelLayout(tp=1, pp=16, dp=128, ep=64, zero_stage=1)


def test_v3_layout_groups():
    assert V3_LAYOUT.gpus == 2048
    assert V3_LAYOUT.ep_nodes == 8  # "EP64 spanning 8 nodes" (V3 report)
    assert V3_LAYOUT.expert_dp == 2  # 128 data-parallel ranks hold each expert twice
    assert V3_LAYOUT.dp_per_node == 8 and V3_LAYOUT.expert_dp_per_node == 1  # an expert's two copies: two nodes


@pytest.mark.parametrize(
    ("layout", "dense", "expert"),
    [
        (ParallelLayout(tp=8, pp=16, dp=128, ep=8), 1, 1),  # TP fills the node: each DP rank on its own
        (
            ParallelLayout(tp=4, pp=8, dp=2),
            2,
            8,
        ),  # Llama 3 70B on 64: 2 replicas 4 apart, one node
        (ParallelLayout(tp=1, dp=64, ep=8), 8, 1),  # GPT-OSS on 64 B200: an expert's 8 copies on 8 nodes
        (ParallelLayout(tp=1, dp=64, ep=4), 8, 2),
        (ParallelLayout(tp=2, dp=2, ep=2), 2, 2),  # a group smaller than the node's share: all of it
    ],
)
def test_data_parallel_ranks_a_node_follow_megatrons_rank_order(layout, dense, expert):
    """Megatron orders ranks tp-cp-ep-dp-pp: a data-parallel group's ranks sit tp apart, an expert-data-parallel
    group's ep apart; what shares a node rings over NVLink, the rest through each rank's NIC."""
    assert (layout.dp_per_node, layout.expert_dp_per_node) == (dense, expert)


def test_layer_split_favours_the_middle():
    counts = stage_layer_counts(61, 16)
    assert sum(counts) == 61 and max(counts) - min(counts) == 1
    assert counts[0] == counts[-1] == 3  # the embedding and head stages get the short share
    with pytest.raises(ValueError, match="pp=70"):
        stage_layer_counts(61, 70)


def test_layout_errors_name_the_fix(v3):
    with pytest.raises(ValueError, match=r"ep=48 does not divide 256 routed experts.*try .*64"):
        check_layout(v3, ParallelLayout(dp=48, ep=48))
    with pytest.raises(ValueError, match=r"ep=2 but llama-3\.1-8b is dense"):
        check_layout(load_model("llama-3.1-8b"), ParallelLayout(dp=2, ep=2))
    with pytest.raises(ValueError, match=r"must divide tp\*dp"):
        ParallelLayout(dp=2, ep=4)
    with pytest.raises(ValueError, match="zero_stage=4"):
        ParallelLayout(zero_stage=4)
    with pytest.raises(ValueError, match="tp=3 does not divide"):
        check_layout(v3, ParallelLayout(tp=3))


def test_zero_stages_shard_what_they_promise(v3):
    layout = {z: ParallelLayout(pp=16, dp=128, ep=64, zero_stage=z) for z in range(4)}
    mem = {z: training_memory_by_stage(v3, layout[z], 4096)[5] for z in range(4)}
    assert mem[1]["weights"] == mem[0]["weights"] and mem[1]["gradients"] == mem[0]["gradients"]
    assert mem[1]["optimizer_states"] < mem[0]["optimizer_states"]
    assert mem[2]["gradients"] < mem[1]["gradients"] and mem[2]["weights"] == mem[1]["weights"]
    assert mem[3]["weights"] < mem[2]["weights"]
    # Stage 5 holds 4 MoE layers: dense part split over DP 128, experts over expert-DP 2.
    p = stage_params(v3, layout[1], 5)
    dense, expert = p["linear"] + p["other"], p["expert"] / 64
    assert mem[1]["optimizer_states"] == pytest.approx(12 * (dense / 128 + expert / 2))
    assert mem[0]["weights"] == pytest.approx(2 * (dense + expert))


def test_dualpipe_doubles_parameters_not_activations(v3):
    one = training_memory_per_gpu(v3, V3_LAYOUT, 4096, param_copies=1)
    two = training_memory_per_gpu(v3, V3_LAYOUT, 4096, param_copies=2)
    assert two["weights"] == pytest.approx(2 * one["weights"])
    assert two["activations"] == one["activations"]


def test_activations_scale_with_tokens_in_flight(v3):
    base = training_memory_by_stage(v3, V3_LAYOUT, 4096, inflight_microbatches=8)[5]["activations"]
    double = training_memory_by_stage(v3, V3_LAYOUT, 4096, inflight_microbatches=16)[5]["activations"]
    longer = training_memory_by_stage(v3, V3_LAYOUT, 8192, inflight_microbatches=8)[5]["activations"]
    assert double == pytest.approx(2 * base) and longer == pytest.approx(2 * base)


def test_fp8_caching_shrinks_v3_activations(v3):
    bf16 = training_memory_per_gpu(v3, V3_LAYOUT, 4096, recompute="selective", precision="bf16-mixed")
    fp8 = training_memory_per_gpu(v3, V3_LAYOUT, 4096, recompute="selective", precision="deepseek-v3")
    assert 0.5 * bf16["activations"] < fp8["activations"] < bf16["activations"]
    with pytest.raises(ValueError, match="unknown training precision"):
        training_memory_per_gpu(v3, V3_LAYOUT, 4096, precision="fp4")


def test_single_gpu_llama_8b_training_memory():
    # 8.03B params x 16 B (bf16 weights and grads, fp32 master + Adam) = 128.5 GB of states.
    spec = load_model("llama-3.1-8b")
    mem = training_memory_per_gpu(spec, ParallelLayout(zero_stage=0), 4096)
    states = mem["weights"] + mem["gradients"] + mem["optimizer_states"]
    assert states == 16 * params_total(spec)


def test_mla_cache_is_replicated_over_tp_gqa_is_split():
    v3, llama = load_model("deepseek-v3"), load_model("llama-3.1-70b")
    for spec, split in ((v3, 1), (llama, 8)):
        one = inference_memory_per_gpu(spec, ParallelLayout(), batch=4, context=1000)["kv_cache"]
        tp8 = inference_memory_per_gpu(spec, ParallelLayout(tp=8), batch=4, context=1000)["kv_cache"]
        assert one == 4 * 1000 * kv_bytes_per_token_per_layer(spec) * spec.num_hidden_layers
        assert tp8 == pytest.approx(one / split)


def test_fp8_serving_weights_are_about_half(v3):
    layout = ParallelLayout(dp=32, ep=32)
    bf16 = inference_memory_per_gpu(v3, layout, 1, 1, weight_dtype="bf16")["weights"]
    fp8 = inference_memory_per_gpu(v3, layout, 1, 1, weight_dtype="fp8")["weights"]
    assert 0.5 * bf16 < fp8 < 0.56 * bf16  # embedding/head/norms stay bf16; block scales add 0.02%

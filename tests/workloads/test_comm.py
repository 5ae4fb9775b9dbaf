"""Communication volumes: expert all-to-all by link kind, pipeline and data-parallel bytes."""

from __future__ import annotations

from math import comb

import pytest

from workloads.comm import (
    activation_bytes_per_token,
    dp_gradient_bytes_per_gpu,
    ep_bytes_per_token_per_layer,
    expected_gpus,
    expected_nodes_per_token,
    pp_bytes_per_token,
)
from workloads.layout import ParallelLayout
from workloads.registry import load_model

V3_LAYOUT = ParallelLayout(tp=1, pp=16, dp=128, ep=64)


def test_fp8_dispatch_carries_its_scales(v3):
    assert activation_bytes_per_token(v3, "fp8") == 7168 + 4 * 56  # 1x128 tiles, fp32 scale each
    assert activation_bytes_per_token(v3, "bf16") == 2 * 7168


def test_node_limit_caps_the_nodes_a_token_reaches(v3):
    free = expected_nodes_per_token(v3, V3_LAYOUT)
    # 8 of 256 experts over 8 nodes of 32: 8 * (1 - C(224, 8) / C(256, 8)) distinct nodes.
    assert free == pytest.approx(5.2947, abs=1e-4)
    assert expected_nodes_per_token(v3, V3_LAYOUT, node_limit=4) == 4


def test_v3_dispatch_volume_by_link(v3):
    ep = ep_bytes_per_token_per_layer(v3, V3_LAYOUT, node_limit=4)
    fp8 = 7168 + 224
    assert ep["dispatch"] == pytest.approx(8 * 63 / 64 * fp8)  # every copy off this GPU
    assert ep["dispatch_ib"] == pytest.approx(4 * 7 / 8 * fp8)  # one copy per remote node
    # forwarded inside the node, one copy per destination GPU: 64 (1 - C(252, 8) / C(256, 8)) = 7.68 distinct GPUs
    gpus = 64 * (1 - comb(252, 8) / comb(256, 8))
    assert gpus == pytest.approx(7.68, abs=0.01)
    assert ep["dispatch_nvlink"] == pytest.approx(gpus * 7 / 8 * fp8)
    assert ep["combine_ib"] == pytest.approx(ep["dispatch_ib"] * 2 * 7168 / fp8)
    # The node limit is what keeps IB traffic down: without it a token reaches 5.3 nodes.
    assert ep_bytes_per_token_per_layer(v3, V3_LAYOUT)["dispatch_ib"] > 1.3 * ep["dispatch_ib"]


def test_ep_inside_one_node_uses_no_infiniband(v3):
    ep = ep_bytes_per_token_per_layer(v3, ParallelLayout(dp=8, ep=8))
    assert ep["dispatch_ib"] == ep["combine_ib"] == 0
    # one NVLink copy per other GPU holding any of the token's experts (8 of 256 over 8 GPUs of 32: 5.29 of them),
    # not one per expert as a plain all-to-all sends (7 of 8 off this GPU)
    assert ep["dispatch_nvlink"] == pytest.approx(8 * (1 - comb(224, 8) / comb(256, 8)) * 7 / 8 * (7168 + 224))
    assert ep["dispatch_nvlink"] < 0.7 * ep["dispatch"]


def test_dense_models_have_no_expert_traffic():
    with pytest.raises(ValueError, match="dense"):
        ep_bytes_per_token_per_layer(load_model("llama-3.1-8b"), ParallelLayout())


def test_pipeline_and_data_parallel_bytes(v3):
    assert pp_bytes_per_token(v3) == {"forward": 14336, "backward": 14336}
    zero0 = dp_gradient_bytes_per_gpu(1e9, 0, ParallelLayout(dp=4, zero_stage=0), grad_dtype="bf16")
    assert zero0 == {"payload": 2e9, "sent": pytest.approx(2 * 3 / 4 * 2e9)}  # ring all-reduce
    zero1 = dp_gradient_bytes_per_gpu(1e9, 0, ParallelLayout(dp=4, zero_stage=1), grad_dtype="fp32")
    assert zero1["sent"] == pytest.approx(3 / 4 * (4 + 2) * 1e9)  # fp32 reduce-scatter, bf16 all-gather
    experts = dp_gradient_bytes_per_gpu(0, 1e9, ParallelLayout(dp=2, ep=2, zero_stage=0), grad_dtype="bf16")
    assert experts["sent"] == 0  # expert-DP group of one: nothing to reduce


def test_a_token_reaches_at_most_its_experts_gpus():
    """One NVLink copy per destination GPU: fewer GPUs than experts (collisions), each of k on its own GPU where no
    GPU holds two (serving's EP 320 over 256 experts; redundant slots aside)."""
    assert expected_gpus(256, 8, 8) == pytest.approx(8 * (1 - comb(224, 8) / comb(256, 8)))
    assert expected_gpus(256, 8, 256) == expected_gpus(256, 8, 320) == 8
    assert expected_gpus(256, 8, 64) < 8

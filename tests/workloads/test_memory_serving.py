"""workloads.memory's serving capacity: the model's maximum context, and what one GPU of a deployment holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workloads.layout import ParallelLayout
from workloads.memory import (
    inference_memory_per_gpu,
    largest_batch_that_fits,
    longest_context_that_fits,
    max_context_tokens,
    serving_capacity,
)
from workloads.registry import load_model

H800_HBM = 80e9


@pytest.mark.parametrize(
    ("slug", "tokens"),
    [("deepseek-v3", 163840), ("qwen2.5-72b", 131072), ("mixtral-8x7b", 32768), ("qwen3-30b-a3b", 40960)],
)
def test_max_context_is_the_configs_max_position_embeddings(slug, tokens):
    assert max_context_tokens(load_model(slug)) == tokens


def test_a_config_without_a_maximum_has_no_cap():
    spec = replace(load_model("llama-3.1-8b"), max_position_embeddings=0)
    assert max_context_tokens(spec) is None
    got = serving_capacity(spec, ParallelLayout(tp=8), 1024, 1, H800_HBM)
    assert got["longest_context"] > 131072 and not got["context_capped"]  # memory alone sets it: ~12M tokens


def test_capacity_is_the_fit_functions_per_gpu():
    """V3 at EP32 with DP attention: each GPU its own replica, so per GPU = per replica; weights + room = HBM."""
    v3, layout = load_model("deepseek-v3"), ParallelLayout(ep=32, dp=32)
    got = serving_capacity(v3, layout, 32768, 1, H800_HBM, "fp8", "bf16")
    assert got["sequences_per_replica"] == largest_batch_that_fits(v3, layout, 32768, H800_HBM, "fp8", "bf16") == 17
    assert got["sequences_per_gpu"] == 17 and got["sequences_per_node"] == 8 * 17
    assert got["kv_bytes_per_token"] == 70272  # MLA's latent, whole on the GPU
    assert got["weights_bytes"] == inference_memory_per_gpu(v3, layout, 1, 1, "fp8")["weights"]
    assert got["weights_bytes"] + got["kv_room_bytes"] == H800_HBM
    memory_allows = longest_context_that_fits(v3, layout, 1, H800_HBM, "fp8", "bf16")
    assert memory_allows > 163840 and got["longest_context"] == 163840 and got["context_capped"]


def test_a_tp_group_shares_its_sequences():
    """Qwen2.5-72B over TP8: 8 KV heads split over 8 GPUs; the group's 52 sequences are 6.5 per GPU."""
    got = serving_capacity(load_model("qwen2.5-72b"), ParallelLayout(tp=8), 32768, 1, H800_HBM, "fp8", "bf16")
    assert got["kv_bytes_per_token"] == 327680 // 8
    assert got["sequences_per_replica"] == 52 and got["sequences_per_gpu"] == 6.5
    assert got["sequences_per_node"] == 52  # one TP8 group per 8-GPU node


def test_a_replica_wider_than_a_node_gives_each_node_its_share():
    """Llama-3.1-405B over TP8 x PP2 (16 GPUs): each 8-GPU node holds half of the replica's sequences."""
    layout = ParallelLayout(tp=8, pp=2, gpus_per_node=8)
    got = serving_capacity(load_model("llama-3.1-405b"), layout, 32768, 1, H800_HBM, "fp8", "bf16")
    assert got["sequences_per_replica"] > 0
    assert got["sequences_per_node"] == got["sequences_per_replica"] // 2


def test_weights_that_fill_the_gpu_leave_no_room():
    got = serving_capacity(load_model("deepseek-v3"), ParallelLayout(ep=8, dp=8), 4096, 1, H800_HBM, "fp8")
    assert got["weights_bytes"] > H800_HBM
    assert got["kv_room_bytes"] == 0 and got["sequences_per_gpu"] == 0 and got["longest_context"] == 0

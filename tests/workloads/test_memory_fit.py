"""What fits in HBM: cached tokens, the longest context and the largest batch beside the weights."""

from __future__ import annotations

import pytest

from workloads.layout import ParallelLayout
from workloads.memory import (
    inference_memory_per_gpu,
    kv_bytes_per_token,
    kv_tokens_that_fit,
    largest_batch_that_fits,
    longest_context_that_fits,
)
from workloads.registry import load_model

HBM = 80e9


@pytest.mark.parametrize("slug", ["llama-3.1-8b", "qwen2.5-72b"])
def test_fit_is_the_boundary(slug):
    """The tokens that fit do fit, one more does not (one GPU, no split: KV per token is the model's)."""
    spec, one = load_model(slug), ParallelLayout()
    tokens = kv_tokens_that_fit(spec, one, HBM, "fp8", "bf16")
    weights = inference_memory_per_gpu(spec, one, 1, 1, "fp8")["weights"]
    assert weights + tokens * kv_bytes_per_token(spec) <= HBM < weights + (tokens + 1) * kv_bytes_per_token(spec)


def test_context_and_batch_divide_the_tokens():
    spec, one = load_model("llama-3.1-8b"), ParallelLayout()
    tokens = kv_tokens_that_fit(spec, one, HBM)
    assert longest_context_that_fits(spec, one, 4, HBM) == tokens // 4
    assert largest_batch_that_fits(spec, one, 32768, HBM) == tokens // 32768


def test_weights_that_do_not_fit_leave_nothing():
    spec = load_model("deepseek-v3")  # 671B parameters: no single GPU holds them
    assert kv_tokens_that_fit(spec, ParallelLayout(), HBM, "fp8") == 0
    assert largest_batch_that_fits(spec, ParallelLayout(), 1, HBM, "fp8") == 0


def test_splitting_weights_over_a_node_frees_room():
    spec = load_model("qwen2.5-72b")
    one, node = ParallelLayout(), ParallelLayout(tp=8, dp=1)
    assert kv_tokens_that_fit(spec, node, HBM) > kv_tokens_that_fit(spec, one, HBM)


def test_bad_sizes_are_errors():
    spec = load_model("llama-3.1-8b")
    with pytest.raises(ValueError, match="batch=0"):
        longest_context_that_fits(spec, ParallelLayout(), 0, HBM)
    with pytest.raises(ValueError, match="context=0"):
        largest_batch_that_fits(spec, ParallelLayout(), 0, HBM)

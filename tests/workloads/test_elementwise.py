"""The MoE block's element-wise kernels follow the all-to-all dispatcher that moves its tokens.

V3's DeepEP dispatches fp8 tokens cast once before they leave; Megatron's dispatchers deliver bf16, so each routed
copy is cast where its expert runs; Megatron's alltoall dispatcher also sorts arrivals by local expert and back
(Megatron-LM megatron/core/transformer/moe/token_dispatcher.py, MoEAlltoAllTokenDispatcher).
"""

from __future__ import annotations

import pytest

from simulator.names import EP_DISPATCHERS
from workloads.elementwise import BF16, FP8_QUANT, layer_backward_elementwise_kernels, layer_elementwise_kernels
from workloads.registry import load_model


def _bytes(kernels) -> dict[str, float]:
    return {name: nbytes for name, _, nbytes, _ in kernels}


@pytest.mark.parametrize("slug", ["deepseek-v3", "qwen3-30b-a3b"])
def test_megatron_dispatchers_cast_every_routed_copy_on_arrival(slug):
    spec = load_model(slug)
    h, k = spec.hidden_size, spec.num_experts_per_tok
    shared = min(1, spec.n_shared_experts)
    deepep = _bytes(layer_elementwise_kernels(spec, True, True, "deepep-fp8", 8))
    assert deepep["cast.expert_input"] == FP8_QUANT * h  # once, before the fp8 dispatch
    assert deepep["permute"] == 2 * k * h  # fp8 copies
    for dispatcher in ("deepep", "hybridep", "alltoall"):
        megatron = _bytes(layer_elementwise_kernels(spec, True, True, dispatcher, 8))
        assert megatron["cast.expert_input"] == FP8_QUANT * (k + shared) * h
        assert megatron["permute"] == 2 * k * h * BF16  # bf16 copies


def test_bf16_runs_cast_nothing_whatever_the_dispatcher():
    spec = load_model("qwen3-30b-a3b")
    for dispatcher in EP_DISPATCHERS:
        names = _bytes(layer_elementwise_kernels(spec, True, False, dispatcher, 8))
        assert not [n for n in names if n.startswith("cast.")]


def test_alltoall_sorts_arrivals_by_local_expert_and_back():
    spec = load_model("qwen3-30b-a3b")  # 128 experts
    h, k = spec.hidden_size, spec.num_experts_per_tok
    forward = _bytes(layer_elementwise_kernels(spec, True, True, "alltoall", 8))
    assert forward["sort_chunks"] == 2 * k * h * BF16
    assert forward["sort_chunks.combine"] == 2 * k * h * BF16
    backward = _bytes(layer_backward_elementwise_kernels(spec, True, True, "alltoall", 8))
    assert backward["sort_chunks.backward"] == forward["sort_chunks"]  # a permutation: its transpose moves as much
    for dispatcher in ("deepep-fp8", "deepep", "hybridep"):  # the flex dispatchers permute once
        assert "sort_chunks" not in _bytes(layer_elementwise_kernels(spec, True, True, dispatcher, 8))
    one_each = _bytes(layer_elementwise_kernels(spec, True, True, "alltoall", spec.n_routed_experts))
    assert "sort_chunks" not in one_each  # one local expert: nothing to sort


def test_dense_layers_ignore_the_dispatcher():
    spec = load_model("llama-3.1-8b")
    assert layer_elementwise_kernels(spec, False, True, "alltoall", 8) == layer_elementwise_kernels(spec, False, True)


def test_serving_runs_each_residual_add_inside_the_norm_after_it():
    """SGLang's and vLLM's fused_add_rmsnorm, TensorRT-LLM's RMSNorm with a residual: one kernel reads the
    sublayer's output and the residual, writes the new residual and its norm (4 h elements where apart the add
    moved 3 h and the norm 2 h); training keeps V3's kernels apart."""
    from workloads.servingops import serving_layer_ops

    spec = load_model("deepseek-v3")
    h = spec.hidden_size
    fused = _bytes(layer_elementwise_kernels(spec, True, True, fused_add_norm=True))
    apart = _bytes(layer_elementwise_kernels(spec, True, True))
    assert fused["add_norm.attn"] == fused["add_norm.mlp"] == 4 * h * BF16
    assert not {"input_norm", "residual_add.attn", "post_attention_norm", "residual_add.mlp"} & set(fused)
    assert sum(fused.values()) == pytest.approx(sum(apart.values()) - 2 * h * BF16)
    ops = {op.name for op in serving_layer_ops(spec, True, 8, 8, 4096, "decode", ep=8)}
    assert {"add_norm.attn", "add_norm.mlp"} <= ops and "residual_add.mlp" not in ops

"""Structural checks of the counts: parts sum to totals, FLOPs match weights, conventions differ as they should."""

from __future__ import annotations

import pytest

from workloads.flops import forward_flops_breakdown, train_flops_breakdown
from workloads.params import param_breakdown, params_active, params_total
from workloads.registry import load_model, model_slugs

SLUGS = model_slugs()


@pytest.mark.parametrize("slug", SLUGS)
def test_linear_flops_are_twice_the_weights_a_token_multiplies(slug):
    # Every FLOP outside the attention core is a weight multiply: 2 FLOPs per activated weight,
    # except the embedding row (a lookup), the norms, V3's router bias and attention biases.
    spec = load_model(slug)
    fwd = forward_flops_breakdown(spec, 4096, include_mtp=False)
    active = param_breakdown(spec, active=True)
    lookups = active["embedding"] + active["norms"] + spec.router_bias * spec.n_routed_experts * spec.num_moe_layers
    if spec.attention_bias:
        lookups += spec.num_hidden_layers * (spec.num_attention_heads + 2 * spec.kv_heads) * spec.qk_head_dim
    assert sum(fwd.values()) - fwd["attn_core"] == 2 * (params_active(spec) - lookups)


@pytest.mark.parametrize("slug", SLUGS)
def test_training_is_three_forwards(slug):
    spec = load_model(slug)
    fwd, train = forward_flops_breakdown(spec, 2048), train_flops_breakdown(spec, 2048)
    assert train == {k: 3 * v for k, v in fwd.items()}


def test_causal_attention_counts_half_plus_the_diagonal(v3):
    causal = forward_flops_breakdown(v3, 4096, causal=True)["attn_core"]
    full = forward_flops_breakdown(v3, 4096, causal=False)["attn_core"]
    assert causal / full == pytest.approx(4097 / 2 / 4096)
    # Per layer: 2 * heads * (qk 192 + v 128) * keys, 61 layers.
    assert full == 61 * 2 * 128 * (192 + 128) * 4096


def test_v3_component_shapes(v3):
    total = param_breakdown(v3)
    assert total["routed_experts"] == 58 * 256 * 3 * 7168 * 2048
    assert total["shared_experts"] == 58 * 3 * 7168 * 2048
    assert total["dense_ffn"] == 3 * 3 * 7168 * 18432
    assert total["router"] == 58 * (256 * 7168 + 256)
    assert total["embedding"] == total["output_head"] == 129280 * 7168
    # q_a, q_b, kv_a (latent 512 + rope key 64), kv_b, o_proj
    per_layer = 7168 * 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 * 128 * 256 + 128 * 128 * 7168
    assert total["attn_proj"] == 61 * per_layer


def test_mtp_conventions(v3):
    shared = params_total(v3, include_mtp=True)
    copied = params_total(v3, include_mtp=True, mtp_embedding="copied")
    assert copied - shared == 2 * 129280 * 7168
    assert shared - params_total(v3) == param_breakdown(v3, include_mtp=True)["mtp"]
    with pytest.raises(ValueError, match="mtp_embedding"):
        params_total(v3, include_mtp=True, mtp_embedding="both")


def test_tied_embeddings_are_stored_once():
    from dataclasses import replace

    spec = replace(load_model("llama-3.1-8b"), tie_word_embeddings=True)
    untied = load_model("llama-3.1-8b")
    assert params_total(untied) - params_total(spec) == 128256 * 4096
    assert params_active(spec) == params_active(untied) - 4096  # the head is still multiplied by

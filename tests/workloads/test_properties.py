"""Invariants of the counts, over random architectures (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.workloads.strategies import model_specs
from workloads.flops import train_flops_per_token
from workloads.layout import ParallelLayout
from workloads.memory import kv_bytes_per_token, stage_params, training_memory_per_gpu
from workloads.params import params_active, params_total

settings.register_profile("default", deadline=None, max_examples=60)
settings.load_profile("default")


@given(model_specs(), st.booleans())
def test_active_never_exceeds_total(spec, mtp):
    assert 0 < params_active(spec, include_mtp=mtp) <= params_total(spec, include_mtp=mtp) + spec.hidden_size
    if spec.is_moe and spec.num_experts_per_tok < spec.n_routed_experts and spec.num_moe_layers:
        assert params_active(spec) < params_total(spec)


@given(model_specs(), st.integers(1, 32_768), st.integers(1, 32_768))
def test_flops_grow_with_sequence_length(spec, a, b):
    short, long = sorted((a, b))
    assert train_flops_per_token(spec, short) <= train_flops_per_token(spec, long)
    if short < long:
        assert train_flops_per_token(spec, short) < train_flops_per_token(spec, long)


@given(model_specs(attention="mla"), st.sampled_from([4, 16, 64, 256]))
def test_mla_kv_does_not_depend_on_head_count(spec, heads):
    wider = replace(spec, num_attention_heads=heads, num_key_value_heads=heads)
    assert kv_bytes_per_token(wider) == kv_bytes_per_token(spec)


@given(model_specs(attention="gqa"))
def test_gqa_kv_scales_with_kv_heads(spec):
    doubled = (
        replace(spec, num_key_value_heads=spec.kv_heads * 2)
        if spec.num_attention_heads % (spec.kv_heads * 2) == 0
        else spec
    )
    ratio = kv_bytes_per_token(doubled) / kv_bytes_per_token(spec)
    assert ratio == doubled.kv_heads / spec.kv_heads


@given(model_specs(), st.sampled_from(["bf16", "fp8"]))
def test_fp8_kv_is_half_of_bf16(spec, _):
    assert 2 * kv_bytes_per_token(spec, "fp8") == kv_bytes_per_token(spec, "bf16")


@given(model_specs(), st.integers(1, 16))
def test_stages_hold_the_whole_model(spec, pp):
    pp = min(pp, spec.num_hidden_layers)
    layout = ParallelLayout(pp=pp)
    held = sum(sum(stage_params(spec, layout, s, include_mtp=True).values()) for s in range(pp))
    # A tied head is a second copy on the last stage when the pipeline has more than one stage.
    extra = spec.vocab_size * spec.hidden_size if spec.tie_word_embeddings and pp > 1 else 0
    assert held == params_total(spec, include_mtp=True) + extra


@given(model_specs(moe=True), st.sampled_from([1, 2, 3]))
def test_more_data_parallelism_never_needs_more_memory(spec, zero):
    ep = spec.n_routed_experts
    small, big = (ParallelLayout(dp=ep * f, ep=ep, zero_stage=zero) for f in (1, 4))
    assert training_memory_per_gpu(spec, big, 1024)["total"] <= training_memory_per_gpu(spec, small, 1024)["total"]


@given(model_specs(), st.sampled_from(["none", "selective", "full"]))
def test_recomputation_only_saves(spec, mode):
    # With one layer, full recomputation keeps its input *and* rebuilds it: two layers up, it saves.
    assume(spec.num_hidden_layers >= 2)
    layout = ParallelLayout()
    base = training_memory_per_gpu(spec, layout, 2048, recompute="none")["activations"]
    assert training_memory_per_gpu(spec, layout, 2048, recompute=mode)["activations"] <= base

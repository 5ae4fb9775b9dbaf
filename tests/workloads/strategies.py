"""Hypothesis strategies for random but valid model architectures."""

from __future__ import annotations

from hypothesis import strategies as st

from workloads.spec import ModelSpec


@st.composite
def model_specs(draw, attention: str | None = None, moe: bool | None = None) -> ModelSpec:
    """A random valid ModelSpec (small enough to reason about, large enough to matter)."""
    attention = attention or draw(st.sampled_from(["mha", "gqa", "mla"]))
    heads = draw(st.sampled_from([4, 8, 16, 32, 64, 128]))
    head_dim = draw(st.sampled_from([32, 64, 128]))
    layers = draw(st.integers(1, 64))
    kw: dict = dict(
        name="random",
        num_hidden_layers=layers,
        hidden_size=heads * head_dim,
        num_attention_heads=heads,
        vocab_size=draw(st.integers(1000, 200_000)),
        intermediate_size=draw(st.integers(1, 64)) * 256,
        attention=attention,
        tie_word_embeddings=draw(st.booleans()),
    )
    if attention == "gqa":
        kw["num_key_value_heads"] = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    if attention == "mla":
        kw.update(
            q_lora_rank=draw(st.sampled_from([0, 512, 1536])),
            kv_lora_rank=draw(st.sampled_from([256, 512])),
            qk_nope_head_dim=128,
            qk_rope_head_dim=64,
            v_head_dim=128,
        )
    if moe if moe is not None else draw(st.booleans()):
        groups = draw(st.sampled_from([1, 2, 4, 8]))
        experts = groups * draw(st.integers(1, 32))
        topk_group = draw(st.integers(1, groups))
        kw.update(
            n_routed_experts=experts,
            n_shared_experts=draw(st.integers(0, 2)),
            num_experts_per_tok=draw(st.integers(1, min(8, topk_group * experts // groups))),
            moe_intermediate_size=draw(st.integers(1, 16)) * 128,
            n_group=groups,
            topk_group=topk_group,
            first_k_dense_replace=draw(st.integers(0, layers)),
            router_bias=draw(st.booleans()),
            num_nextn_predict_layers=draw(st.integers(0, 2)),
        )
    return ModelSpec(**kw)

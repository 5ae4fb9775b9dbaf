"""Parameter counts (element counts), total and activated per token, by component.

Components: embedding, attn_proj, norms, dense_ffn, shared_experts,
routed_experts, router, output_head, mtp. Shapes follow the HF modeling files
(modeling_deepseek.py, modeling_llama.py, ...), so a test can compare the
total with a checkpoint's parameter count exactly.

Conventions, by name:
- *activated*: every weight a token's forward pass multiplies by, plus the one
  embedding row it looks up (`embedding="row"`, default). This reproduces
  DeepSeek-V3's "37B activated" and V2's "21B". Qwen's model cards count the
  whole embedding table as activated (`embedding="table"`: Qwen3-30B-A3B's 3.3B).
- `mtp_embedding="shared"` (default): the MTP module shares the embedding and
  output head with the main model, as the V3 report describes (671B + 11.5B);
  `"copied"` counts the copies the released checkpoint stores, as in its 685B.
"""

from __future__ import annotations

from workloads.spec import ModelSpec

# Components that hold weights a token multiplies by (the FLOP breakdown shares them).
WEIGHT_COMPONENTS = (
    "embedding",
    "attn_proj",
    "dense_ffn",
    "shared_experts",
    "routed_experts",
    "router",
    "output_head",
    "mtp",
)
COMPONENTS = (*WEIGHT_COMPONENTS, "norms")
MTP_EMBEDDING = ("shared", "copied")
ACTIVE_EMBEDDING = ("row", "table")


def attention_proj_params(spec: ModelSpec) -> dict[str, int]:
    """Weights (and biases) of one layer's attention projections, by HF module name."""
    h, heads = spec.hidden_size, spec.num_attention_heads
    qk, v = spec.qk_head_dim, spec.v_dim
    if spec.attention == "mla":
        rope, kv_rank = spec.qk_rope_head_dim, spec.kv_lora_rank
        out = {}
        if spec.q_lora_rank:
            out["q_a_proj"] = h * spec.q_lora_rank
            out["q_b_proj"] = spec.q_lora_rank * heads * qk
        else:
            out["q_proj"] = h * heads * qk
        # kv_a_proj_with_mqa emits the latent and the shared RoPE key together.
        out["kv_a_proj_with_mqa"] = h * (kv_rank + rope)
        out["kv_b_proj"] = kv_rank * heads * (spec.qk_nope_head_dim + v)
        out["o_proj"] = heads * v * h
        return out
    kv_heads = spec.kv_heads
    bias = int(spec.attention_bias)
    return {
        "q_proj": h * heads * qk + bias * heads * qk,
        "k_proj": h * kv_heads * qk + bias * kv_heads * qk,
        "v_proj": h * kv_heads * v + bias * kv_heads * v,
        "o_proj": heads * v * h,
    }


def layer_norm_params(spec: ModelSpec) -> int:
    """RMSNorm weights of one layer: input and post-attention norms plus attention-internal ones."""
    n = 2 * spec.hidden_size
    if spec.attention == "mla":
        n += spec.q_lora_rank + spec.kv_lora_rank  # q_a_layernorm, kv_a_layernorm
    if spec.qk_norm:
        n += 2 * spec.qk_head_dim  # q_norm, k_norm over one head
    return n


def swiglu_params(hidden_size: int, intermediate_size: int) -> int:
    """gate_proj, up_proj and down_proj of one SwiGLU MLP."""
    return 3 * hidden_size * intermediate_size


def router_params(spec: ModelSpec) -> int:
    """The gate's weight, plus V3's per-expert balancing bias."""
    return spec.n_routed_experts * spec.hidden_size + spec.router_bias * spec.n_routed_experts


def layer_params(spec: ModelSpec, moe: bool, active: bool) -> dict[str, int]:
    """One decoder layer's parameters by component (routed experts: all, or the top-k if active)."""
    h = spec.hidden_size
    out = dict.fromkeys(COMPONENTS, 0)
    out["attn_proj"] = sum(attention_proj_params(spec).values())
    out["norms"] = layer_norm_params(spec)
    if not moe:
        out["dense_ffn"] = swiglu_params(h, spec.intermediate_size)
        return out
    experts = spec.num_experts_per_tok if active else spec.n_routed_experts
    out["routed_experts"] = experts * swiglu_params(h, spec.moe_intermediate_size)
    out["shared_experts"] = swiglu_params(h, spec.shared_intermediate_size)
    out["router"] = router_params(spec)
    return out


def mtp_module_params(spec: ModelSpec, active: bool = False, mtp_embedding: str = "shared") -> int:
    """One MTP depth (V3 section 2.2): enorm, hnorm, eh_proj (2h -> h), a block, and the final norm.

    With `mtp_embedding="copied"`, add the embedding table and output head the
    released checkpoint stores for it (active: the head and one embedding row).
    """
    if mtp_embedding not in MTP_EMBEDDING:
        raise ValueError(f"mtp_embedding={mtp_embedding!r}; use one of {', '.join(MTP_EMBEDDING)}")
    h = spec.hidden_size
    block = sum(layer_params(spec, moe=spec.is_moe, active=active).values())
    n = 3 * h + 2 * h * h + block
    if mtp_embedding == "copied":
        n += (h if active else spec.vocab_size * h) + spec.vocab_size * h
    return n


def param_breakdown(
    spec: ModelSpec,
    active: bool = False,
    include_mtp: bool = False,
    mtp_embedding: str = "shared",
    embedding: str = "row",
) -> dict[str, int]:
    """Parameters by component: total, or activated per token when `active`."""
    if embedding not in ACTIVE_EMBEDDING:
        raise ValueError(f"embedding={embedding!r}; use one of {', '.join(ACTIVE_EMBEDDING)}")
    h, vocab = spec.hidden_size, spec.vocab_size
    out = dict.fromkeys(COMPONENTS, 0)
    for moe, count in ((False, spec.num_dense_layers), (True, spec.num_moe_layers)):
        for key, n in layer_params(spec, moe, active).items():
            out[key] += count * n
    out["norms"] += h  # final norm
    out["embedding"] = h if active and embedding == "row" else vocab * h
    # A tied head is the embedding table itself: stored once, but every weight is activated.
    tied = spec.tie_word_embeddings
    out["output_head"] = 0 if tied and not active else vocab * h
    if tied and active:
        out["embedding"] = 0
    if include_mtp:
        out["mtp"] = spec.num_nextn_predict_layers * mtp_module_params(spec, active, mtp_embedding)
    return out


def params_total(spec: ModelSpec, include_mtp: bool = False, mtp_embedding: str = "shared") -> int:
    """All parameters of the model (with the MTP module if asked)."""
    return sum(param_breakdown(spec, False, include_mtp, mtp_embedding).values())


def params_active(
    spec: ModelSpec, include_mtp: bool = False, mtp_embedding: str = "shared", embedding: str = "row"
) -> int:
    """Parameters activated for one token (see the module docstring for the conventions)."""
    return sum(param_breakdown(spec, True, include_mtp, mtp_embedding, embedding).values())

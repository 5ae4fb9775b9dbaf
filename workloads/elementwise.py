"""HBM bytes per token of the memory-bound (element-wise) ops in one layer's forward pass.

Counted op by op as elements read + written, at 2 bytes (bf16) unless said,
assuming no fusion beyond what every modern stack has (norm, SwiGLU, RoPE and
quantization each one kernel). The backward of an element-wise op reads its
saved input and the incoming gradient and writes one gradient: about twice the
forward's bytes (`BACKWARD_TO_FORWARD`). Attention and GEMM operand traffic is
not here: those kernels are compute-bound and timed by their FLOPs.
"""

from __future__ import annotations

from workloads.spec import ModelSpec

BF16 = 2
FP8_QUANT = BF16 + 1  # read bf16, write fp8 (scales are 1/128 of that: left out)
BACKWARD_TO_FORWARD = 2


def layer_elementwise_kernels(spec: ModelSpec, moe: bool, fp8: bool) -> list[tuple[str, str, float]]:
    """(name, part, forward HBM bytes per token) of one layer's memory-bound kernels, one row per kernel.

    Elements read + written at bf16 unless said, one kernel per norm, SwiGLU, RoPE and cast; the FP8 casts
    read bf16 and write fp8 (scales, 1/128 of that, left out).
    """
    h, heads = spec.hidden_size, spec.num_attention_heads
    rows: list[tuple[str, str, float]] = [
        ("input_norm", "attn", 2 * h * BF16),
        ("residual_add.attn", "attn", 3 * h * BF16),
        ("post_attention_norm", "mlp", 2 * h * BF16),
        ("residual_add.mlp", "mlp", 3 * h * BF16),
    ]
    casts = [("cast.attn_input", "attn", h), ("cast.o_proj_input", "attn", heads * spec.v_dim)]
    if spec.attention == "mla":
        latents = spec.q_lora_rank + spec.kv_lora_rank
        rows += [
            ("latent_norms", "attn", 2 * latents * BF16),
            ("rope", "attn", 2 * (heads + 1) * spec.qk_rope_head_dim * BF16),  # q_pe and the shared k_pe
        ]
        casts += [("cast.q_latent", "attn", spec.q_lora_rank), ("cast.kv_latent", "attn", spec.kv_lora_rank)]
    else:
        rows.append(("rope", "attn", 2 * (heads + spec.kv_heads) * spec.qk_head_dim * BF16))
    if not moe:
        inter = spec.intermediate_size
        rows.append(("swiglu", "mlp", 3 * inter * BF16))
        casts += [("cast.mlp_input", "mlp", h), ("cast.down_input", "mlp", inter)]
    else:
        k, copies = spec.num_experts_per_tok, spec.num_experts_per_tok + spec.n_shared_experts
        inter = spec.moe_intermediate_size
        rows += [
            ("swiglu", "mlp", copies * 3 * inter * BF16),  # every routed and shared expert's
            ("combine_reduce", "mlp", (k + 1) * h * BF16),  # read k expert outputs, write the weighted sum
            ("router_topk", "mlp", 2 * spec.n_routed_experts * 4),  # sigmoid and top-k over fp32 scores
        ]
        casts += [("cast.expert_input", "mlp", h), ("cast.down_input", "mlp", copies * inter)]
    if fp8:
        rows += [(name, part, FP8_QUANT * elems) for name, part, elems in casts]
    return rows


def layer_elementwise_bytes(spec: ModelSpec, moe: bool, fp8: bool) -> float:
    """Forward HBM bytes per token of one decoder layer's memory-bound ops (the sum over its kernels)."""
    return float(sum(nbytes for _, _, nbytes in layer_elementwise_kernels(spec, moe, fp8)))


def loss_bytes_per_token(spec: ModelSpec, heads: int = 1) -> float:
    """Forward + backward HBM bytes per token of the softmax cross-entropy over fp32 logits, per output head."""
    return float(heads * 4 * spec.vocab_size * 4)  # write logits, read for softmax; write and read the gradient

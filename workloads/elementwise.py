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


def layer_elementwise_bytes(spec: ModelSpec, moe: bool, fp8: bool) -> float:
    """Forward HBM bytes per token of one decoder layer's memory-bound ops."""
    h, heads = spec.hidden_size, spec.num_attention_heads
    quant = FP8_QUANT if fp8 else 0.0
    total = 2 * 2 * h * BF16  # two RMSNorms: read h, write h
    total += 2 * 3 * h * BF16  # two residual adds: read 2h, write h
    gemm_inputs = [h, heads * spec.v_dim]  # q/kv down (or q/k/v) projections; o_proj
    if spec.attention == "mla":
        latents = spec.q_lora_rank + spec.kv_lora_rank
        total += 2 * latents * BF16  # latent RMSNorms
        total += 2 * (heads + 1) * spec.qk_rope_head_dim * BF16  # RoPE on q_pe and the shared k_pe
        gemm_inputs += [spec.q_lora_rank, spec.kv_lora_rank]
    else:
        total += 2 * (heads + spec.kv_heads) * spec.qk_head_dim * BF16  # RoPE on q and k
    if not moe:
        inter = spec.intermediate_size
        total += 3 * inter * BF16  # SwiGLU: read gate and up, write act
        gemm_inputs += [h, inter]
    else:
        k, copies = spec.num_experts_per_tok, spec.num_experts_per_tok + spec.n_shared_experts
        inter = spec.moe_intermediate_size
        total += copies * 3 * inter * BF16  # SwiGLU of every routed and shared expert
        total += (k + 1) * h * BF16  # combine: read k expert outputs, write the weighted sum
        total += 2 * spec.n_routed_experts * 4  # router softmax/sigmoid and top-k over fp32 scores
        gemm_inputs += [h, copies * inter]  # expert inputs (quantized once, before dispatch); down-proj inputs
    total += quant * sum(gemm_inputs)
    return float(total)


def loss_bytes_per_token(spec: ModelSpec, heads: int = 1) -> float:
    """Forward + backward HBM bytes per token of the softmax cross-entropy over fp32 logits, per output head."""
    return float(heads * 4 * spec.vocab_size * 4)  # write logits, read for softmax; write and read the gradient

"""Activation elements a layer keeps per token for its backward pass.

Counted term by term from what each op's backward reads, assuming a fused
(flash) attention kernel, so nothing grows with the square of the sequence:
the attention kernel keeps q, k, v, its output and one fp32 log-sum-exp per
head. Each count is split into `fp8_cacheable` (what V3 caches in fp8, report
section 3.3.2: inputs of Linear layers and of the MoE SwiGLU) and `other`.

Recomputation modes:
- `none`: everything is kept;
- `selective`: V3's set (report section 3.3): RMSNorm outputs, the MLA
  up-projections (q, k, v) and the SwiGLU output are recomputed in backward;
  and (our assumption, not stated there) routed experts' outputs are not kept,
  the combine weight being applied before the down projection;
- `full`: only each layer's input is kept, and one layer's full set is rebuilt
  at a time (`recompute_working_elems`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from workloads.spec import ModelSpec

if TYPE_CHECKING:
    from workloads.ops import Op

RECOMPUTE_MODES = ("none", "selective", "full")
# What `selective` runs again in the backward, as kernels of their own, by op name (workloads.ops): the ops
# whose outputs the counts below do not keep. Every model: the RMSNorms; MLA: its up-projections and the RoPE on
# the up-projected queries and keys too (V3's trace runs each of these forward kernels twice a layer). The
# SwiGLU's output is recomputed inside its backward kernel, which reads its inputs anyway (V3's trace:
# `swiglu_forward_backward_with_weight`, one kernel): no extra pass.
SELECTIVE_RECOMPUTED = ("input_norm", "post_attention_norm")
SELECTIVE_RECOMPUTED_MLA = ("latent_norms", "q_b_proj", "kv_b_proj", "rope")


def recomputed_names(recompute: str, mla: bool) -> tuple[str, ...]:
    """Names of the forward ops `selective` runs again in the backward (none for the other modes)."""
    if recompute != "selective":
        return ()
    return SELECTIVE_RECOMPUTED + (SELECTIVE_RECOMPUTED_MLA if mla else ())


def recomputed(ops: Sequence[Op], recompute: str, mla: bool) -> list[Op]:
    """The forward ops of a layer's list (`workloads.ops`) that `recompute` runs again in its backward: `full`
    all of them, `selective` those `recomputed_names` names. The training model, the host's launches and
    compare-trace read this one list."""
    forward = [op for op in ops if op.phase == "forward"]
    if recompute == "full":
        return forward
    again = recomputed_names(recompute, mla)
    return [op for op in forward if op.name in again]


def attention_activation_elems(spec: ModelSpec, recompute: str = "none") -> dict[str, float]:
    """Elements per token kept by one attention block, as `fp8_cacheable` and `other`."""
    h, heads = spec.hidden_size, spec.num_attention_heads
    qk, v = spec.qk_head_dim, spec.v_dim
    selective = recompute == "selective"
    fp8_cacheable = heads * v  # attention output, read by o_proj's weight gradient
    other = h + 2 * heads  # block input (norm backward); fp32 log-sum-exp per head
    if not selective:
        fp8_cacheable += h  # norm output, read by the q/k/v (or q_a/kv_a) projections
    if spec.attention == "mla":
        other += spec.q_lora_rank + spec.kv_lora_rank + spec.qk_rope_head_dim  # q_a / kv_a outputs
        if not selective:
            fp8_cacheable += spec.q_lora_rank + spec.kv_lora_rank  # normed latents, inputs of q_b / kv_b
            other += heads * (2 * qk + v)  # up-projected q, k, v for the attention kernel
    else:
        other += heads * qk + spec.kv_heads * (qk + v)  # q, k, v for the attention kernel
    return {"fp8_cacheable": fp8_cacheable, "other": other}


def ffn_activation_elems(spec: ModelSpec, moe: bool, recompute: str = "none") -> dict[str, float]:
    """Elements per token kept by one FFN block (dense SwiGLU or DeepSeekMoE)."""
    h = spec.hidden_size
    selective = recompute == "selective"

    # Per SwiGLU: gate and up outputs (its inputs, read by its backward), and
    # act(gate)*up, the down projection's input, unless recomputed from them.
    def swiglu(inter: int) -> int:
        return (2 if selective else 3) * inter

    cached = 0 if selective else h  # norm output (input of gate/up, router, shared expert)
    other = h  # block input
    if not moe:
        return {"fp8_cacheable": cached + swiglu(spec.intermediate_size), "other": other}
    k = spec.num_experts_per_tok
    # A dispatched copy of the token per routed expert, and each expert's SwiGLU.
    cached += k * (h + swiglu(spec.moe_intermediate_size)) + swiglu(spec.shared_intermediate_size)
    # fp32 gate affinities. The combine weight g's gradient is <dy, expert output>; kept
    # outputs serve it, unless (selective) g scales the SwiGLU output before down_proj,
    # when it is <dL/d(act), act> from tensors the backward has anyway.
    other += 2 * spec.n_routed_experts + (0 if selective else k * h)
    return {"fp8_cacheable": cached, "other": other}


def activation_elems_per_token(spec: ModelSpec, moe: bool, recompute: str = "none") -> dict[str, float]:
    """Elements per token one decoder layer keeps (`none` or `selective`), as fp8_cacheable / other."""
    return dict(_activation_elems_per_token(spec, moe, recompute))


@lru_cache(maxsize=1024)
def _activation_elems_per_token(spec: ModelSpec, moe: bool, recompute: str) -> tuple[tuple[str, float], ...]:
    """Once per model and layer kind: a training memory check asks for every layer of every stage."""
    if recompute not in RECOMPUTE_MODES[:2]:
        raise ValueError(f"recompute={recompute!r}; per-layer counts exist for 'none' and 'selective'")
    attn, ffn = attention_activation_elems(spec, recompute), ffn_activation_elems(spec, moe, recompute)
    return tuple((key, attn[key] + ffn[key]) for key in attn)


def stage_activation_elems(spec: ModelSpec, blocks: list[bool], recompute: str = "none") -> dict[str, float]:
    """Elements per token a stage keeps for each micro-batch in flight; `blocks` holds MoE flags."""
    return dict(_stage_activation_elems(spec, tuple(blocks), recompute))


@lru_cache(maxsize=4096)
def _stage_activation_elems(spec: ModelSpec, blocks: tuple[bool, ...], recompute: str) -> tuple[tuple[str, float], ...]:
    """Once per stage content: memory checks ask for the same stages again and again."""
    if recompute not in RECOMPUTE_MODES:
        raise ValueError(f"recompute={recompute!r}; use one of {', '.join(RECOMPUTE_MODES)}")
    if recompute == "full":
        return (("fp8_cacheable", 0.0), ("other", float(len(blocks) * spec.hidden_size)))  # block inputs
    out = {"fp8_cacheable": 0.0, "other": 0.0}
    for moe in blocks:
        for key, n in _activation_elems_per_token(spec, moe, recompute):
            out[key] += n
    return tuple(out.items())


def recompute_working_elems(spec: ModelSpec, blocks: list[bool], recompute: str = "none") -> dict[str, float]:
    """Elements per token that full recomputation rebuilds at once: one block's full set."""
    sets = [activation_elems_per_token(spec, moe) for moe in set(blocks)] if recompute == "full" else []
    return max(sets, key=lambda s: sum(s.values()), default={"fp8_cacheable": 0.0, "other": 0.0})


def logits_bytes_per_token(spec: ModelSpec, include_mtp: bool = False) -> float:
    """fp32 logits the loss keeps per token on the last stage (one set per MTP depth too)."""
    heads = 1 + (spec.num_nextn_predict_layers if include_mtp else 0)
    return 4.0 * spec.vocab_size * heads

"""What a serving GPU holds: its weights, each sequence's KV (a sliding-window layer's as the engine's pool
keeps it), the sequences that fit beside them, and what a prefill forward needs in HBM or streams from host.
"""

from __future__ import annotations

from typing import cast

from simulator.servespec import ServeSpec
from workloads.dtypes import dtype_bytes
from workloads.flops import cached_tokens
from workloads.memory import kv_bytes_per_token_per_layer
from workloads.params import layer_params, param_breakdown

HBM_RESERVE = 0.10  # share of HBM kept for activations, workspaces and fragmentation (assumed)


def weight_bytes_per_gpu(s: ServeSpec, ep: int, redundant: int) -> float:
    """Weights one GPU holds: non-expert weights split over tp, (experts + redundant slots) / ep experts; the MoE
    blocks' (routed and shared experts) at the weights' dtype, the rest at the dense GEMMs' (`dense_dtype`)."""
    spec = s.model
    # the MTP entry turns fractional below (its expert slots move to per_expert)
    p = cast("dict[str, float]", param_breakdown(spec, include_mtp=s.mtp_acceptance is not None))
    experts = p.pop("routed_experts")
    per_expert = experts / spec.n_routed_experts if spec.is_moe else 0.0
    if spec.is_moe and p.get("mtp"):  # the MTP block's experts live with the others; count them as slots too
        per_expert_mtp = layer_params(spec, True, False)["routed_experts"] / spec.n_routed_experts
        p["mtp"] -= per_expert_mtp * spec.n_routed_experts
        per_expert += per_expert_mtp
    small = p.pop("norms") + p.pop("router") + p.pop("embedding") + p.pop("output_head")
    shared = p.pop("shared_experts") / s.tp  # in the MoE blocks: the experts' dtype
    dense = sum(p.values()) / s.tp  # attention, the dense layers' MLPs, the MTP block's
    local_experts = (spec.n_routed_experts + redundant) / ep if spec.is_moe else 0.0
    quantized = (shared + local_experts * per_expert) * dtype_bytes(s.weight_dtype)
    return dense * dtype_bytes(s.dense_dtype) + quantized + small / s.tp * dtype_bytes("bf16")


def prefill_bytes_per_gpu(s: ServeSpec, tokens: int) -> float:
    """HBM a prefill GPU needs: its weights (over the prefill pool's EP and slots) and the KV of the prompts in
    one forward of `tokens` new tokens, cached prefixes included (activations are in the reserve)."""
    return weight_bytes_per_gpu(s, s.prefill_ep, s.prefill_redundant) + _forward_kv_bytes(s, tokens)


def _forward_kv_bytes(s: ServeSpec, tokens: int) -> float:
    """KV of the prompts one prefill forward of `tokens` new tokens per GPU holds, cached prefixes included."""
    prompt = prompt_tokens(s)
    return tokens / (prompt * (1 - s.cache_hit)) * held_tokens(s, prompt) * kv_bytes_per_token(s)


def kv_bytes_per_sequence_per_gpu(s: ServeSpec) -> float:
    """KV bytes one sequence of `context` tokens costs each GPU of its attention group (GQA splits over tp up
    to the KV heads; MLA's latent is needed whole on every tp rank)."""
    spec = s.model
    split = 1 if spec.attention == "mla" else min(s.tp, spec.kv_heads)
    return held_tokens(s, s.context) * kv_bytes_per_token(s) * s.tp / split


def held_tokens(s: ServeSpec, context: float) -> float:
    """Tokens of a `context`-token sequence the KV pool holds per layer (the mean over layers): a sliding-window
    layer keeps its last window (`workloads.flops.cached_tokens`), unless the engine holds every layer whole
    (`window_kv="full"`). What a decode step reads is the window either way."""
    return float(context) if s.window_kv == "full" else cached_tokens(s.model, context)


def max_sequences_per_gpu(s: ServeSpec) -> int:
    """Concurrent sequences per GPU the KV cache holds after weights and the reserve. A tp group serves tp x
    that many; each of its GPUs keeps its KV share of all of them (`kv_bytes_per_sequence_per_gpu`)."""
    free = s.node.gpu.hbm_bytes * (1 - HBM_RESERVE) - weight_bytes_per_gpu(s, s.ep, s.redundant)
    return max(0, int(free / kv_bytes_per_sequence_per_gpu(s)))


def prompt_tokens(s: ServeSpec) -> int:
    """Tokens of a request's prompt: `context` less the output tokens when given."""
    return s.context - (s.output_tokens or 0)


def kv_bytes_per_token(s: ServeSpec) -> float:
    """KV bytes of one token over every layer the deployment caches (the MTP block's too when it drafts)."""
    spec = s.model
    layers = spec.num_hidden_layers + (spec.num_nextn_predict_layers if s.mtp_acceptance is not None else 0)
    return layers * kv_bytes_per_token_per_layer(spec, s.kv_dtype)


def offloaded_bytes_per_gpu(s: ServeSpec, tokens: int) -> float:
    """Weight bytes a prefill GPU streams from host memory each forward under `s.offload_weights`: what does
    not fit beside the forward's KV (layer by layer, prefetched over PCIe while the layers before compute)."""
    if not s.offload_weights:
        return 0.0
    room = s.node.gpu.hbm_bytes * (1 - HBM_RESERVE) - _forward_kv_bytes(s, tokens)
    return max(0.0, weight_bytes_per_gpu(s, s.prefill_ep, s.prefill_redundant) - max(0.0, room))

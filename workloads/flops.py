"""FLOPs per token (counts, not rates), forward and training, by component.

A matrix multiply by a weight of m x n costs 2*m*n FLOPs per token. The
attention core of one layer, for a query that attends `ctx` keys, costs
2*heads*qk_head_dim*ctx (scores) + 2*heads*v_dim*ctx (weighted values). A
causal sequence of length S attends (S + 1) / 2 keys per query on average
(sum_{i=1..S} i / S); a non-causal one attends S. A layer with a sliding
window W attends min(i, W) (Mistral, Gemma, GPT-OSS). Training = forward +
backward, and backward costs twice the forward (input and weight gradients),
so training = 3 x forward. Element-wise work (norms, softmax, SwiGLU gating)
is memory-bound and not counted here, as in the published figures.

Conventions, by name (`FLOP_CONVENTIONS`):
- `"exact"` (default): causal attention, MTP module included when the model has one;
- `"isca-2025"`: causal attention, MTP left out: reproduces the training cost
  table of "Insights into DeepSeek-V3" (ISCA 2025) for V2, V3 and Llama-3.1-405B;
- `"non-causal"`: every query attends the whole sequence, MTP left out (the
  6N + 12*L*h*S style of Kaplan et al. 2020 and Narayanan et al. 2021).
"""

from __future__ import annotations

from workloads.layout import ParallelLayout, stage_blocks
from workloads.params import WEIGHT_COMPONENTS, attention_proj_params, swiglu_params
from workloads.spec import ModelSpec

# The weight components, plus the attention core (FLOPs without weights); norms have no FLOPs.
FLOP_COMPONENTS = ("attn_core", *WEIGHT_COMPONENTS)
FLOP_CONVENTIONS: dict[str, dict[str, bool]] = {
    "exact": {"causal": True, "include_mtp": True},
    "isca-2025": {"causal": True, "include_mtp": False},
    "non-causal": {"causal": False, "include_mtp": False},
}
TRAIN_TO_FORWARD = 3  # forward + backward (2x forward: dX and dW)
LONGEST_CONTEXT = 1 << 24  # ModelSpec's bound on max_position_embeddings
WINDOW_TILE_KEYS = 128  # the key tile attention kernels step through (`window_tile_factor`)


def attended_keys(seq_len: int, causal: bool = True, window: int = 0) -> float:
    """Average number of keys a query attends in a sequence of `seq_len` tokens; with a sliding `window`, the
    query at position p attends min(p, window) (itself and the window - 1 before it; non-causal: the window)."""
    if seq_len <= 0:
        raise ValueError(f"seq_len={seq_len} must be a positive integer")
    if not causal:
        return float(min(seq_len, window) if window else seq_len)
    return _keys_through(seq_len, window) / seq_len


def _keys_through(position: float, window: int) -> float:
    """Keys attended by the queries at positions 1..`position` together: sum of min(p, window) (no window:
    of p); continuous in `position`, which may be a mean (a cached prefix of fractional length)."""
    if not window or position <= window:
        return position * (position + 1) / 2
    return window * (window + 1) / 2 + (position - window) * window


def mean_attended_keys(spec: ModelSpec, seq_len: int, causal: bool = True) -> float:
    """`attended_keys` averaged over the model's layers: its windowed layers attend at most their window.
    Attention FLOPs are linear in the keys, so the mean prices every layer's core in total."""
    full = attended_keys(seq_len, causal)
    if not spec.sliding_window:
        return full
    windowed = attended_keys(seq_len, causal, spec.sliding_window)
    return _layer_mean(spec, full, windowed)


def windowed_keys(spec: ModelSpec, seq_len: int, causal: bool = True) -> float:
    """The windowed layers' part of `mean_attended_keys` (their share of the layers x the keys each attends; 0
    without a window): the attention of those layers runs kernels of its own (`workloads.ops.attention_ops`)."""
    if not spec.sliding_window or seq_len <= spec.sliding_window:  # a window the sequence never fills is no window
        return 0.0
    return _layer_mean(spec, 0.0, attended_keys(seq_len, causal, spec.sliding_window))


def span_windowed_keys(spec: ModelSpec, start: float, new: float) -> float:
    """The windowed layers' part of `span_keys` (0 without a window)."""
    if new <= 0:
        raise ValueError(f"new={new} queries must be > 0")
    w = spec.sliding_window
    if not w or start + new <= w:
        return 0.0
    return _layer_mean(spec, 0.0, (_keys_through(start + new, w) - _keys_through(start, w)) / new)


def window_tile_factor(window: int) -> float:
    """Key-tile work over attended work of a sliding-window attention kernel: a tile of queries runs every
    `WINDOW_TILE_KEYS`-key tile its window touches, the window and one tile more (FlashAttention-3 and cuDNN
    step through keys in tiles of 128), so a window of 128 keys costs the work of 256."""
    if window <= 0:
        raise ValueError(f"window={window} must be a positive number of keys")
    return (window + WINDOW_TILE_KEYS) / window


def span_keys(spec: ModelSpec, start: float, new: float) -> float:
    """Mean keys attended by `new` queries at positions start + 1 .. start + new (a prefill after `start`
    cached tokens; a decode step: new = 1), averaged over the model's layers (causal)."""
    if new <= 0:
        raise ValueError(f"new={new} queries must be > 0")
    full = (_keys_through(start + new, 0) - _keys_through(start, 0)) / new
    if not spec.sliding_window:
        return full
    w = spec.sliding_window
    return _layer_mean(spec, full, (_keys_through(start + new, w) - _keys_through(start, w)) / new)


def cached_tokens(spec: ModelSpec, context: float) -> float:
    """Tokens a sequence of `context` tokens keeps in each layer's KV cache, averaged over the layers (a
    windowed layer keeps its last window): the KV bytes of a sequence are this x the bytes of one token in
    every layer, and a decode step's attention reads as many keys."""
    if not spec.sliding_window:
        return context
    return _layer_mean(spec, context, min(context, spec.sliding_window))


def context_for_cached(spec: ModelSpec, cached: int) -> int:
    """The longest context whose `cached_tokens` is at most `cached` (the inverse); with every layer windowed,
    any context past the window caches no more: the largest context v3sim takes (2**24)."""
    w, n = spec.sliding_window, spec.num_hidden_layers
    if not w or cached <= w:
        return cached
    full = n - spec.sliding_window_layers
    if not full:
        return LONGEST_CONTEXT
    return min(LONGEST_CONTEXT, (cached * n - spec.sliding_window_layers * w) // full)


def _layer_mean(spec: ModelSpec, full: float, windowed: float) -> float:
    n = spec.num_hidden_layers
    return ((n - spec.sliding_window_layers) * full + spec.sliding_window_layers * windowed) / n


def attention_core_flops(spec: ModelSpec, ctx: float) -> float:
    """Forward FLOPs of one layer's QK^T and AV for one query attending `ctx` keys."""
    return 2 * spec.num_attention_heads * (spec.qk_head_dim + spec.v_dim) * ctx


def decode_attention_flops(spec: ModelSpec, ctx: float) -> float:
    """FLOPs of one query token's attention over `ctx` cached tokens in one layer: MLA decodes in the absorbed
    form (scores and values over the kv_lora_rank latent plus the rope key, per head); GQA as in training."""
    if spec.attention == "mla":
        return 2 * spec.num_attention_heads * ctx * (2 * spec.kv_lora_rank + spec.qk_rope_head_dim)
    return attention_core_flops(spec, ctx)


def layer_forward_flops(spec: ModelSpec, moe: bool, ctx: float) -> dict[str, float]:
    """Forward FLOPs per token of one decoder layer, by component."""
    h = spec.hidden_size
    out = dict.fromkeys(FLOP_COMPONENTS, 0.0)
    # Biases add one FLOP per output element, not two: count weights only.
    weights = sum(attention_proj_params(spec).values())
    if spec.attention_bias:
        weights -= spec.num_attention_heads * spec.qk_head_dim + spec.kv_heads * (spec.qk_head_dim + spec.v_dim)
    out["attn_proj"] = 2.0 * weights
    out["attn_core"] = attention_core_flops(spec, ctx)
    if not moe:
        out["dense_ffn"] = 2.0 * swiglu_params(h, spec.intermediate_size)
        return out
    out["routed_experts"] = 2.0 * spec.num_experts_per_tok * swiglu_params(h, spec.moe_intermediate_size)
    out["shared_experts"] = 2.0 * swiglu_params(h, spec.shared_intermediate_size)
    out["router"] = 2.0 * spec.n_routed_experts * h
    return out


def forward_flops_breakdown(
    spec: ModelSpec, seq_len: int, causal: bool = True, include_mtp: bool = True
) -> dict[str, float]:
    """Forward FLOPs per token by component, for sequences of `seq_len` tokens."""
    ctx = mean_attended_keys(spec, seq_len, causal)
    out = dict.fromkeys(FLOP_COMPONENTS, 0.0)
    for moe, count in ((False, spec.num_dense_layers), (True, spec.num_moe_layers)):
        for key, n in layer_forward_flops(spec, moe, ctx).items():
            out[key] += count * n
    out["output_head"] = 2.0 * spec.vocab_size * spec.hidden_size
    if include_mtp:
        out["mtp"] = spec.num_nextn_predict_layers * mtp_forward_flops(spec, ctx)
    return out


def mtp_forward_flops(spec: ModelSpec, ctx: float) -> float:
    """One MTP depth: eh_proj (2h -> h), one block, and the shared output head."""
    h = spec.hidden_size
    block = sum(layer_forward_flops(spec, spec.is_moe, ctx).values())
    return 2.0 * 2 * h * h + block + 2.0 * spec.vocab_size * h


def train_flops_breakdown(
    spec: ModelSpec, seq_len: int, causal: bool = True, include_mtp: bool = True
) -> dict[str, float]:
    """Training (forward + backward) FLOPs per token by component."""
    fwd = forward_flops_breakdown(spec, seq_len, causal, include_mtp)
    return {k: TRAIN_TO_FORWARD * v for k, v in fwd.items()}


def train_flops_per_token(spec: ModelSpec, seq_len: int, convention: str = "exact") -> float:
    """Training FLOPs per token under a named convention (see FLOP_CONVENTIONS)."""
    return sum(train_flops_breakdown(spec, seq_len, **convention_flags(convention)).values())


def forward_flops_per_token(spec: ModelSpec, seq_len: int, convention: str = "exact") -> float:
    """Forward-only FLOPs per token under a named convention."""
    return sum(forward_flops_breakdown(spec, seq_len, **convention_flags(convention)).values())


def convention_flags(convention: str) -> dict[str, bool]:
    """The (causal, include_mtp) flags of a named FLOP convention."""
    if convention not in FLOP_CONVENTIONS:
        raise ValueError(f"unknown FLOP convention {convention!r}; use one of {', '.join(FLOP_CONVENTIONS)}")
    return FLOP_CONVENTIONS[convention]


def stage_forward_flops(
    spec: ModelSpec, layout: ParallelLayout, stage: int, seq_len: int, causal: bool = True, include_mtp: bool = True
) -> dict[str, float]:
    """Forward FLOPs per token of one pipeline stage (whole, before TP/EP split), by component.

    The MTP block's layer is counted in the layer components and its shared
    head in `output_head`; `mtp` keeps only its eh_proj (2h -> h). Windowed layers count at the model's mean
    (as if spread evenly over the stages).
    """
    ctx = mean_attended_keys(spec, seq_len, causal)
    out = dict.fromkeys(FLOP_COMPONENTS, 0.0)
    for moe in stage_blocks(spec, layout, stage, include_mtp):
        for key, n in layer_forward_flops(spec, moe, ctx).items():
            out[key] += n
    if stage == layout.pp - 1:
        depths = spec.num_nextn_predict_layers if include_mtp else 0
        out["output_head"] = (1 + depths) * 2.0 * spec.vocab_size * spec.hidden_size
        out["mtp"] = depths * 2.0 * 2 * spec.hidden_size * spec.hidden_size
    return out

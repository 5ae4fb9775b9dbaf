"""The FLOP and KV-byte oracle: the real layers, counted, against the formulas of `workloads`.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` on layers
built at full model size on the `meta` device (shapes only, no memory), for
one sequence of `seq_len` tokens, forward and then backward. The counter sees
matrix multiplies only, as the analytic counts do (norms, softmax, RoPE and
gating are element-wise and left out on both sides).

Conventions, and why:
- Attention core: the counter charges the dense seq_len x seq_len score
  matrix whether or not it is masked, so it is compared with the
  *non-causal* analytic count, `attention_core_flops(spec, ctx=seq_len)`.
  The causal count is that times (seq_len + 1) / (2 seq_len) exactly
  (`workloads.flops.attended_keys`). Projections are 2-D matmuls on the
  flattened tokens (aten.mm/addmm); the core is batched over heads
  (aten.bmm), which is how the two are told apart.
- Routed experts: the dispatch depends on the routing, which meta tensors do
  not have; one expert is counted on all tokens and multiplied by
  num_experts_per_tok, as if each token went to exactly top-k experts.
- MTP: the whole module as in `mtp_forward_flops` (eh_proj, its block and the
  shared output head), each part counted on the MTP module's own layers.
- Training: every input requires grad, so each matmul's backward computes
  both the input and the weight gradient, the 2x of `TRAIN_TO_FORWARD`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import cast

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from calibration.layers import MTP, Block, KVCache, MoE, attention_for
from workloads.dtypes import dtype_bytes
from workloads.flops import FLOP_COMPONENTS, TRAIN_TO_FORWARD, forward_flops_breakdown
from workloads.memory import kv_bytes_per_token_per_layer
from workloads.spec import ModelSpec

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.float8_e4m3fn}
PROJECTION_OPS = ("aten.mm", "aten.addmm")
CORE_OPS = ("aten.bmm", "aten.baddbmm")
META_DTYPE = torch.bfloat16  # any dtype gives the same counts on meta

# Measured FLOPs: component -> (forward, forward + backward).
Counts = dict[str, tuple[float, float]]


def count_flops(fn: Callable[..., Tensor | tuple[Tensor, ...]], *inputs: Tensor) -> tuple[dict, dict]:
    """FLOPs by aten op (`"aten.mm"`: n) of fn(*inputs), and of the backward of its first output's sum."""
    with FlopCounterMode(display=False) as forward:
        out = fn(*inputs)
    out = out[0] if isinstance(out, tuple) else out
    with FlopCounterMode(display=False) as backward:
        out.float().sum().backward()
    return _by_op(forward), _by_op(backward)


def _by_op(counter: FlopCounterMode) -> dict[str, int]:
    return {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}


def _ops_total(by_op: dict[str, int], ops: tuple[str, ...] | None = None) -> int:
    return sum(n for op, n in by_op.items() if ops is None or op in ops)


def _tokens(spec: ModelSpec, seq_len: int, width: int | None = None) -> Tensor:
    """One meta sequence (1, seq_len, width) that requires grad, as a layer's input does in training."""
    return torch.empty(1, seq_len, width or spec.hidden_size, device="meta", dtype=META_DTYPE, requires_grad=True)


def _per_token(forward: int, backward: int, seq_len: int, times: int = 1) -> tuple[float, float]:
    # Called as _per_token(*map(_ops_total, count_flops(...)), seq_len): count_flops gives two dicts, so the
    # map fills forward and backward; mypy cannot count an iterator, hence the type: ignore[call-arg] there.
    return times * forward / seq_len, times * (forward + backward) / seq_len


def _attention_counts(attn: nn.Module, spec: ModelSpec, seq_len: int) -> Counts:
    """attn_proj and attn_core per token of one attention layer on a fresh sequence."""
    fwd, bwd = count_flops(attn, _tokens(spec, seq_len))
    return {
        "attn_proj": _per_token(_ops_total(fwd, PROJECTION_OPS), _ops_total(bwd, PROJECTION_OPS), seq_len),
        "attn_core": _per_token(_ops_total(fwd, CORE_OPS), _ops_total(bwd, CORE_OPS), seq_len),
    }


def _moe_counts(moe: MoE, spec: ModelSpec, seq_len: int) -> Counts:
    """router, routed_experts (one expert x top-k) and shared_experts per token."""
    flat = _tokens(spec, seq_len)[0]
    out = {"router": _per_token(*map(_ops_total, count_flops(moe.gate, flat)), seq_len)}  # type: ignore[call-arg]
    expert = map(_ops_total, count_flops(moe.experts[0], flat))
    out["routed_experts"] = _per_token(*expert, seq_len, times=spec.num_experts_per_tok)  # type: ignore[call-arg, misc]
    shared = (0, 0) if moe.shared_experts is None else map(_ops_total, count_flops(moe.shared_experts, flat))
    out["shared_experts"] = _per_token(*shared, seq_len)  # type: ignore[call-arg]
    return out


def block_flops(block: Block, spec: ModelSpec, seq_len: int) -> Counts:
    """(forward, forward + backward) FLOPs per token of one built Block, by component."""
    out = _attention_counts(block.self_attn, spec, seq_len)
    if isinstance(block.mlp, MoE):
        return {**out, **_moe_counts(block.mlp, spec, seq_len)}
    ffn = map(_ops_total, count_flops(block.mlp, _tokens(spec, seq_len)))
    return {**out, "dense_ffn": _per_token(*ffn, seq_len)}  # type: ignore[call-arg]


def measured_flops_breakdown(spec: ModelSpec, seq_len: int = 4096) -> Counts:
    """Whole-model (forward, forward + backward) FLOPs per token by component, keyed as FLOP_COMPONENTS.

    One layer of each kind is built on meta and counted; the model's totals
    multiply by its dense and MoE layer counts. `mtp` is the whole module.
    """
    out: Counts = dict.fromkeys(FLOP_COMPONENTS, (0.0, 0.0))
    kinds = ((False, spec.num_dense_layers), (True, spec.num_moe_layers))
    for moe, count in kinds:
        if count:
            layer = block_flops(Block(spec, moe, device="meta", dtype=META_DTYPE), spec, seq_len)
            _accumulate(out, layer, count)
    head = nn.Linear(spec.hidden_size, spec.vocab_size, bias=False, device="meta", dtype=META_DTYPE)
    head_counts = _per_token(*map(_ops_total, count_flops(head, _tokens(spec, seq_len))), seq_len)  # type: ignore[call-arg]
    out["output_head"] = head_counts
    if spec.num_nextn_predict_layers:
        depth = _mtp_depth_counts(spec, seq_len, head_counts)
        out["mtp"] = cast("tuple[float, float]", tuple(spec.num_nextn_predict_layers * n for n in depth))
    return out


def _mtp_depth_counts(spec: ModelSpec, seq_len: int, head_counts: tuple[float, float]) -> tuple[float, float]:
    """One MTP depth per token: its eh_proj and block, counted on the module, plus the shared head."""
    mtp = MTP(spec, device="meta", dtype=META_DTYPE)
    proj = count_flops(mtp.project, _tokens(spec, seq_len), _tokens(spec, seq_len))
    parts = [_per_token(*map(_ops_total, proj), seq_len), head_counts, *block_flops(mtp.block, spec, seq_len).values()]  # type: ignore[call-arg]
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _accumulate(total: Counts, layer: Counts, count: int) -> None:
    for key, (fwd, train) in layer.items():
        total[key] = (total[key][0] + count * fwd, total[key][1] + count * train)


def flop_comparison(spec: ModelSpec, seq_len: int = 4096) -> list[dict]:
    """Rows of whole-model FLOPs per token, analytic vs measured, by component and in total.

    Forward rows are named by component (`attn_proj`); training (forward +
    backward) rows add `:train`. Analytic: `forward_flops_breakdown` with
    causal=False (see the module docstring) and the MTP module included;
    training is TRAIN_TO_FORWARD times that. rel_error = measured / analytic - 1. A sliding window is a mask
    too: the counter charges its layers the whole score matrix, so they are compared unwindowed (what a
    window attends is checked against the mask itself, tests/workloads/test_sliding_window.py).
    """
    whole = replace(spec, sliding_window=0, sliding_window_layers=0)
    analytic = forward_flops_breakdown(whole, seq_len, causal=False, include_mtp=True)
    measured = measured_flops_breakdown(spec, seq_len)
    rows = []
    for phase, suffix, scale in ((0, "", 1), (1, ":train", TRAIN_TO_FORWARD)):
        for key in (*FLOP_COMPONENTS, "total"):
            want = scale * (sum(analytic.values()) if key == "total" else analytic[key])
            got = sum(v[phase] for v in measured.values()) if key == "total" else measured[key][phase]
            rows.append(
                {"component": key + suffix, "analytic_flops": want, "measured_flops": got, "rel_error": _rel(got, want)}
            )
    return rows


def _rel(measured: float, analytic: float) -> float:
    if analytic == 0:
        return 0.0 if measured == 0 else float("inf")
    return measured / analytic - 1


def measured_kv_bytes_per_token(spec: ModelSpec, dtype: str = "bf16", prefill: int = 3, batch: int = 2) -> int:
    """Bytes one token adds to one layer's KV cache, read off the cache tensors after real steps.

    The attention is built at full size on meta; a prefill of `prefill`
    tokens and one decode step fill a cache stored in `dtype`, and its bytes
    are divided by the tokens it holds.
    """
    if prefill <= 0 or batch <= 0:
        raise ValueError(f"prefill={prefill} and batch={batch} must be positive")
    dtype_bytes(dtype)  # names the known formats on a miss
    cache_dtype = TORCH_DTYPES[dtype]
    compute = META_DTYPE if dtype == "fp8" else cache_dtype
    attn = attention_for(spec, device="meta", dtype=compute)
    cache = KVCache(dtype=cache_dtype)
    with torch.no_grad():
        for length in (prefill, 1):
            attn(torch.empty(batch, length, spec.hidden_size, device="meta", dtype=compute), cache)
    tokens = batch * cache.num_tokens
    if cache.nbytes % tokens:
        raise ValueError(f"{spec.name}: cache of {cache.nbytes} bytes is not a whole number per token")
    return cache.nbytes // tokens


def kv_comparison(spec: ModelSpec, dtypes: tuple[str, ...] = ("bf16", "fp8")) -> list[dict]:
    """Rows of KV-cache bytes per token and layer, analytic vs measured, one per dtype."""
    return [
        {
            "dtype": dtype,
            "analytic_bytes": kv_bytes_per_token_per_layer(spec, dtype),
            "measured_bytes": measured_kv_bytes_per_token(spec, dtype),
            "cached": "latent + rope key" if spec.attention == "mla" else "k + v",
        }
        for dtype in dtypes
    ]

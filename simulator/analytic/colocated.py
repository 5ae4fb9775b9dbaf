"""Prefill and decode on the same GPUs (`v3sim serve --colocated`): chunked prefill piggybacked on decode steps,
as TensorRT-LLM's in-flight batching, vLLM and SGLang's mixed chunks run them.

Each step carries the decode batch (one token per sequence, MTP drafts verified too) and a chunk of prompt
tokens. Both go through the same weights in one pass: the step's operation list is the decode layer's and the
prefill layer's, their GEMMs of the same weight merged into one GEMM on both token counts (the weights read
once, as the fused kernel does), their element-wise kernels and collectives each run once on both, attention
kept per phase (decode attention over each sequence's cache, prefill attention over the prompt so far). The
expert all-to-all carries both. With no prompt tokens the step is the decode step exactly.

In steady state a pool must prefill as many prompt tokens as it decodes requests: a request of P prompt and
N output tokens needs P/N prompt tokens per output token, so the steps take the step's output tokens x P/N of
prompt per step on average. A prompt runs in pieces no smaller than it or the step's token budget allows
(`prompt_piece`: a 1,024-token prompt runs whole in an engine whose chunks are 8,192 tokens, or that does not
chunk at all): where that average is less than a piece, one step in so many carries a piece and the rest decode
alone (`steady_step`), so a small batch pays a prompt's attention and the experts it reaches once per prompt,
not a sliver of them every step. TPOT is the mean step; a prompt waits for its turn (TTFT).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from simulator.analytic.pricing import op_s
from simulator.analytic.profile import KernelRates
from simulator.analytic.serving import decode, head_s, largest_meeting, layer_fusions, mtp_s, spec_layer_ops
from simulator.analytic.servingcomm import collective_op_s, ep_comm_s
from simulator.analytic.servingmemory import prompt_tokens
from simulator.servespec import ServeSpec
from workloads.dtypes import dtype_bytes
from workloads.flops import cached_tokens, span_keys
from workloads.gemms import gemm_bytes
from workloads.ops import Op
from workloads.servingops import launched

LIMITS = {"kv": "the KV cache", "tpot": "the TPOT target", "batch": "the given batch", "ttft": "the TTFT target"}


class OutOfReach(ValueError):
    """A co-located target no batch meets: `target` names which ("tpot" or "ttft")."""

    def __init__(self, target: str, message: str) -> None:
        super().__init__(message)
        self.target = target


@dataclass(frozen=True, slots=True)
class MixedStep:
    """One co-located step on one GPU: its seconds and parts, output tokens it emits and prompt tokens it takes."""

    step_s: float
    output_tokens: float
    prompt_tokens: float
    breakdown: dict[str, float]
    piece_step_s: float = 0.0  # `steady_step`: the step that carries a piece of a prompt (0: none carries one)


ONE_PASS = ("elementwise", "collective")  # kernels that run once over the step's concatenated tokens


def merged(decode_ops: tuple[Op, ...], prefill_ops: tuple[Op, ...]) -> list[Op]:
    """The two phases' ops as one pass over the step's tokens, decode's and the chunk's in one batch (as SGLang's
    mixed chunks, vLLM's unified batches and TensorRT-LLM's in-flight batches run them): a GEMM of the same
    weight (name, shape, dtype) in both runs once on both token counts (a grouped GEMM on the experts either
    phase's tokens reach); an element-wise kernel or a collective of the same name runs once on both (one
    kernel's fixed cost, one call's); attention is kept per phase (a decode query reads its cache, a prompt
    token attends its prompt)."""
    out = list(decode_ops)
    index = {_merge_key(op): i for i, op in enumerate(out) if _merge_key(op) is not None}
    for op in prefill_ops:
        key = _merge_key(op)
        i = index.get(key) if key is not None else None
        if i is None:
            out.append(op)
            continue
        both = out[i]
        if op.kind in ONE_PASS:
            out[i] = replace(both, flops=both.flops + op.flops, hbm_bytes=both.hbm_bytes + op.hbm_bytes,
                             ib_bytes=both.ib_bytes + op.ib_bytes, nvlink_bytes=both.nvlink_bytes + op.nvlink_bytes,
                             items=both.items + op.items)  # fmt: skip
            continue
        m = both.m + op.m
        active = 1 - (1 - both.active) * (1 - op.active)  # an expert either phase's tokens reach runs
        size = (both.n, both.k, both.groups, dtype_bytes(both.precision), dtype_bytes("bf16"))
        whole = gemm_bytes(both.m, *size, both.active, both.weight_bytes)
        share = both.hbm_bytes / whole if whole else 1.0  # a GPU's 1/tp share of a split GEMM, as both ops hold
        nbytes = share * gemm_bytes(m, *size, active, both.weight_bytes)
        out[i] = replace(both, m=m, flops=both.flops + op.flops, hbm_bytes=nbytes, active=active)
    return out


def _merge_key(op: Op) -> tuple | None:
    """What makes two phases' ops one kernel of a mixed step: a GEMM's weight, an element-wise kernel's or a
    collective's name; None for attention (one kernel per phase)."""
    if op.kind in ("gemm", "grouped_gemm"):
        return (op.name, op.kind, op.n, op.k, op.groups, op.precision)
    if op.kind in ONE_PASS:
        return (op.name, op.kind, op.component, op.precision)
    return None


def mixed_step(s: ServeSpec, rates: KernelRates, batch: float, chunk: float) -> MixedStep:
    """One step of `batch` decoding sequences and `chunk` prompt tokens per GPU (no overlap of compute and
    the all-to-all: the mixed batch runs as one); with no chunk, the decode step itself."""
    if chunk <= 0:
        d = decode(s, rates, batch, context=decoding_context(s))
        return MixedStep(d.step_s, d.tokens, 0.0, dict(d.breakdown))
    spec, hbm = s.model, s.node.gpu.hbm_bw_bytes_per_s
    tokens = batch * s.verify_tokens
    prompt, hit = prompt_tokens(s), s.cache_hit
    ctx = span_keys(spec, prompt * hit, prompt * (1 - hit))  # a prompt token attends its prefix and the chunks before
    keys = cached_tokens(spec, decoding_context(s))  # a decode query reads its cache (windowed: its last window)
    parts = {"dense_layers": 0.0, "moe_layers": 0.0, "exposed_comm": 0.0, "head": 0.0}
    for moe, count in ((False, spec.num_dense_layers), (True, spec.num_moe_layers)):
        if not count:
            continue
        dec = spec_layer_ops(s, moe, tokens, tokens, keys, "decode")
        pre = spec_layer_ops(s, moe, chunk, chunk, ctx, "prefill")
        ops = launched(merged(dec, pre), layer_fusions(s, "prefill", tokens + chunk))  # a step with prompt tokens
        compute = sum(
            collective_op_s(s, op) if op.kind == "collective" else op_s(op, rates, 1.0, s.expert_imbalance, hbm)
            for op in ops
        )
        parts["moe_layers" if moe else "dense_layers"] += count * compute
        if moe:
            parts["exposed_comm"] += count * ep_comm_s(s, tokens + chunk, s.ep, False, imbalance=s.expert_imbalance)
    parts["head"] = head_s(s, rates, tokens)
    if s.mtp_acceptance is not None:
        parts["mtp"] = mtp_s(s, rates, batch, decoding_context(s), s.expert_imbalance)
    return MixedStep(sum(parts.values()), batch * s.tokens_per_step, chunk, parts)


def new_prompt_tokens_per_gpu(s: ServeSpec) -> float:
    """A prompt's tokens that miss the prompt cache, per GPU of the attention TP group that prefills it."""
    return prompt_tokens(s) * (1 - s.cache_hit) / s.tp


def prompt_piece(s: ServeSpec, chunk: float) -> float:
    """Prompt tokens per GPU a step carries when it carries any, for `chunk` tokens a step on average: a prompt's
    new tokens (`new_prompt_tokens_per_gpu`) or the step's token budget (`s.prefill_tokens`, where given) if less,
    and never less than the average itself (a busy pool takes some in every step)."""
    whole = new_prompt_tokens_per_gpu(s)
    budget = s.prefill_tokens if s.prefill_tokens is not None else whole
    return max(chunk, min(whole, budget))


def steady_step(s: ServeSpec, rates: KernelRates, batch: float, chunk: float) -> MixedStep:
    """The mean step of a steady pool of `batch` decoding sequences per GPU taking `chunk` prompt tokens a step
    on average: each attention unit of an instance (a data-parallel GPU, or a tp group) carries a `prompt_piece`
    in one step of piece / chunk, its prompts arriving apart from the other units'; a step lasts as long as its
    busiest unit's (every GPU waits for it at each MoE layer, as the event model prices a step), so it runs as
    `mixed_step` whenever any unit carries a piece and decodes alone otherwise (TensorRT-LLM's "ADP Balance
    Strategy" blog: with attention DP "the iteration time is dominated by the slowest rank"). The same as
    `mixed_step` where every step carries a piece."""
    if chunk <= 0:
        return mixed_step(s, rates, batch, 0.0)
    piece = prompt_piece(s, chunk)
    mixed = mixed_step(s, rates, batch, piece)
    if piece <= chunk:
        return replace(mixed, piece_step_s=mixed.step_s)
    alone, share = mixed_step(s, rates, batch, 0.0), 1 - (1 - chunk / piece) ** s.attention_units
    parts = {k: share * mixed.breakdown.get(k, 0.0) + (1 - share) * alone.breakdown.get(k, 0.0)
             for k in mixed.breakdown.keys() | alone.breakdown.keys()}  # fmt: skip
    step_s = share * mixed.step_s + (1 - share) * alone.step_s
    return MixedStep(step_s, mixed.output_tokens, chunk, parts, mixed.step_s)


def decoding_context(s: ServeSpec) -> float:
    """Tokens a decoding sequence's cache holds on average in a steady pool: its prompt and half its output
    (sequences sit at every point of their output alike), where `s.context` is the whole request; its KV is
    reserved for the whole request (`max_sequences_per_gpu`), as the event model and TensorRT-LLM's
    no-eviction scheduler do."""
    if s.output_tokens is None:
        return float(s.context)
    return prompt_tokens(s) + (s.output_tokens + 1) / 2


def chunk_for(s: ServeSpec, output_tokens_per_step: float) -> float:
    """Prompt tokens per GPU each step must take for the pool to keep up: the step's output tokens x P/N."""
    if s.output_tokens is None:
        raise ValueError("--colocated needs --output-tokens N: the share of prompt to output sets each step's chunk")
    return output_tokens_per_step * prompt_tokens(s) * (1 - s.cache_hit) / s.output_tokens


def colocated_point(s: ServeSpec, rates: KernelRates, capacity: int) -> tuple[float, str]:
    """The co-located pool's batch per GPU and what set it: the given batch, else the KV cache's capacity where
    it meets `s.tpot_ms` (or no target is set), else the largest batch that does (`largest_meeting`: the mean
    step grows with the batch, its prompts too). A TTFT target is then checked at that batch and, missed, at
    smaller ones (`_meeting_ttft`): TTFT is not monotonic in the batch (a busy pool's prompt waits for fewer,
    bigger chunks as the batch grows; a quiet pool's prompt runs whole in one step, shorter at a smaller
    batch), so the largest smaller batch that meets it is sought on a grid."""
    if s.decode_batch is not None:
        return s.decode_batch, "batch"

    def tpot(batch: int) -> float:  # as colocated_numbers prices it, without the decode-alone step it reports
        out = batch * s.tokens_per_step
        return steady_step(s, rates, batch, chunk_for(s, out)).step_s / s.tokens_per_step

    if s.tpot_ms is None or (at_capacity := tpot(capacity)) * 1e3 <= s.tpot_ms:
        batch, limit = capacity, "kv"
    else:
        target, least = s.tpot_ms / 1e3, tpot(1)
        if least > target:
            raise OutOfReach(
                "tpot",
                f"TPOT {s.tpot_ms:g} ms is out of reach co-located: one sequence per GPU and its share of prompt "
                f"chunks already take {least * 1e3:.1f} ms per token; raise --tpot-ms, or shorten --context",
            )
        batch, limit = largest_meeting(tpot, target, (1, least), (capacity, at_capacity)), "tpot"
    if s.ttft_ms is not None:
        ttft = colocated_numbers(s, rates, batch)["ttft_s"]
        if ttft * 1e3 > s.ttft_ms:
            smaller = _meeting_ttft(s, rates, int(batch))
            if smaller is None:
                raise OutOfReach(
                    "ttft",
                    f"TTFT {s.ttft_ms:g} ms is out of reach co-located: at {batch:g} sequences per GPU (the most "
                    f"{LIMITS[limit]} allows) a prompt takes {ttft * 1e3:,.0f} ms to its first token, and no smaller "
                    "batch meets it; raise --ttft-ms or --tpot-ms, or run separate prefill and decode pools",
                )
            batch, limit = smaller, "ttft"
    return batch, limit


def _meeting_ttft(s: ServeSpec, rates: KernelRates, batch: int) -> int | None:
    """The largest batch below `batch` whose TTFT meets `s.ttft_ms`: the first to meet it on a grid of batches
    each 0.8 of the last, then bisected against the grid point above it (TTFT runs one way between two); None
    where none does."""
    target = s.ttft_ms / 1e3 if s.ttft_ms is not None else 0.0

    def meets(b: int) -> bool:
        return colocated_numbers(s, rates, b)["ttft_s"] <= target

    above, b = batch, int(batch * 0.8)
    while b >= 1 and not meets(b):
        above, b = b, (int(b * 0.8) if b > 1 else 0)
    if b < 1:
        return None
    while above - b > 1:
        mid = (above + b) // 2
        b, above = (mid, above) if meets(mid) else (b, mid)
    return b


def colocated_numbers(s: ServeSpec, rates: KernelRates, batch: float) -> dict[str, Any]:
    """`serve`'s answer for one co-located pool at `batch` sequences per GPU: TPOT, output and input tokens/s
    per GPU, the prompt tokens per step (on average, and in a step that carries a piece of a prompt) and TTFT (a
    prompt's pieces, after half a step's wait)."""
    alone = decode(s, rates, batch, context=decoding_context(s))
    chunk = chunk_for(s, alone.tokens)
    step = steady_step(s, rates, batch, chunk)
    piece = prompt_piece(s, chunk) if chunk else 0.0
    new = new_prompt_tokens_per_gpu(s)
    per_gpu = step.output_tokens / step.step_s
    pieces = max(1.0, new / piece) if piece else 1.0
    return {
        "colocated": True,
        "batch_per_gpu": batch,
        "tpot_s": step.step_s / s.tokens_per_step,
        "decode_step_s": step.step_s,
        "prefill_chunk_tokens_per_gpu": chunk,
        "prompt_piece_tokens_per_gpu": piece,
        "output_tokens_per_s_per_gpu": per_gpu,
        "output_tokens_per_s_per_node": per_gpu * s.node.gpus_per_node,
        "output_tokens_per_s_per_sequence": per_gpu / batch,
        "input_tokens_per_s_per_gpu": chunk / (1 - s.cache_hit) / step.step_s,
        "ttft_s": 0.5 * step.step_s + pieces * (step.piece_step_s or step.step_s),
        "decode_only_step_s": alone.step_s,
        "breakdown": {"colocated": step.breakdown},
    }

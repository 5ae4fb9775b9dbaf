"""Prefill and decode on the same GPUs (`v3sim serve --colocated`): chunked prefill piggybacked on decode steps,
as TensorRT-LLM's in-flight batching, vLLM and SGLang's mixed chunks run them.

Each step carries the decode batch (one token per sequence, MTP drafts verified too) and a chunk of prompt
tokens. Both go through the same weights in one pass: the step's operation list is the decode layer's and the
prefill layer's, their GEMMs of the same weight merged into one GEMM on both token counts (the weights read
once, as the fused kernel does), their element-wise kernels and collectives each run once on both, attention
kept per phase (decode attention over each sequence's cache, prefill attention over the prompt so far). The
expert all-to-all carries both. With no prompt tokens the step is the decode step exactly.

In steady state a pool must prefill as many prompt tokens as it decodes requests: a request of P prompt and
N output tokens needs P/N prompt tokens per output token, so each step's chunk is the step's output tokens
x P/N. TPOT is the step; a prompt waits for its turn in those chunks (TTFT).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from simulator.analytic.pricing import op_s
from simulator.analytic.profile import KernelRates
from simulator.analytic.serving import decode, head_s, largest_meeting, mtp_s, spec_layer_ops
from simulator.analytic.servingcomm import collective_op_s, ep_comm_s
from simulator.analytic.servingmemory import prompt_tokens
from simulator.servespec import ServeSpec
from workloads.dtypes import dtype_bytes
from workloads.flops import cached_tokens, span_keys
from workloads.gemms import gemm_bytes
from workloads.ops import Op

LIMITS = {"kv": "the KV cache", "tpot": "the TPOT target", "batch": "the given batch"}  # what set a batch


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
        compute = sum(
            collective_op_s(s, op) if op.kind == "collective" else op_s(op, rates, 1.0, s.expert_imbalance, hbm)
            for op in merged(dec, pre)
        )
        parts["moe_layers" if moe else "dense_layers"] += count * compute
        if moe:
            parts["exposed_comm"] += count * ep_comm_s(s, tokens + chunk, s.ep, False, imbalance=s.expert_imbalance)
    parts["head"] = head_s(s, rates, tokens)
    if s.mtp_acceptance is not None:
        parts["mtp"] = mtp_s(s, rates, batch, decoding_context(s), s.expert_imbalance)
    return MixedStep(sum(parts.values()), batch * s.tokens_per_step, chunk, parts)


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
    it meets `s.tpot_ms` (or no target is set), else the largest batch that does (`largest_meeting`: the mixed
    step grows with the batch, its chunk too). A TTFT target is then checked at that batch: a smaller batch takes a
    smaller chunk each step, so a prompt waits more steps and no smaller batch brings the first token sooner."""
    if s.decode_batch is not None:
        return s.decode_batch, "batch"

    def tpot(batch: int) -> float:  # as colocated_numbers prices it, without the decode-alone step it reports
        out = batch * s.tokens_per_step
        return mixed_step(s, rates, batch, chunk_for(s, out)).step_s / s.tokens_per_step

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
            raise OutOfReach(
                "ttft",
                f"TTFT {s.ttft_ms:g} ms is out of reach co-located: at {batch:g} sequences per GPU (the most "
                f"{LIMITS[limit]} allows) a prompt's chunks take {ttft * 1e3:,.0f} ms; raise --ttft-ms or --tpot-ms, "
                "or run separate prefill and decode pools",
            )
    return batch, limit


def colocated_numbers(s: ServeSpec, rates: KernelRates, batch: float) -> dict[str, Any]:
    """`serve`'s answer for one co-located pool at `batch` sequences per GPU: TPOT, output and input tokens/s
    per GPU, the chunk per step and TTFT (a prompt's new tokens in chunks, after half a step's wait)."""
    alone = decode(s, rates, batch, context=decoding_context(s))
    chunk = chunk_for(s, alone.tokens)
    step = mixed_step(s, rates, batch, chunk)
    new = prompt_tokens(s) * (1 - s.cache_hit)
    per_gpu = step.output_tokens / step.step_s
    steps_per_prompt = max(1.0, new / chunk) if chunk else 1.0
    return {
        "colocated": True,
        "batch_per_gpu": batch,
        "tpot_s": step.step_s / s.tokens_per_step,
        "decode_step_s": step.step_s,
        "prefill_chunk_tokens_per_gpu": chunk,
        "output_tokens_per_s_per_gpu": per_gpu,
        "output_tokens_per_s_per_node": per_gpu * s.node.gpus_per_node,
        "output_tokens_per_s_per_sequence": per_gpu / batch,
        "input_tokens_per_s_per_gpu": chunk / (1 - s.cache_hit) / step.step_s,
        "ttft_s": (0.5 + steps_per_prompt) * step.step_s,
        "decode_only_step_s": alone.step_s,
        "breakdown": {"colocated": step.breakdown},
    }

"""Serving: prefill and decode throughput, time per output token, KV capacity and cost per token.

A deployment serves one model on pools of GPUs. Attention runs tensor-parallel
over `tp` GPUs (1: data-parallel attention, DeepSeek's way for MLA; dense models
use their node) and every GPU of a pool holds `batch` sequences on average; a
MoE model's experts are spread over `ep` GPUs, `redundant` extra expert slots
included (V3: decode EP320 with 64 slots for redundant and shared experts,
prefill EP32 with 32; V3 report section 3.4).

Per decode step and layer (`decode_layer_s`): the attention GEMMs and the
attention core reading every sequence's KV cache (MLA latent vs GQA heads),
the expert GEMMs at the tokens each local expert sees, weight and KV reads
from HBM, all priced by the GPU's kernel profile (`simulator.analytic.profile`), and
the expert-parallel dispatch and combine over NVLink / the NIC. Two micro-
batches overlap one's compute with the other's communication (each reads the
weights again). Prefill prices the same parts at its token count, compute-
bound, with node-limited dispatch forwarded over NVLink (DeepEP normal mode).

Multi-token prediction as speculative decoding: each step verifies one draft
token per sequence (twice the tokens through the model, plus the MTP module's
forward) and emits 1 + acceptance tokens on average.

What moves between GPUs (the all-to-all, ISCA's network bound, the KV transfer) is priced in
`simulator.analytic.servingcomm`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from hwmodels.units import SECONDS_PER_HOUR
from simulator.analytic.pricing import compute_s, op_s
from simulator.analytic.profile import KernelRates, rates_for
from simulator.analytic.servingcomm import PREFILL_COMM_SMS, collective_op_s, ep_comm_s, kv_transfer, network_bound
from simulator.analytic.servingmemory import (
    HBM_RESERVE,
    held_tokens,
    kv_bytes_per_sequence_per_gpu,
    kv_bytes_per_token,
    max_sequences_per_gpu,
    offloaded_bytes_per_gpu,
    prefill_bytes_per_gpu,
    prompt_tokens,
    weight_bytes_per_gpu,
)
from simulator.names import SERVE_PHASES
from simulator.servespec import ServeSpec
from workloads.dtypes import dtype_bytes
from workloads.engines import NO_FUSIONS, Fusions, load_engine
from workloads.flops import cached_tokens, span_keys, span_windowed_keys
from workloads.ops import Op
from workloads.servingops import moe_in_tp_group, serving_head_ops, serving_layer_ops

PHASES = SERVE_PHASES
PREFILL_TOKENS_PER_GPU = 16384  # new tokens per GPU per prefill forward (deepseek-ai/profile-data: 16K per GPU)
PREFILL_TOKEN_CHOICES = tuple(1 << k for k in range(8, 17))  # chunks a TTFT target picks from: 256 ... 65,536
# A prompt reaching a busy prefill instance waits for the forward in flight: half of one on average
# (forwards of fixed length, arrivals at random: the residual of a deterministic service). The serving event
# model showed a target met "for a prompt that never waits" missed under load (docs/serving.md, Load).
PREFILL_WAIT_FORWARDS = 0.5


def spec_layer_ops(
    s: ServeSpec, moe: bool, tokens: float, queries: float, ctx: float, phase: str, prefix: float = 0.0
) -> tuple[Op, ...]:
    """`layer_ops` of one layer of the deployment `s` (its layout and dtypes): the one place a ServeSpec becomes
    the operation list's arguments. A prefill's keys split between full and sliding-window layers as the
    deployment's prompts span them (`window_key_share`)."""
    window_ctx = ctx * window_key_share(s) if phase == "prefill" and s.model.sliding_window else 0.0
    return layer_ops(
        s.model, moe, tokens, queries, ctx, phase, s.tp, s.ep, s.redundant, s.weight_dtype, s.kv_dtype, prefix,
        s.expert_tp, s.attention_dtype, s.activation_dtype, window_ctx, s.dense_weight_dtype, s.attn_tp_scattered,
        layer_fusions(s, phase, tokens), s.fp8_recipe,
    )  # fmt: skip


def layer_fusions(s: ServeSpec, phase: str, tokens: float) -> Fusions:
    """What the deployment's engine (`s.engine`) fuses in a `phase` step of `tokens` per GPU: the TP group holds
    tokens x tp, each all-reduce a bf16 vector of hidden per token; the experts need an all-to-all where they sit
    beyond the TP group."""
    if s.engine == "none":
        return NO_FUSIONS
    gpu, group = s.node.gpu, tokens * s.tp
    all_to_all = s.model.is_moe and s.ep > 1 and not moe_in_tp_group(s.tp, s.ep)
    message = group * s.model.hidden_size * dtype_bytes("bf16")
    return load_engine(s.engine).fusions(phase, s.model.is_moe, gpu.die, gpu.name, s.tp, group, message, all_to_all)


def window_key_share(s: ServeSpec) -> float:
    """The sliding-window layers' share of the keys a prefill token attends, over the deployment's prompts (the
    new tokens after the cached prefix; 0 without a window)."""
    hit, prompt = s.cache_hit, prompt_tokens(s)
    new = prompt * (1 - hit)
    return span_windowed_keys(s.model, prompt * hit, new) / span_keys(s.model, prompt * hit, new)


def _shared_expert_s(s: ServeSpec, rates: KernelRates, tokens: float, phase: str) -> float:
    """Seconds of one MoE layer's shared-expert GEMMs for `tokens` per GPU (what single-batch overlap hides
    the combine under)."""
    return sum(op_s(op, rates) for op in spec_layer_ops(s, True, tokens, tokens, 1.0, phase) if
               op.component == "shared_experts")  # fmt: skip


def layer_compute_s(
    s: ServeSpec,
    rates: KernelRates,
    moe: bool,
    tokens: float,
    queries: float,
    ctx: float,
    phase: str = "decode",
    prefix: float = 0.0,
    sm_share: float = 1.0,
    expert_imbalance: float = 1.0,
) -> float:
    """One layer's compute seconds on one GPU for `tokens` tokens through the weights, of which `queries`
    attend over `ctx` keys each (decode: tokens = queries; prefill: the prompt's new tokens, `prefix` cached
    ones per GPU): its operation list (`workloads.servingops.serving_layer_ops`) priced op by op on `sm_share` of the
    SMs, routed experts at the busiest GPU's `expert_imbalance` x the mean load, element-wise kernels at their
    class's share of the HBM datasheet, TP collectives as timed on the node (`collective_op_s`)."""
    args = (tokens, queries, ctx, phase, prefix, sm_share, expert_imbalance)
    return sum(t for _, t in _priced_layer_ops(s, rates, moe, *args))


def _priced_layer_ops(
    s: ServeSpec, rates: KernelRates, moe: bool, tokens: float, queries: float, ctx: float, phase: str,
    prefix: float, sm_share: float, expert_imbalance: float,
) -> list[tuple[Op, float]]:  # fmt: skip
    """Each op of one layer (`layer_ops`) with its seconds, as `layer_compute_s` describes."""
    ops = spec_layer_ops(s, moe, tokens, queries, ctx, phase, prefix)
    hbm = s.node.gpu.hbm_bw_bytes_per_s
    return [
        (op, collective_op_s(s, op) if op.kind == "collective" else op_s(op, rates, sm_share, expert_imbalance, hbm))
        for op in ops
    ]


SEGMENTS = ("attn0", "attn1", "shared", "mlp")  # the two-batch schedule's compute segments (`two_batch_layer_s`)


def layer_segments_s(
    s: ServeSpec,
    rates: KernelRates,
    tokens: float,
    queries: float,
    ctx: float,
    phase: str,
    prefix: float = 0.0,
    sm_share: float = 1.0,
    expert_imbalance: float = 1.0,
) -> dict[str, float]:
    """One MoE layer's compute seconds on one GPU (as `layer_compute_s` prices them, same sum) by the segments
    DeepSeek's overlap schedules draw (deepseek-ai/profile-data README, prefill and decode figures): attn0, the
    MLA projections and what comes before core attention; attn1, core attention, the output projection and
    the MoE routing gate; shared, the shared experts; mlp, the routed experts and their element-wise work."""
    out = dict.fromkeys(SEGMENTS, 0.0)
    for op, t in _priced_layer_ops(s, rates, True, tokens, queries, ctx, phase, prefix, sm_share, expert_imbalance):
        out[_segment(op)] += t
    return out


def _segment(op: Op) -> str:
    if op.component == "shared_experts":
        return "shared"
    late = op.component in ("attn_core", "router") or op.name.startswith(("o_proj", "router_topk", "cast.o_proj"))
    if late:
        return "attn1"
    return "attn0" if op.part == "attn" else "mlp"


def two_batch_layer_s(seg: dict[str, float], dispatch_s: float, combine_s: float, prefill: bool) -> float:
    """One MoE layer's seconds under two-batch overlap, each micro-batch's segments (`layer_segments_s`) and
    dispatch and combine placed as DeepSeek's profile figures place them (deepseek-ai/profile-data README): a
    communication runs beside the compute drawn under it, and each span lasts the longer of the two.
    Prefill: max(attn + shared, combine) + max(attn, dispatch) + max(mlp, dispatch) + max(mlp + shared,
    combine). Decode: twice max(shared + attn0, dispatch) + mlp + max(attn1, combine): the routed experts run
    with no communication beside them."""
    attn, shared, mlp = seg["attn0"] + seg["attn1"], seg["shared"], seg["mlp"]
    if prefill:
        return (
            max(attn + shared, combine_s) + max(attn, dispatch_s) + max(mlp, dispatch_s) + max(mlp + shared, combine_s)
        )
    return 2 * (max(shared + seg["attn0"], dispatch_s) + mlp + max(seg["attn1"], combine_s))


@lru_cache(maxsize=4096)
def layer_ops(*args: Any) -> tuple[Op, ...]:
    """`workloads.servingops.serving_layer_ops`, built once per distinct layer and load (a batch sweep re-asks)."""
    return tuple(serving_layer_ops(*args))


def head_s(s: ServeSpec, rates: KernelRates, queries: float, phase: str = "decode") -> float:
    """Seconds of the output head for `queries` tokens per GPU (in the engine's timed library, if any)."""
    library = layer_fusions(s, phase, queries).gemms
    return compute_s(serving_head_ops(s.model, queries, phase, s.tp, library), rates)


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase's step on one GPU: seconds, tokens it produces (decode) or takes in (prefill, cache hits
    included), breakdown."""

    step_s: float
    tokens: float
    breakdown: dict[str, float]
    micro_batches: int = 1  # 2: two micro-batches overlap compute and communication


def _pass_s(
    s: ServeSpec,
    rates: KernelRates,
    tokens: float,
    queries: float,
    ctx: float,
    ep: int,
    fwd: bool,
    prefix: float = 0,
    expert_imbalance: float = 1.0,
) -> tuple[float, dict[str, float], int]:
    """(seconds, breakdown, micro-batches) of one forward pass of `tokens` per GPU through every layer, the
    head included, as `s.overlap` says: two micro-batches (one's compute hiding the other's dispatch and
    combine, each reading the weights again), one batch (its combine under the shared expert for
    single-batch, nothing hidden for none), or under auto whichever of one and two is faster (a small batch
    is not worth splitting). Under overlap prefill's dispatch and combine run on DeepEP's normal kernels,
    which hold PREFILL_COMM_SMS of the SMs while the other micro-batch computes; decode's low-latency kernels
    free every SM once the RDMA messages are issued (deepseek-ai/profile-data README, "Decoding")."""
    spec, phase = s.model, "prefill" if fwd else "decode"
    mode = s.overlap if spec.is_moe and ep > 1 else "none"
    sms = s.node.gpu.sm_count

    def with_micro(micro: int) -> tuple[float, dict[str, float], int]:
        parts = {"dense_layers": 0.0, "moe_layers": 0.0, "exposed_comm": 0.0, "head": 0.0}
        share = (sms - PREFILL_COMM_SMS) / sms if fwd and micro == 2 and sms > PREFILL_COMM_SMS else 1.0
        for moe, count in ((False, spec.num_dense_layers), (True, spec.num_moe_layers)):
            if not count:
                continue
            if moe and micro == 2:  # the two micro-batches as DeepSeek's schedule places their parts
                seg = layer_segments_s(s, rates, tokens / 2, queries / 2, ctx, phase, prefix / 2, share,
                                       expert_imbalance)  # fmt: skip
                compute = 2 * sum(seg.values())
                dispatch, combine = (ep_comm_s(s, tokens / 2, ep, fwd, part=p, imbalance=expert_imbalance)
                                     for p in ("dispatch", "combine"))  # fmt: skip
                layer = two_batch_layer_s(seg, dispatch, combine, fwd)
            else:
                compute = micro * layer_compute_s(
                    s, rates, moe, tokens / micro, queries / micro, ctx, phase, prefix / micro,
                    share if moe else 1.0, expert_imbalance,
                )  # fmt: skip
                comm = micro * ep_comm_s(s, tokens / micro, ep, fwd, imbalance=expert_imbalance) if moe else 0.0
                layer = compute + comm
            if moe and mode == "single-batch":  # the combine runs while the shared expert computes
                combine = ep_comm_s(s, tokens, ep, fwd, part="combine", imbalance=expert_imbalance)
                layer -= min(combine, _shared_expert_s(s, rates, tokens, phase))
            parts["moe_layers" if moe else "dense_layers"] += count * compute
            parts["exposed_comm"] += count * (layer - compute)
        parts["head"] = head_s(s, rates, queries, phase)
        return sum(parts.values()), parts, micro

    micros = (1, 2) if mode == "auto" else (2,) if mode == "two-batch" else (1,)
    return min((with_micro(m) for m in micros), key=lambda p: p[0])


def decode(
    s: ServeSpec, rates: KernelRates, batch: float, expert_imbalance: float | None = None, context: float | None = None
) -> Phase:
    """One decode step of `batch` sequences per GPU (with MTP: `s.mtp_tokens` drafts each verified too), each
    reading `context` cached tokens (None: `s.context`); the busiest GPU's routed experts see
    `expert_imbalance` x the mean load (None: the spec's; the serving event model draws it from the router
    simulation)."""
    imbalance = s.expert_imbalance if expert_imbalance is None else expert_imbalance
    context = s.context if context is None else context
    tokens, keys = batch * s.verify_tokens, cached_tokens(s.model, context)  # a windowed layer reads its window
    step, parts, micro = _pass_s(s, rates, tokens, tokens, keys, s.ep, False, 0.0, imbalance)
    if s.mtp_acceptance is not None:
        parts["mtp"] = mtp_s(s, rates, batch, context, imbalance)
        step += parts["mtp"]
    return Phase(step, batch * s.tokens_per_step, parts, micro)


def mtp_s(
    s: ServeSpec, rates: KernelRates, batch: float, context: float | None = None, expert_imbalance: float = 1.0
) -> float:
    """Seconds of a decode step's MTP drafts at `batch` sequences per GPU (0 without MTP), each sequence's cache
    `context` tokens (None: `s.context`): the module drafts each token in turn, one MoE block and the output
    projection each, its experts and all-to-all at the step's `expert_imbalance`."""
    if s.mtp_acceptance is None:
        return 0.0
    keys = cached_tokens(s.model, s.context if context is None else context)
    block = layer_compute_s(s, rates, s.model.is_moe, batch, batch, keys, expert_imbalance=expert_imbalance)
    comm = ep_comm_s(s, batch, s.ep, False, imbalance=expert_imbalance)
    return s.mtp_tokens * (block + comm + head_s(s, rates, batch))


def tpot_s(s: ServeSpec, rates: KernelRates, batch: int) -> float:
    """Time per output token at `batch` sequences per GPU (MTP: a step emits `s.tokens_per_step`)."""
    return decode(s, rates, batch).step_s / s.tokens_per_step


@dataclass(frozen=True, slots=True)
class DecodePoint:
    """The decode operating point: the batch per GPU, its step, what set the batch (`kv`: the cache is full,
    `tpot`: the target, `batch`: given) and what bounds the step (`compute` or `network`)."""

    batch: float  # a fraction where an instance holds fewer sequences than its GPUs
    phase: Phase
    limit: str
    bound: str


def decode_point(s: ServeSpec, rates: KernelRates, capacity: int) -> DecodePoint:
    """The largest batch the KV cache holds that meets `s.tpot_ms` (`largest_meeting`: TPOT rises with the
    batch), or the given batch, or (no target) the cache's capacity."""
    if s.decode_batch is not None:
        batch, limit = s.decode_batch, "batch"
    elif s.tpot_ms is None or (at_capacity := tpot_s(s, rates, capacity)) * 1e3 <= s.tpot_ms:
        batch, limit = capacity, "kv"
    else:
        target, least = s.tpot_ms / 1e3, tpot_s(s, rates, 1)
        if least > target:
            raise ValueError(
                f"TPOT {s.tpot_ms:g} ms is out of reach: one sequence per GPU already takes {least * 1e3:.1f} ms per "
                f"token on this deployment; raise --tpot-ms, or shorten --context, or change --ep"
            )
        batch = largest_meeting(lambda b: tpot_s(s, rates, b), target, (1, least), (capacity, at_capacity))
        limit = "tpot"
    d = decode(s, rates, batch)
    exposed, compute = d.breakdown["exposed_comm"], d.breakdown["moe_layers"] + d.breakdown["dense_layers"]
    network = exposed > 0.01 * d.step_s if d.micro_batches == 2 else exposed > compute  # comm outlasts compute
    return DecodePoint(batch, d, limit, "network" if network else "compute")


def largest_meeting(f: Callable[[int], float], target: float, lo: tuple[int, float], hi: tuple[int, float]) -> int:
    """The largest integer n with f(n) <= target, f rising, between `lo` = (n, f(n)) that meets the target and
    `hi` that does not. Each step interpolates where f crosses the target (a step time is near linear in the
    batch: a few steps), and bisects after any step that failed to halve the bracket (never more steps than
    twice a bisection's)."""
    (a, fa), (b, fb) = lo, hi
    interpolate = True
    while b - a > 1:
        width = b - a
        guess = a + (target - fa) / (fb - fa) * width if interpolate and fb > fa else (a + b) / 2
        mid = min(b - 1, max(a + 1, round(guess)))
        value = f(mid)
        if value <= target:
            a, fa = mid, value
        else:
            b, fb = mid, value
        interpolate = 2 * (b - a) <= width
    return a


def prefill(s: ServeSpec, rates: KernelRates, tokens: int | None = None) -> Phase:
    """One prefill forward of `tokens` new prompt tokens per GPU (default: `s.prefill_tokens`, else
    PREFILL_TOKENS_PER_GPU). Prompt-cache hits (`s.cache_hit` of each prompt) are input tokens too: they cost
    no pass through the weights, but their KV is read from the cache tier (overlapped with compute, as
    prefetching does), MLA up-projects it, and the new tokens attend over the cached prefix."""
    tokens = tokens or s.prefill_tokens or PREFILL_TOKENS_PER_GPU
    hit, prompt = s.cache_hit, prompt_tokens(s)
    new = prompt * (1 - hit)
    ctx = span_keys(s.model, prompt * hit, new)  # a new token attends the cached prefix and the new ones before it
    prefix = tokens * hit / (1 - hit)  # cached tokens per GPU that come with `tokens` new ones
    step, parts, micro = _pass_s(
        s.for_prefill(), rates, tokens, tokens, ctx, s.prefill_ep, True, prefix, s.expert_imbalance
    )
    load = tokens / new * held_tokens(s, prompt * hit) * kv_bytes_per_token(s) / s.cache_bw_bytes_per_s_per_gpu
    parts["exposed_cache_load"] = max(0.0, load - step)
    stream = offloaded_bytes_per_gpu(s, tokens) / s.node.pcie_bw_bytes_per_s
    parts["exposed_weight_offload"] = max(0.0, stream - max(step, load))
    return Phase(max(step, load, stream), tokens / (1 - hit), parts, micro)


def ttft_s(s: ServeSpec, p: Phase, tokens: int) -> float:
    """Time to first token of a request whose new prompt tokens run in forwards of `tokens` per GPU, on a
    prefill pool busy at its operating point: the prompt first waits for the forward in flight (half a
    forward on average, PREFILL_WAIT_FORWARDS), then runs in one forward when it fits (packed with others),
    else one per chunk, one after another."""
    new = prompt_tokens(s) * (1 - s.cache_hit)
    return p.step_s * (PREFILL_WAIT_FORWARDS + max(1, math.ceil(new / tokens - 1e-9)))


@dataclass(frozen=True, slots=True)
class PrefillPoint:
    """The prefill operating point: new tokens per GPU per forward, its step, the time to first token, and
    what set the chunk (`ttft`: the target, `given`, `default`)."""

    tokens: int
    phase: Phase
    ttft_s: float
    limit: str


def prefill_point(s: ServeSpec, rates: KernelRates) -> PrefillPoint:
    """Given or default tokens per forward, or with `s.ttft_ms` the candidate chunk with the most input
    tokens/s whose time to first token meets the target."""
    if s.ttft_ms is None:
        tokens = s.prefill_tokens or PREFILL_TOKENS_PER_GPU
        p = prefill(s, rates, tokens)
        return PrefillPoint(tokens, p, ttft_s(s, p, tokens), "given" if s.prefill_tokens else "default")
    points = []
    for tokens in PREFILL_TOKEN_CHOICES:
        p = prefill(s, rates, tokens)
        points.append(PrefillPoint(tokens, p, ttft_s(s, p, tokens), "ttft"))
    met = [pt for pt in points if pt.ttft_s * 1e3 <= s.ttft_ms]
    if not met:
        best = min(points, key=lambda pt: pt.ttft_s)
        raise ValueError(
            f"TTFT {s.ttft_ms:g} ms is out of reach: the fastest first token is {best.ttft_s * 1e3:.0f} ms "
            f"({best.tokens:,} tokens per GPU per forward); raise --ttft-ms or shorten the prompt"
        )
    return max(met, key=lambda pt: pt.phase.tokens / pt.phase.step_s)


def serve(s: ServeSpec, profile: KernelRates | str | None = None, phase: str = "both") -> dict[str, object]:
    """The deployment's throughput, latency, capacity and cost (JSON-ready), at its operating point: the
    decode batch from the TPOT target or the KV cache, the prefill chunk from the TTFT target."""
    if phase not in PHASES:
        raise ValueError(f"phase={phase!r}; use one of {', '.join(PHASES)}")
    rates = rates_for(profile, s.node.gpu)
    spec, node = s.model, s.node
    capacity = max_sequences_per_gpu(s)
    if capacity < 1:
        need = weight_bytes_per_gpu(s, s.ep, s.redundant) / 1e9
        raise ValueError(
            f"{spec.name} does not fit: {need:.1f} GB of weights per GPU leave no room for one {s.context}-token "
            f"sequence in {node.gpu.memory_text()}; raise --tp or --ep, or use fp8 weights"
        )
    if s.decode_batch is not None and s.decode_batch > capacity:
        per = f"{s.batch_per_instance} per instance of {s.instance_gpus} GPUs" if s.batch is None else f"{s.batch}"
        raise ValueError(f"batch={per} sequences of {s.context} tokens do not fit; at most {capacity} per GPU")
    price_per_s = s.usd_per_gpu_hour / SECONDS_PER_HOUR
    g = node.gpus_per_node
    out: dict[str, Any] = {
        "model": spec.name,
        "gpu": node.gpu.name,
        "node": node.name,
        "gpus_per_node": g,
        "phase": phase,
        "context": s.context,
        "tp": s.tp,
        "ep": s.ep,
        "redundant": s.redundant,
        "prefill_ep": s.prefill_ep,
        "prefill_redundant": s.prefill_redundant,
        "engine": s.engine,
        "max_concurrent_sequences_per_gpu": capacity,
        "weights_gb_per_gpu": weight_bytes_per_gpu(s, s.ep, s.redundant) / 1e9,
        "kv_gb_per_sequence": kv_bytes_per_sequence_per_gpu(s) / 1e9,
        "network_bound_tpot_s": network_bound(s),
        "usd_per_gpu_hour": s.usd_per_gpu_hour,
        "notes": list(s.notes),
    }
    breakdown: dict[str, object] = {}
    if s.colocated:  # one pool: prefill chunks ride the decode steps
        from simulator.analytic.colocated import colocated_numbers, colocated_point

        batch, limit = colocated_point(s, rates, capacity)
        numbers = colocated_numbers(s, rates, batch)
        per_gpu = numbers["output_tokens_per_s_per_gpu"]
        numbers |= {
            "decode_limit": limit,
            "tpot_target_s": None if s.tpot_ms is None else s.tpot_ms / 1e3,
            "ttft_target_s": None if s.ttft_ms is None else s.ttft_ms / 1e3,
            "batch_per_instance": batch * s.instance_gpus, "instance_gpus": s.instance_gpus,
            "usd_per_million_output_tokens": price_per_s / per_gpu * 1e6,
            "input_tokens_per_s_per_node": numbers["input_tokens_per_s_per_gpu"] * g,
            "usd_per_request": price_per_s * s.output_tokens / per_gpu if s.output_tokens else None,
        }  # fmt: skip
        return out | numbers
    if phase in ("decode", "both"):
        point = decode_point(s, rates, capacity)
        d, batch = point.phase, point.batch
        per_gpu = d.tokens / d.step_s
        out |= {
            "batch_per_gpu": batch,
            "batch_per_instance": batch * s.instance_gpus,
            "instance_gpus": s.instance_gpus,
            "tpot_s": d.step_s / s.tokens_per_step,
            "tpot_target_s": None if s.tpot_ms is None else s.tpot_ms / 1e3,
            "decode_limit": point.limit,
            "decode_bound": point.bound,
            "decode_step_s": d.step_s,
            "decode_micro_batches": d.micro_batches,
            "output_tokens_per_s_per_gpu": per_gpu,
            "output_tokens_per_s_per_node": per_gpu * g,
            "output_tokens_per_s_per_sequence": per_gpu / batch,
            "usd_per_million_output_tokens": price_per_s / per_gpu * 1e6,
        }
        breakdown["decode"] = d.breakdown
        if s.mtp_acceptance is not None:
            plain = decode(replace(s, mtp_acceptance=None, mtp_acceptance_by_depth=()), rates, batch)
            out["mtp_tokens_per_step"] = s.tokens_per_step
            out["mtp_throughput_gain"] = per_gpu / (plain.tokens / plain.step_s)
    if phase in ("prefill", "both"):
        pre = prefill_point(s, rates)
        p = pre.phase
        offloaded = offloaded_bytes_per_gpu(s, pre.tokens)
        prefill_bytes = prefill_bytes_per_gpu(s, pre.tokens) - offloaded
        if prefill_bytes > node.gpu.hbm_bytes * (1 - HBM_RESERVE):
            fix = "lower --prefill-tokens" if s.offload_weights else "lower --prefill-tokens, or --offload-weights"
            raise ValueError(
                f"prefill does not fit: {prefill_bytes / 1e9:.1f} GB per GPU (weights over prefill EP"
                f"{s.prefill_ep} and the KV of {pre.tokens:,} prompt tokens per forward) of "
                f"{node.gpu.memory_text()}; raise --prefill-ep, {fix}"
            )
        out["prefill_gb_per_gpu"] = prefill_bytes / 1e9
        out["offloaded_gb_per_gpu"] = offloaded / 1e9
        per_gpu = p.tokens / p.step_s
        out |= {
            "input_tokens_per_s_per_gpu": per_gpu,
            "input_tokens_per_s_per_node": per_gpu * g,
            "prefill_tokens_per_gpu": pre.tokens,
            "prefill_limit": pre.limit,
            "prefill_step_s": p.step_s,
            "prefill_micro_batches": p.micro_batches,
            "ttft_s": pre.ttft_s,
            "ttft_target_s": None if s.ttft_ms is None else s.ttft_ms / 1e3,
            "cache_hit": s.cache_hit,
            "cache_gb_per_s_per_gpu": s.cache_bw_bytes_per_s_per_gpu / 1e9,
            "usd_per_million_input_tokens": price_per_s / per_gpu * 1e6,
        }
        breakdown["prefill"] = p.breakdown
    if phase == "both":
        out["kv_transfer"] = kv_transfer(s, out["input_tokens_per_s_per_gpu"])
        if s.output_tokens is not None:  # one request through both pools
            prefill_gpu_s = prompt_tokens(s) / out["input_tokens_per_s_per_gpu"]
            decode_gpu_s = s.output_tokens / out["output_tokens_per_s_per_gpu"]
            out["prefill_gpus_per_decode_gpu"] = prefill_gpu_s / decode_gpu_s
            out["usd_per_request"] = price_per_s * (prefill_gpu_s + decode_gpu_s)
    out["breakdown"] = breakdown
    return out

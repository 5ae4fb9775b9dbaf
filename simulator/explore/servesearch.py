"""Deployment search: every decode and prefill layout of a model on a node, each at its SLO operating point,
ranked by dollars per million output tokens, with the Pareto frontier of throughput per GPU against speed
per user (issue 21, item 6).

Decode layouts: expert parallelism over every EP size in whole nodes up to EP_LIMIT and the sizes inside a
node that divide it (never past two slots per expert), each with the fewest redundant expert slots that
spread the experts evenly and EXTRA_SLOTS more where they divide (production buys load balance with them;
the model prices only their memory, so the ranking sees that cost and no benefit); attention TP (MLA: 1, 2,
4, 8; GQA: the divisors of the node up to 8, dividing the heads); multi-token prediction off and on where
the model has it. Each is priced at the largest decode batch meeting the TPOT target
(`serving.decode_point`). Prefill layouts (EP in whole nodes up to PREFILL_EP_LIMIT, the same slot choices)
are priced once per attention layout, at the TTFT target when one is given (`serving.prefill_point`), and
each decode candidate is paired with the prefill layout of most input tokens per GPU. A layout that does
not fit, or cannot meet a target, is skipped and counted by reason.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from hwmodels.units import SECONDS_PER_HOUR
from simulator.analytic.colocated import OutOfReach, colocated_numbers, colocated_point
from simulator.analytic.profile import KernelRates, rates_for
from simulator.analytic.serving import decode_point, prefill_point
from simulator.analytic.servingmemory import max_sequences_per_gpu, prompt_tokens, weight_bytes_per_gpu
from simulator.presets import V3_PUBLISHED_SERVING, deployment
from simulator.servespec import ServeSpec, fewest_redundant

EP_LIMIT = 320  # the largest EP tried: V3's decode EP320 (V3 report 3.4)
PREFILL_EP_LIMIT = 64  # prefill is compute-bound: past a few nodes a larger EP only adds network
EXTRA_SLOTS = (0, 32, 64)  # redundant slots tried beyond the fewest that divide
TP_LIMIT = 8  # attention TP stays inside an 8-GPU NVLink group
MTP_ACCEPTANCE = 0.85  # second-token acceptance of V3's MTP module (V3 report 5.4.3: 85-90%)
PUBLISHED = {**V3_PUBLISHED_SERVING, "mtp": True}  # DeepSeek's production deployment, MTP on (presets)
SKIP_FIT = "weights leave no room for one sequence"
SKIP_TPOT = "TPOT target out of reach"
SKIP_PREFILL = "no prefill layout fits and meets the TTFT target"
SKIP_EXPERT_TP = "--expert-tp does not split the layout's experts"
SKIP_TTFT = "TTFT target out of reach co-located"


@dataclass(frozen=True, slots=True)
class SearchReport:
    """The ranked candidates (best first), the frontier (by output tokens/s per GPU, descending), what was
    tried and skipped, DeepSeek's published deployment as priced here (None where it does not apply) and the
    search's wall time."""

    ranked: tuple[dict[str, Any], ...]
    frontier: tuple[dict[str, Any], ...]
    prefill: tuple[dict[str, Any], ...]
    eps_tried: tuple[int, ...]
    tried: int
    skipped: dict[str, int]
    published: dict[str, Any] | None
    search_s: float

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def ep_sizes(experts: int, gpus_per_node: int) -> list[int]:
    """EP sizes to try for `experts` routed experts (0: dense, EP1): the divisors of a node, then every whole
    number of nodes up to EP_LIMIT, and never past two slots per expert (beyond that a GPU holds only copies)."""
    if not experts:
        return [1]
    limit = min(EP_LIMIT, 2 * experts)
    inside = [e for e in range(1, gpus_per_node) if gpus_per_node % e == 0]
    return [e for e in inside if e <= limit] + list(range(gpus_per_node, limit + 1, gpus_per_node))


def slot_choices(experts: int, ep: int) -> list[int]:
    """Redundant slots for `experts` over `ep` GPUs: the fewest that divide, and EXTRA_SLOTS more that do."""
    least = fewest_redundant(experts, ep)
    return [least + extra for extra in EXTRA_SLOTS if (experts + least + extra) % ep == 0]


def tp_sizes(base: ServeSpec) -> list[int]:
    """Attention TP sizes: powers of two up to TP_LIMIT (MLA) or the node's divisors up to it (GQA), each
    dividing the node and the heads."""
    spec, g = base.model, base.node.gpus_per_node
    sizes = (1, 2, 4, 8) if spec.attention == "mla" else range(1, TP_LIMIT + 1)
    return [t for t in sizes if t <= TP_LIMIT and g % t == 0 and spec.num_attention_heads % t == 0]


def decode_layouts(base: ServeSpec, mtp_acceptance: float) -> list[dict[str, Any]]:
    """Every decode layout (tp, ep, redundant, mtp_acceptance) to price, as ServeSpec fields."""
    spec = base.model
    experts = spec.n_routed_experts if spec.is_moe else 0
    mtps = [None, mtp_acceptance] if spec.num_nextn_predict_layers else [None]
    return [
        {"tp": tp, "ep": ep, "redundant": r, "mtp_acceptance": m}
        for ep in ep_sizes(experts, base.node.gpus_per_node)
        for r in (slot_choices(experts, ep) if spec.is_moe else [0])
        for tp in tp_sizes(base)
        for m in mtps
    ]


def prefill_layouts(base: ServeSpec) -> list[tuple[int, int]]:
    """Every prefill (ep, redundant) to price: the EP sizes of `ep_sizes` in whole nodes up to
    PREFILL_EP_LIMIT, or one node where it is larger (dense: EP1)."""
    spec, g = base.model, base.node.gpus_per_node
    if not spec.is_moe:
        return [(1, 0)]
    eps = [e for e in ep_sizes(spec.n_routed_experts, g) if g <= e <= PREFILL_EP_LIMIT] or [g]
    return [(ep, r) for ep in eps for r in slot_choices(spec.n_routed_experts, ep)]


def _prefill_rows(base: ServeSpec, rates: KernelRates, layouts: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Each prefill layout that fits (weights and one prompt's KV, as decode is checked) and meets the TTFT
    target, at `base`'s attention tp and MTP, priced at its operating point; most input tokens/s first."""
    rows = []
    for ep, redundant in layouts:
        try:
            s = replace(base, ep=ep, redundant=redundant, prefill_ep=ep, prefill_redundant=redundant)
        except ValueError:  # an expert TP that does not split this layout's experts
            continue
        if max_sequences_per_gpu(s) < 1:
            continue
        try:
            point = prefill_point(s, rates)
        except ValueError:  # the TTFT target is out of reach on this layout
            continue
        per_gpu = point.phase.tokens / point.phase.step_s
        rows.append(
            {
                "prefill_ep": ep,
                "prefill_redundant": redundant,
                "prefill_nodes": ep / base.node.gpus_per_node,
                "prefill_tokens_per_gpu": point.tokens,
                "ttft_s": point.ttft_s,
                "input_tokens_per_s_per_gpu": per_gpu,
                "usd_per_million_input_tokens": base.usd_per_gpu_hour / SECONDS_PER_HOUR / per_gpu * 1e6,
            }
        )
    return sorted(rows, key=lambda r: (-r["input_tokens_per_s_per_gpu"], r["prefill_ep"], r["prefill_redundant"]))


def _decode_row(s: ServeSpec, rates: KernelRates) -> dict[str, Any] | str:
    """The decode layout `s` at its operating point (the numbers `serve` reports), or why it is skipped."""
    capacity = max_sequences_per_gpu(s)
    if capacity < 1:
        return SKIP_FIT
    try:
        point = decode_point(s, rates, capacity)
    except ValueError:  # one sequence per GPU already misses the TPOT target
        return SKIP_TPOT
    d = point.phase
    return _row(s, capacity, point.batch, point.limit, d.tokens / d.step_s, d.step_s / s.tokens_per_step)


def _colocated_row(s: ServeSpec, rates: KernelRates) -> dict[str, Any] | str:
    """The co-located pool `s` (prefill chunks on its decode steps) at its operating point, as `serve
    --colocated` reports it, or why it is skipped; the pool does both phases, so a request costs its output
    tokens' GPU-seconds."""
    capacity = max_sequences_per_gpu(s)
    if capacity < 1:
        return SKIP_FIT
    try:
        batch, limit = colocated_point(s, rates, capacity)
    except OutOfReach as exc:
        return SKIP_TTFT if exc.target == "ttft" else SKIP_TPOT
    n = colocated_numbers(s, rates, batch)
    row = _row(s, capacity, batch, limit, n["output_tokens_per_s_per_gpu"], n["tpot_s"])
    per_gpu = row["output_tokens_per_s_per_gpu"]
    return row | {
        "ttft_s": n["ttft_s"],
        "prefill_chunk_tokens_per_gpu": n["prefill_chunk_tokens_per_gpu"],
        "input_tokens_per_s_per_gpu": n["input_tokens_per_s_per_gpu"],
        "usd_per_request": s.usd_per_gpu_hour / SECONDS_PER_HOUR * (s.output_tokens or 0) / per_gpu,
    }


def _row(s: ServeSpec, capacity: int, batch: float, limit: str, per_gpu: float, tpot: float) -> dict[str, Any]:
    """One candidate's row: its layout, memory, operating point and price."""
    g = s.node.gpus_per_node
    gpus = math.lcm(s.ep, s.tp)  # one decode instance: the EP group, or the TP group when larger
    return {
        "tp": s.tp,
        "ep": s.ep,
        "redundant": s.redundant,
        "mtp": s.mtp_acceptance is not None,
        "mtp_acceptance": s.mtp_acceptance,
        "decode_gpus": gpus,
        "decode_nodes": gpus / g,
        "weights_gb_per_gpu": weight_bytes_per_gpu(s, s.ep, s.redundant) / 1e9,
        "max_concurrent_sequences_per_gpu": capacity,
        "batch_per_gpu": batch,
        "decode_limit": limit,
        "tpot_s": tpot,
        "output_tokens_per_s_per_gpu": per_gpu,
        "output_tokens_per_s_per_node": per_gpu * g,
        "output_tokens_per_s_per_user": 1 / tpot,
        "usd_per_million_output_tokens": s.usd_per_gpu_hour / SECONDS_PER_HOUR / per_gpu * 1e6,
    }


def _with_prefill(s: ServeSpec, row: dict[str, Any], pre: dict[str, Any]) -> dict[str, Any]:
    """`row` with its prefill layout, and with a request mix (`s.output_tokens`) the prefill GPUs it needs per
    decode GPU and the dollars per request (the GPU-seconds of both phases, as `serve` counts them)."""
    out = {**row, **pre}
    if s.output_tokens is not None:
        prefill_gpu_s = prompt_tokens(s) / pre["input_tokens_per_s_per_gpu"]
        decode_gpu_s = s.output_tokens / row["output_tokens_per_s_per_gpu"]
        out["prefill_gpus_per_decode_gpu"] = prefill_gpu_s / decode_gpu_s
        out["usd_per_request"] = s.usd_per_gpu_hour / SECONDS_PER_HOUR * (prefill_gpu_s + decode_gpu_s)
    return out


def pareto_frontier(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows no other beats on both output tokens/s per GPU and per user (equal points once), by tokens/s
    per GPU, most first."""
    order = sorted(rows, key=lambda r: (-r["output_tokens_per_s_per_gpu"], -r["output_tokens_per_s_per_user"]))
    front: list[dict[str, Any]] = []
    for row in order:
        if not front or row["output_tokens_per_s_per_user"] > front[-1]["output_tokens_per_s_per_user"]:
            front.append(row)
    return front


def _is_published(row: dict[str, Any]) -> bool:
    return all(row[k] == PUBLISHED[k] for k in ("tp", "ep", "redundant", "mtp"))


def search(
    model: str = "deepseek-v3",
    gpu: str | None = None,
    node: str | None = None,
    *,
    tpot_ms: float,
    ttft_ms: float | None = None,
    context: int = 4096,
    output_tokens: int | None = None,
    cache_hit: float = 0.0,
    mtp_acceptance: float | None = None,
    profile: KernelRates | str | None = None,
    top: int | None = None,
    mtp_tokens: int = 1,
    overlap: str = "auto",
    expert_imbalance: float = 1.0,
    expert_tp: int = 1,
    offload_weights: bool = False,
    attention_dtype: str = "bf16",
    window_kv: str = "window",
    weight_dtype: str | None = None,
    colocated: bool = False,
    activation_dtype: str | None = None,
    dense_weight_dtype: str | None = None,
    engine: str = "none",
    fp8_recipe: str = "block",
) -> SearchReport:
    """Every deployment of `model` on the node, priced at the SLO, ranked by $ per million output tokens
    (then tokens/s per user, then fewer GPUs); `top` of them kept (None: all), the frontier whole. MTP drafts
    are accepted at `mtp_acceptance` (None: MTP_ACCEPTANCE where the model has an MTP module), `mtp_tokens` per
    step; every candidate runs with the given `overlap` mode, `expert_imbalance`, `expert_tp` (a layout it
    cannot split its experts over is skipped, and says why), `offload_weights`, `attention_dtype`, `window_kv`,
    `weight_dtype` (None: fp8 where the GPU has it), `dense_weight_dtype` (the GEMMs outside the MoE blocks;
    None: the weights'), `activation_dtype` (None: the weights'), `engine` (the kernels it fuses) and
    `fp8_recipe` (the checkpoint's FP8 scaling: which timed kernels its engine's GEMMs are).
    `colocated`: each layout is one pool whose decode steps carry the prompts' chunks (`serve --colocated`; needs
    `output_tokens`), no prefill pool, nothing published to set beside it."""
    start = time.perf_counter()
    base = deployment(
        model,
        gpu,
        node,
        tpot_ms=tpot_ms,
        ttft_ms=ttft_ms,
        context=context,
        output_tokens=output_tokens,
        cache_hit=cache_hit,
        mtp_tokens=mtp_tokens,
        overlap=overlap,
        expert_imbalance=expert_imbalance,
        offload_weights=offload_weights,
        attention_dtype=attention_dtype,
        window_kv=window_kv,
        weight_dtype=weight_dtype,
        colocated=colocated,
        activation_dtype=activation_dtype,
        dense_weight_dtype=dense_weight_dtype,
        engine=engine,
        fp8_recipe=fp8_recipe,
    )
    if mtp_acceptance is not None and not base.model.num_nextn_predict_layers:
        raise ValueError(f"{base.model.name} has no multi-token prediction module; drop --mtp-acceptance")
    rates = rates_for(profile, base.node.gpu)
    acceptance = MTP_ACCEPTANCE if mtp_acceptance is None else mtp_acceptance
    layouts = decode_layouts(base, acceptance)
    pre_layouts = prefill_layouts(base)
    prefills: dict[tuple[int, float | None], list[dict[str, Any]]] = {}
    rows, skipped = [], Counter[str]()
    for layout in layouts:
        try:
            s = replace(base, **layout, expert_tp=expert_tp)
        except ValueError:  # expert TP that does not split this layout's experts over its GPUs
            skipped[SKIP_EXPERT_TP] += 1
            continue
        row = _colocated_row(s, rates) if colocated else _decode_row(s, rates)
        if isinstance(row, str):
            skipped[row] += 1
            continue
        if colocated:
            rows.append(row)
            continue
        key = (s.tp, s.mtp_acceptance)
        if key not in prefills:  # prefill does not depend on the decode pool: price it once per attention layout
            prefills[key] = _prefill_rows(s, rates, pre_layouts)
        if not prefills[key]:
            skipped[SKIP_PREFILL] += 1
            continue
        rows.append(_with_prefill(s, row, prefills[key][0]))
    if not rows:
        raise ValueError(_nothing_met(base, len(layouts), skipped))
    rows.sort(key=lambda r: (r["usd_per_million_output_tokens"], -r["output_tokens_per_s_per_user"], r["decode_gpus"]))
    frontier = pareto_frontier(rows)
    for rank, row in enumerate(rows, 1):
        row |= {"rank": rank, "published": _is_published(row), "frontier": any(row is f for f in frontier)}
    return SearchReport(
        ranked=tuple(rows[:top]),
        frontier=tuple(frontier),
        prefill=() if colocated else tuple(prefills[(rows[0]["tp"], rows[0]["mtp_acceptance"])]),
        eps_tried=tuple(sorted({layout["ep"] for layout in layouts})),
        tried=len(layouts),
        skipped=dict(skipped),
        published=None if colocated else _published(base, rows, prefills.get((PUBLISHED["tp"], acceptance), [])),
        search_s=time.perf_counter() - start,
    )


def _published(base: ServeSpec, rows: list[dict[str, Any]], prefills: list[dict[str, Any]]) -> dict[str, Any] | None:
    """DeepSeek's published deployment as priced here, with its own prefill layout: None where it is not
    among the candidates (another model or node) or does not meet the targets."""
    row = next((r for r in rows if _is_published(r)), None)
    layout = (PUBLISHED["prefill_ep"], PUBLISHED["prefill_redundant"])
    pre = next((p for p in prefills if (p["prefill_ep"], p["prefill_redundant"]) == layout), None)
    if row is None or pre is None:
        return None
    return _with_prefill(base, row, pre)


def _nothing_met(base: ServeSpec, tried: int, skipped: Counter[str]) -> str:
    """The one-line error when no layout is left: how many were skipped for what, and the fix."""
    why = "; ".join(f"{n} {reason}" for reason, n in skipped.most_common())
    ttft = "" if base.ttft_ms is None else f" and TTFT {base.ttft_ms:g} ms"
    return (
        f"no deployment of {base.model.name} on {base.node.name} meets TPOT {base.tpot_ms:g} ms{ttft} at context "
        f"{base.context:,} among {tried} tried ({why}); raise --tpot-ms (or --ttft-ms), or shorten --context"
    )

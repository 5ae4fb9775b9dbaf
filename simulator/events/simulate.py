"""One training step in the event model, next to the analytic estimate of the same run.

The pipeline runs in SimPy (`simulator.events.engine`) on the analytic model's
per-stage times (`training.stage_times`: the same per-op cost functions);
the data-parallel collectives and the optimizer follow the step as in the
analytic model. What the event model sees that the analytic one averages
away: each DualPipe pair's real two stages (not the rank's mean), the order
of every op, the pipeline sends overlapping compute and, with the flow
network (the default), every MoE layer's dispatch and combine drawn from
seeded expert loads and run on the real fabric (`simulator.events.ep_comm`), the
busiest GPU's expert GEMMs, and seeded straggler GPUs.

The simulated pipeline is the first EP group's (or, dense, the first data-
parallel replica's) GPUs of every stage; the other groups load the fabric
alike and run the same draws' statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

import numpy as np
import pandas as pd

from simulator.analytic.profile import KernelRates, rates_for
from simulator.analytic.report import estimate
from simulator.analytic.stagetimes import StageTimes
from simulator.analytic.training import dp_and_optimizer_s, resolved, routed_expert_s, stage_times
from simulator.events.engine import Chunks, Progress, Timeline, simulate_ops
from simulator.events.ep_comm import PHASES, EPTraffic, Routing, ep_traffic, link_kinds
from simulator.events.pipeline_ops import rank_of, schedule_ops
from simulator.names import NETWORKS
from simulator.runspec import RunSpec
from workloads.layout import stage_blocks


@dataclass(frozen=True, slots=True)
class Stragglers:
    """Slow GPUs: each GPU is slow this step with probability `rate`, its compute `slowdown` times longer;
    a stage of the simulated pipeline waits for any slow GPU of its EP group (every MoE layer syncs it)."""

    rate: float = 0.0
    slowdown: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"straggler rate={self.rate} must be in [0, 1]")
        if not 1 <= self.slowdown <= 100:
            raise ValueError(f"straggler slowdown={self.slowdown} must be in [1, 100]")


@dataclass(frozen=True, slots=True)
class Simulation:
    """The event model's step, its parts, and the analytic model's step for the same run."""

    step_time_s: float
    pipeline_s: float  # the simulated pipeline: first op to last
    dp_and_optimizer_s: float
    analytic_step_time_s: float
    idle_s: tuple[float, ...]  # per rank, within the pipeline
    stage_layers: tuple[int, ...]
    timeline: Timeline
    network: str
    routing: Routing
    stragglers: Stragglers
    slow_ranks: tuple[int, ...]  # ranks whose EP group drew a straggler
    links: pd.DataFrame | None  # flow network: per link, the step's EP bytes and utilization

    def link_summary(self) -> dict[str, dict[str, float]]:
        """Mean and busiest utilization of each kind of link by the step's expert-parallel traffic."""
        if self.links is None:
            return {}
        used = self.links[self.links["bytes"] > 0]
        stats = used.groupby("kind")["utilization"].agg(["mean", "max"])
        return {kind: {"mean": float(r["mean"]), "max": float(r["max"])} for kind, r in stats.iterrows()}

    def to_dict(self) -> dict[str, object]:
        utilization = [1 - idle / self.pipeline_s for idle in self.idle_s] if self.pipeline_s else []
        return {
            "step_time_s": self.step_time_s,
            "pipeline_s": self.pipeline_s,
            "dp_and_optimizer_s": self.dp_and_optimizer_s,
            "analytic_step_time_s": self.analytic_step_time_s,
            "difference": self.step_time_s / self.analytic_step_time_s - 1,
            "idle_s": list(self.idle_s),
            "rank_utilization": utilization,
            "rank_comm_s": list(self.timeline.comm_s),
            "stage_layers": list(self.stage_layers),
            "ops": int((self.timeline.events["stream"] == "compute").sum()),
            "events": len(self.timeline.events),
            "network": self.network,
            "seed": self.routing.seed,
            "expert_cv": self.routing.expert_cv,
            "samples": self.routing.samples,
            "ecmp": self.routing.ecmp,
            "straggler_rate": self.stragglers.rate,
            "straggler_slowdown": self.stragglers.slowdown,
            "slow_ranks": list(self.slow_ranks),
            "link_utilization": self.link_summary(),
        }


def chunk_times(run: RunSpec, rates: KernelRates) -> list[StageTimes]:
    """One StageTimes per model chunk: per stage, or each stage cut in v equal chunks (interleaved)."""
    stages = [stage_times(run, rates, s) for s in range(run.pp)]
    if run.schedule != "interleaved":
        return stages
    v = run.virtual_stages  # chunk c of rank r is model chunk c * pp + r
    return [stages[r].scaled(1 / v) for _ in range(v) for r in range(run.pp)]


def _group_gpus(run: RunSpec, rank: int) -> np.ndarray:
    """The GPUs of `rank`'s stage that the simulated pipeline waits on: its first EP group (dense: replica)."""
    first = rank * (run.gpus // run.pp)
    return first + np.arange(run.ep if run.model.is_moe and run.ep > 1 else run.tp)


def _slow_ranks(run: RunSpec, stragglers: Stragglers, seed: int) -> tuple[int, ...]:
    if stragglers.rate == 0 or stragglers.slowdown == 1:
        return ()
    slow = np.random.default_rng([seed, 2]).random(run.gpus) < stragglers.rate
    return tuple(r for r in range(run.pp) if slow[_group_gpus(run, r)].any())


def _stage_layers_moe(run: RunSpec, chunk: int) -> int:
    """MoE layers of a model chunk (interleaved: of its rank's stage; the chunk takes 1/v of their time)."""
    stage = chunk % run.pp if run.schedule == "interleaved" else chunk
    return sum(stage_blocks(run.model, run.layout, stage, include_mtp=True))


def _drawn_chunks(
    run: RunSpec, rates: KernelRates, base: list[StageTimes], keys: list[tuple[int, int, int]], traffic: EPTraffic, rng
) -> tuple[Chunks, np.ndarray]:
    """Each chunk's times with its layers' drawn all-to-alls and busiest-GPU expert GEMMs; and how often each
    (sample, rank) was drawn (for the link loads)."""
    rf, rd, rw = routed_expert_s(run, rates)
    share = 1 / run.virtual_stages if run.schedule == "interleaved" else 1.0
    used = np.zeros(traffic.max_load.shape)
    chunks: Chunks = {}
    for m, stage, d in keys:
        rank = rank_of(run.schedule, run.pp, stage, d)
        layers = _stage_layers_moe(run, stage)
        t = base[stage]
        if layers == 0:
            chunks[(m, stage, d)] = t
            continue
        j = rng.integers(len(traffic.max_load), size=layers)
        np.add.at(used[:, rank], j, share)
        extra = share * float((traffic.max_load[j, rank] - 1).sum())
        comm = {p: share * float(traffic.phase_s[p][j, rank].sum()) for p in PHASES}
        chunks[(m, stage, d)] = replace(
            t, f_mlp=t.f_mlp + extra * rf, b_mlp=t.b_mlp + extra * (rd + rw), w=t.w + extra * rw, **comm
        )
    return chunks, used


def _slowed(t: StageTimes, k: float) -> StageTimes:
    return replace(t, f_attn=k * t.f_attn, f_mlp=k * t.f_mlp, b_attn=k * t.b_attn, b_mlp=k * t.b_mlp, w=k * t.w)


def _links(traffic: EPTraffic, used: np.ndarray, step_s: float) -> pd.DataFrame:
    """Per link: the EP bytes of one step (every stage's groups) and its utilization over the step."""
    total = np.zeros(len(traffic.fabric.capacity_bytes_per_s))
    for pattern in ("dispatch", "combine"):
        per_use = traffic.link_bytes[pattern] * (1 + traffic.backward_scale[pattern])  # forward + backward
        total += np.einsum("sr,srl->l", used, per_use)
    cap = traffic.fabric.capacity_bytes_per_s
    kinds = link_kinds(traffic.fabric)
    return pd.DataFrame(
        {"link": np.arange(len(total)), "kind": kinds, "bytes": total, "utilization": total / (cap * step_s)}
    )


def simulate(
    run: RunSpec,
    profile: KernelRates | str | None = None,
    network: str = "flow",
    routing: Routing | None = None,
    stragglers: Stragglers | None = None,
    progress: Progress | None = None,
) -> Simulation:
    """Simulate one step of `run`; the same `routing.seed` gives the same step. `progress(done, total, what)`
    hears of the work as it finishes: "all-to-alls" (each sample's dispatch and combine solved on the flow
    network, when it runs), then "ops" (the pipeline's ops, in about 100 calls)."""
    if run.schedule == "dualpipev":
        raise ValueError("the event model does not run dualpipev yet; use --schedule dualpipe")
    if network not in NETWORKS:
        raise ValueError(f"network={network!r}; use one of {', '.join(NETWORKS)}")
    routing = Routing() if routing is None else routing
    if routing.ecmp is None:
        routing = replace(routing, ecmp=run.ecmp)
    stragglers = Stragglers() if stragglers is None else stragglers
    rates = rates_for(profile, run.node.gpu)
    run = resolved(run, rates)
    if run.schedule == "dualpipe" and (run.microbatches % 2 or run.microbatches < 2 * run.pp):
        raise ValueError(f"dualpipe needs an even number of micro-batches >= 2 x pp; got {run.microbatches}")
    ep_drawn = network == "flow" and run.model.is_moe and run.ep > 1
    base_run = run.with_(expert_imbalance=1.0) if ep_drawn else run  # the draws set each layer's imbalance
    base = chunk_times(base_run, rates)
    ranks = schedule_ops(run.schedule, run.pp, run.microbatches, run.virtual_stages, run.ep_merged)
    keys = sorted({(u.microbatch, u.stage, u.direction) for ops in ranks for op in ops for u in op.parts()})
    chunks: Chunks | None = None
    traffic = used = None
    if ep_drawn:
        if progress is not None:
            progress(0, 2 * routing.samples, "all-to-alls")
        traffic = ep_traffic(run, routing, _ranks_with_moe(run), progress=progress)
        chunks, used = _drawn_chunks(run, rates, base, keys, traffic, np.random.default_rng([routing.seed, 1]))
    slow = _slow_ranks(run, stragglers, routing.seed)
    if slow:
        chunks = {key: chunks[key] if chunks else base[key[1]] for key in keys}
        for key in keys:
            if rank_of(run.schedule, run.pp, key[1], key[2]) in slow:
                chunks[key] = _slowed(chunks[key], stragglers.slowdown)
    timeline = simulate_ops(run.schedule, run.pp, ranks, base, chunks, progress)
    dp_s, opt_s = dp_and_optimizer_s(run, rates)
    analytic = estimate(run, rates, check_memory=False).step_time_s
    step_s = timeline.step_time_s + dp_s + opt_s
    return Simulation(
        step_time_s=step_s,
        pipeline_s=timeline.step_time_s,
        dp_and_optimizer_s=dp_s + opt_s,
        analytic_step_time_s=analytic,
        idle_s=timeline.idle_s,
        stage_layers=tuple(run.stage_layers or ()),
        timeline=timeline,
        network=network,
        routing=routing,
        stragglers=stragglers,
        slow_ranks=slow,
        links=None if traffic is None else _links(traffic, cast(np.ndarray, used), step_s),  # set with traffic
    )


def _ranks_with_moe(run: RunSpec) -> np.ndarray:
    """Whether each rank's GPUs run any MoE layer (DualPipe: of either of its two stages)."""
    out = np.zeros(run.pp, bool)
    for stage in range(run.pp):
        for d in (0, 1) if run.schedule == "dualpipe" else (0,):
            out[rank_of(run.schedule, run.pp, stage, d)] |= any(stage_blocks(run.model, run.layout, stage, True))
    return out

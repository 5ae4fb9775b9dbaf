"""Expert-parallel all-to-alls for the event model: drawn expert loads, run on the real fabric.

A sample is one seeded draw of every EP group's routed tokens per GPU for one
MoE layer: expert popularity from a log-normal of the given coefficient of
variation (0: a perfectly balanced router, leaving the multinomial noise of
routing a finite batch; None: exactly uniform, no draw), tokens per expert
multinomial. For each sample two flow-level runs (`simulator.network.collectives`) put
the dispatch, then the combine, of every EP group of every stage with MoE
layers on the fabric at once, as the stages of a pipeline in its steady
state run the same phase side by side (an assumption: it is the most the
fabric is asked to carry). ECMP collisions, tapered uplinks and the load of
the busiest receiver all show in each group's finish time.

Max-min fair rates do not depend on flow sizes, so a phase with k times the
bytes of the same pattern takes exactly k times its transfer time: the
forward run's flows give the backward's (bf16 gradients) too. Per sample and
stage this module keeps the first EP group's four phase times and its
busiest GPU's load (the routed-expert GEMM straggler: every GPU waits for it
at the combine), and the bytes every link carried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from hwmodels.routing import Fabric
from hwmodels.traffic import moe_transfers
from simulator.analytic.epcomm import ep_kernel_floor_s, ep_setup_s
from simulator.analytic.fabric import run_fabric
from simulator.analytic.training import tokens_per_gpu as micro_batch_tokens
from simulator.network.collectives import check_moe_transfers, route_transfers
from simulator.network.flows import simulate_flows
from simulator.runspec import RunSpec
from workloads.comm import dispatch_form, ep_bytes_per_token_per_layer
from workloads.layout import stage_blocks
from workloads.ops import TRAINING_PHASES, ep_ops

PHASES = ("dispatch_f", "combine_f", "dispatch_b", "combine_b")


@dataclass(frozen=True, slots=True)
class Routing:
    """How routed tokens are drawn and routed: the seeded inputs of the event model's all-to-alls."""

    expert_cv: float | None = 0.0  # expert popularity's coefficient of variation; None: exactly uniform
    samples: int = 8  # drawn routing patterns, chosen per layer and micro-batch
    seed: int = 0
    ecmp: str | None = None  # None: the run's (RunSpec.ecmp)

    def __post_init__(self) -> None:
        if self.expert_cv is not None and not 0 <= self.expert_cv < 10:
            raise ValueError(f"expert_cv={self.expert_cv} must be in [0, 10) (0: balanced router)")
        if not isinstance(self.samples, int) or not 1 <= self.samples <= 64:
            raise ValueError(f"samples={self.samples} must be an integer from 1 to 64")


@dataclass(frozen=True, eq=False)
class EPTraffic:
    """Per sample and stage: the first EP group's seconds per MoE layer of each phase, its busiest GPU's load,
    and the bytes per link of the stage's all-to-alls (forward dispatch and forward combine patterns)."""

    phase_s: dict[str, np.ndarray]  # PHASES -> (samples, stages)
    max_load: np.ndarray  # (samples, stages) busiest GPU's routed tokens / the group's mean
    link_bytes: dict[str, np.ndarray]  # "dispatch" / "combine" -> (samples, stages, links), forward bytes
    backward_scale: dict[str, float]  # "dispatch" / "combine": backward bytes / forward bytes of the pattern
    fabric: Fabric


def draw_gpu_loads(
    rng: np.random.Generator, groups: int, ep: int, experts: int, routed_per_group: int, cv: float | None
) -> np.ndarray:
    """(groups, ep) routed tokens of each GPU over its group's mean: experts placed evenly in index order."""
    if cv is None:
        return np.ones((groups, ep))
    if cv == 0:
        popularity = np.full((groups, experts), 1.0 / experts)
    else:
        sigma = np.sqrt(np.log1p(cv**2))
        popularity = rng.lognormal(-(sigma**2) / 2, sigma, size=(groups, experts))
        popularity /= popularity.sum(axis=1, keepdims=True)
    counts = rng.multinomial(routed_per_group, popularity)
    per_gpu = counts.reshape(groups, ep, experts // ep).sum(axis=2).astype(float)
    return per_gpu / per_gpu.mean(axis=1, keepdims=True)


def ep_traffic(
    run: RunSpec,
    routing: Routing,
    has_moe: np.ndarray | None = None,
    fabric: Fabric | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> EPTraffic:
    """Draw `routing.samples` patterns and run each one's dispatch and combine on the run's fabric. Stage s
    (rank s) holds GPUs [s * gpus / pp, (s + 1) * gpus / pp); `has_moe` says which send (default: the stages
    whose layers include a MoE layer). `progress(done, total, "all-to-alls")` hears of each solved pattern."""
    spec, layout = run.model, run.layout
    if not (spec.is_moe and layout.ep > 1):
        raise ValueError("the run has no expert-parallel all-to-all (dense model or ep=1)")
    fabric = run_fabric(run) if fabric is None else fabric
    for phase in ("dispatch", "combine"):
        check_moe_transfers(fabric.gpus, layout.ep, run.node.gpus_per_node, phase)
    ecmp = run.ecmp if routing.ecmp is None else routing.ecmp
    dispatch_dtype, direct = dispatch_form(run.ep_dispatcher, run.precision)
    fwd = ep_bytes_per_token_per_layer(spec, layout, run.node_limit, dispatch_dtype, "bf16", direct)
    bwd = ep_bytes_per_token_per_layer(spec, layout, run.node_limit, "bf16", "bf16", direct)
    tokens = micro_batch_tokens(run)  # a GPU's share of the micro-batch (TP's sequence split, CP's)
    per_stage = run.gpus // run.pp  # stage s holds GPUs [s * per_stage, (s + 1) * per_stage)
    if has_moe is None:
        has_moe = np.array([any(stage_blocks(spec, layout, s, include_mtp=True)) for s in range(run.pp)])
    tokens_per_gpu = np.repeat(np.where(has_moe, tokens, 0.0), per_stage)
    groups = run.gpus // layout.ep
    routed = round(tokens * layout.ep * spec.num_experts_per_tok)
    rng = np.random.default_rng(routing.seed)
    stage = np.arange(run.pp) * per_stage // layout.ep  # first EP group of each stage
    out = {p: np.zeros((routing.samples, run.pp)) for p in PHASES}
    max_load = np.ones((routing.samples, run.pp))
    links = {p: np.zeros((routing.samples, run.pp, len(fabric.capacity_bytes_per_s))) for p in ("dispatch", "combine")}
    scale = {p: bwd[p] / fwd[p] for p in ("dispatch", "combine")}
    backward_phase = {"dispatch": "combine_b", "combine": "dispatch_b"}  # gradients retrace the forward's flows
    floor, call = kernel_floor(run, tokens)
    for j in range(routing.samples):
        load = draw_gpu_loads(rng, groups, layout.ep, spec.n_routed_experts, routed, routing.expert_cv)
        max_load[j] = np.where(has_moe, load[stage].max(axis=1), 1.0)
        for pattern in ("dispatch", "combine"):
            src, dst, size = moe_transfers(fabric, layout.ep, tokens_per_gpu, fwd, pattern, load.ravel())
            flows = route_transfers(fabric, src, dst, size, ecmp, routing.seed + j)
            result = simulate_flows(flows)
            transfer_s = result.finish_s - flows.latency_s
            owner = np.minimum(src, dst) // per_stage  # both ends are in one stage's group
            first = (np.minimum(src, dst) // layout.ep) == stage[owner]
            for k, name in ((1.0, f"{pattern}_f"), (scale[pattern], backward_phase[pattern])):
                finish = k * transfer_s + flows.latency_s
                per = np.zeros(run.pp)
                np.maximum.at(per, owner[first], finish[first])
                out[name][j] = np.where(has_moe, np.maximum(per, floor[name]) + call[name], per)
            by_stage = csr_matrix((size, (np.arange(len(size)), owner)), shape=(len(size), run.pp))
            links[pattern][j] = (flows.incidence @ by_stage).toarray().T
            if progress is not None:
                progress(2 * j + (pattern == "combine") + 1, 2 * routing.samples, "all-to-alls")
    return EPTraffic(out, max_load, links, scale, fabric)


def kernel_floor(run: RunSpec, tokens: float) -> tuple[dict[str, float], dict[str, float]]:
    """Per phase: the seconds DeepEP's or HybridEP's kernels take on their SMs at the mean load (no flow finishes
    sooner; zero where no table covers the dispatcher on the GPU: `simulator.analytic.epcomm.ep_kernel_floor_s`)
    and what each call runs before its transfer (`simulator.analytic.epcomm.ep_setup_s`), as the analytic model
    prices them."""
    floor, call = dict.fromkeys(PHASES, 0.0), dict.fromkeys(PHASES, 0.0)
    phases = TRAINING_PHASES[:2]
    for op in ep_ops(run.model, run.layout, tokens, phases, run.node_limit, run.precision, run.ep_dispatcher):
        name = f"{op.kind}_{'f' if op.phase == phases[0] else 'b'}"
        floor[name], call[name] = ep_kernel_floor_s(run, op), ep_setup_s(run, op)
    return floor, call


def link_kinds(fabric: Fabric) -> np.ndarray:
    """The kind of every link of the fabric, in link index order."""
    switch_links, g = len(fabric.switch_link_key), fabric.gpus
    kinds = ["switch"] * switch_links + ["nic-up"] * g + ["nic-down"] * g + ["nvlink-up"] * g + ["nvlink-down"] * g
    return np.array(kinds)

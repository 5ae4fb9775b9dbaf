"""Data-parallel collectives and the optimizer step: gradient reduction and weight gathers where their ranks sit
(Megatron's rank order), what of them outlasts the compute they overlap, and the optimizer's pass over its shard."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hwmodels import collectives as ab
from simulator.analytic.fabric import fabric_factors
from simulator.analytic.memory import precision_preset
from simulator.analytic.profile import KernelRates
from simulator.analytic.stagetimes import StageTimes
from simulator.runspec import RunSpec
from simulator.schedules import BIDIRECTIONAL
from workloads.memory import stage_params
from workloads.precision import training_precision


def dp_and_optimizer_by_batch(
    run: RunSpec, profile: KernelRates, microbatches: np.ndarray, stages: Sequence[StageTimes]
) -> tuple[np.ndarray, float]:
    """Exposed seconds per step of the data-parallel collectives at each micro-batch count, busiest rank, and
    of the optimizer.

    They run as Megatron's overlap_grad_reduce / overlap_param_gather and FSDP's prefetch run them: gradients
    are reduced bucket by bucket under the last micro-batch's backward, weights gathered under the first
    micro-batch's forward, and ZeRO-3's per-micro-batch gathers under each micro-batch's own forward and
    backward. What shows is what outlasts its window, and at least the last layer's bucket. `stages`: each
    stage's times per micro-batch (`simulator.analytic.training.all_stage_times`), the windows."""
    node, layout = run.node, run.layout
    prec = training_precision(precision_preset(run))
    pair = (lambda r: (r, run.pp - 1 - r)) if run.schedule in BIDIRECTIONAL else (lambda r: (r,))
    ranks = range(run.pp // 2) if run.schedule in BIDIRECTIONAL else range(run.pp)
    net = ab.TwoLevelNet.of_node(node, max(1.0, fabric_factors(run).dp))  # the rings' taper on this topology
    grad_b, weight_b = prec.grad_bytes, prec.weight_bytes
    per_param = 2 * prec.master_bytes + grad_b + 2 * prec.optimizer_bytes + weight_b  # Adam: read/write states
    copies = 0.5 if run.schedule == "dualpipev" else 1.0
    worst_dp, worst_opt = np.zeros(len(microbatches)), 0.0
    for r in ranks:
        dense = expert = 0.0
        for s in pair(r):
            p = stage_params(run.model, layout, s, include_mtp=True)
            dense += copies * (p["linear"] + p["other"]) / run.tp
            expert += copies * p["expert"] / run.ep
        own = [stages[s] for s in pair(r)]
        fwd, bwd = sum(t.f for t in own), sum(t.b for t in own)
        layers = sum(_stage_layer_count(run, s) for s in pair(r))
        grads = gathers = per_mb = 0.0  # collective seconds: gradient reduction, weight gathers, per micro-batch
        groups = ((dense, layout.replicas, layout.dp_per_node), (expert, layout.expert_dp, layout.expert_dp_per_node))
        for params, n, per_node in groups:
            if n == 1 or not params:
                continue
            ring = _ring_s(run, n, per_node, net)
            if run.zero_stage == 0:
                grads += ring("all_reduce", grad_b * params)
            else:
                grads += ring("reduce_scatter", grad_b * params)
                gathers += ring("all_gather", weight_b * params)
            if run.zero_stage == 3:  # weights gathered again for every micro-batch's forward and backward
                per_mb += ring("all_gather", weight_b * params)
        v = run.virtual_stages if run.schedule == "interleaved" else 1
        once = exposed_s(grads, bwd, layers, v, run.pp) + exposed_s(gathers, fwd, layers, v, run.pp)
        dp_s = once + microbatches * (exposed_s(per_mb, fwd, layers) + exposed_s(per_mb, bwd, layers))
        shard = dense / layout.replicas + expert / layout.expert_dp if run.zero_stage >= 1 else dense + expert
        opt_s = profile.time_s("memory", 0.0, shard * per_param)
        worst_dp, worst_opt = np.maximum(worst_dp, dp_s), max(worst_opt, opt_s)
    return worst_dp, worst_opt


def _ring_s(run: RunSpec, n: int, per_node: int, net: ab.TwoLevelNet) -> Callable[[str, float], float]:
    """Seconds of one of a data-parallel group's NCCL collectives (`kind`, buffer bytes): as timed in a node
    (`hwmodels.collectives.in_node_s`) where the n ranks share one, else the ring's alpha-beta form on `net`."""
    forms = {"all_reduce": ab.ring_all_reduce, "reduce_scatter": ab.reduce_scatter, "all_gather": ab.all_gather}
    if per_node == n:
        return lambda kind, nbytes: ab.in_node_s(kind, n, nbytes, run.node)
    return lambda kind, nbytes: forms[kind](n, nbytes, net, per_node).time_s


def exposed_s(comm_s: float, window_s: float, layers: int, chunks: int = 1, pp: int = 1) -> float:
    """A bucketed collective's seconds beyond the compute it overlaps; the last layer's bucket always shows.
    Interleaved (`chunks` model chunks a rank): Megatron reduces a chunk's gradients once its last micro-batch's
    backward is done, and chunk c's comes pp chunk-backwards before chunk c - 1's (micro-batches run in groups
    of pp a chunk), so chunk k from the end has k pp + 1 chunk windows to hide in; the weights' gathers mirror
    it in the warm-up's forwards."""
    if comm_s <= 0:
        return 0.0
    per_chunk_s, chunk_window_s = comm_s / chunks, window_s / chunks
    late = max((k + 1) * per_chunk_s - (k * pp + 1) * chunk_window_s for k in range(chunks))
    return max(comm_s / max(1, layers), late)


def _stage_layer_count(run: RunSpec, stage: int) -> int:
    if run.stage_layers is not None:
        return run.stage_layers[stage]
    return max(1, run.model.num_hidden_layers // run.pp)

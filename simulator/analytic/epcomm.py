"""Pricing the expert all-to-all of a training step: the SMs it keeps from compute, the rate its links reach, and
DeepEP's and HybridEP's kernels where they were timed on the GPU (hwmodels/data/kernels/deepep.toml,
hybridep.toml); Megatron's NCCL all-to-all inside one node as NCCL was timed there
(hwmodels/data/kernels/collectives.toml)."""

from __future__ import annotations

from hwmodels.collectives import TwoLevelNet, all_gather, in_node_s
from hwmodels.kernels import DeepEPKernel, HybridEPKernel, deepep_kernels, hybridep_kernels
from simulator.analytic.fabric import fabric_factors
from simulator.runspec import RunSpec
from workloads.ops import TRAINING_PHASES, Op


def compute_sm_share(run: RunSpec) -> float:
    """Share of the SMs left to compute: a run that overlaps the all-to-all (DualPipe, or 1F1B with ep_comm
    overlapped) keeps `comm_sms` for it."""
    gpu = run.node.gpu
    return (gpu.sm_count - run.comm_sms) / gpu.sm_count if run.ep_overlapped else 1.0


# DeepEP's normal kernels reach their published bandwidth (43-58 GB/s RDMA, 153 GB/s NVLink on H800, what the
# nodes' achieved rates carry) on 20 SMs (figures.toml, calibration_sources.deepep_h800_normal). ASSUMED: each
# SM drives a fixed share of the channels, so fewer SMs give proportionally less, more give no more (the NIC
# and NVLink are then the limit).
EP_SATURATION_SMS = 20


def ep_rate_share(run: RunSpec) -> float:
    """Share of the links' achieved rate the all-to-all gets: overlapped (DualPipe, ep_comm overlapped) it runs on
    `comm_sms` SMs beside compute (V3: 20); in turn with compute, on every SM."""
    if not run.ep_overlapped:
        return 1.0
    return min(1.0, run.comm_sms / EP_SATURATION_SMS)


def ep_link_s(run: RunSpec, op: Op) -> float:
    """Seconds of one dispatch or combine op on its links: the InfiniBand and NVLink shares move at once
    (forwarding pipelines the two), each at the achieved rate the all-to-all's SMs reach; InfiniBand no faster
    than the busiest switch link of every EP group's all-to-all on the run's topology allows
    (`simulator.analytic.fabric`: taper, planes, rails and ECMP collisions). DeepEP's kernels, where measured on
    the GPU, move the NVLink share no faster than their SMs do, HybridEP's the share of its table's links no
    faster than its torch API was timed at (`ep_kernel_floor_s`); Megatron's NCCL all-to-all inside one node
    takes the time NCCL's was timed at there (`hwmodels.collectives.in_node_s`)."""
    node, share = run.node, ep_rate_share(run)
    factors = fabric_factors(run)
    fabric = factors.dispatch if op.kind == "dispatch" else factors.combine
    ib_s = op.ib_bytes / node.scaleout_achieved_bw_bytes_per_s_per_gpu * max(1 / share, fabric)
    if run.ep_dispatcher == "alltoall" and run.layout.ep_nodes == 1:  # NCCL's all-to-all as timed in a node
        ep = run.layout.ep
        return in_node_s("all_to_all", ep, op.nvlink_bytes * ep / (ep - 1), node) / share
    if ep_kernel(run, op.kind) is None and hybridep_kernel(run, op.kind) is None:
        return max(ib_s, op.nvlink_bytes / (share * node.scaleup_achieved_bw_bytes_per_s))
    return max(ib_s, op.nvlink_bytes / node.scaleup_achieved_bw_bytes_per_s, ep_kernel_floor_s(run, op))


DEEPEP_DISPATCHERS = ("deepep-fp8", "deepep")  # the dispatchers that run DeepEP's kernels (hwmodels/data/kernels)


def ep_kernel(run: RunSpec, kind: str) -> DeepEPKernel | None:
    """DeepEP's `kind` (dispatch or combine) kernel as the run's GPU runs it, None where the run's dispatcher is
    not DeepEP or no table covers the GPU (then the links alone price the all-to-all)."""
    if run.ep_dispatcher not in DEEPEP_DISPATCHERS:
        return None
    kernels = deepep_kernels(run.node.gpu)
    return kernels[kind] if kernels else None


# DeepEP's own default SM count for its kernels (deep_ep.Buffer.num_sms; Megatron's moe_deepep_num_sms)
DEEPEP_DEFAULT_SMS = 20


def ep_kernel_sms(run: RunSpec) -> int:
    """SMs DeepEP's kernels run on: `comm_sms`, overlapped or in turn with compute; a run in turn that keeps none
    (comm_sms 0) runs them on DeepEP's default 20, so 0 is never faster than 20."""
    return run.comm_sms or DEEPEP_DEFAULT_SMS


# HybridEP's own default SM count for dispatch and combine (deep_ep/hybrid_ep_buffer.py num_sms_dispatch_api and
# num_sms_combine_api, DeepEP commit 017a5202; Megatron's moe_flex_dispatcher_num_sms None leaves it)
HYBRIDEP_DEFAULT_SMS = 32


def hybridep_kernel(run: RunSpec, kind: str) -> HybridEPKernel | None:
    """HybridEP's `kind` (dispatch or combine) as the run's GPU runs it, None where the run's dispatcher is not
    HybridEP, no table covers the GPU, or the run's EP group lies outside the table's domain (an ib table prices
    a group spanning nodes, an nvlink table one inside a node)."""
    kernels = hybridep_kernels(run.node.gpu) if run.ep_dispatcher == "hybridep" else None
    if kernels is None:
        return None
    kernel = kernels[kind]
    return kernel if (kernel.domain == "ib") == (run.layout.ep_nodes > 1) else None


def ep_kernel_floor_s(run: RunSpec, op: Op) -> float:
    """Seconds the all-to-all's kernel takes over one dispatch or combine op on its SMs (no transfer finishes
    sooner; a call's fixed cost apart): DeepEP's over the NVLink copies and tokens, HybridEP's over the bytes of
    its table's links at its EP ranks; 0 where neither has a table."""
    kernel = ep_kernel(run, op.kind)
    if kernel is not None:
        return kernel.time_s(op.nvlink_bytes, op.items, ep_kernel_sms(run))
    hybrid = hybridep_kernel(run, op.kind)
    if hybrid is None:
        return 0.0
    nbytes = op.ib_bytes if hybrid.domain == "ib" else op.nvlink_bytes
    return nbytes / hybrid.rate(run.layout.ep, run.comm_sms or HYBRIDEP_DEFAULT_SMS)


def ep_call_s(run: RunSpec, op: Op) -> float:
    """Seconds of one dispatch or combine call beside its transfer: the link's latency (InfiniBand's when the EP
    group spans nodes) and what the call runs first (`ep_setup_s`)."""
    node = run.node
    latency = node.nic.latency_s if run.layout.ep_nodes > 1 else node.scaleup_latency_s
    return latency + ep_setup_s(run, op)


def ep_setup_s(run: RunSpec, op: Op) -> float:
    """Seconds a dispatch or combine call spends before it moves tokens: DeepEP's measured per-call cost (its
    notify, launch and barrier: `DeepEPKernel.call_s`), and HybridEP's metadata preprocessing before each forward
    dispatch, an all-gather of every EP rank's routing map (one byte per token and expert; NCCL's across nodes:
    deep_ep hybrid_ep metadata preprocessing, DeepEP commit 017a5202) priced as a ring all-gather on the run's
    links (its scan kernel apart)."""
    kernel = ep_kernel(run, op.kind)
    if kernel is not None:
        return kernel.call_s
    if run.ep_dispatcher != "hybridep" or op.kind != "dispatch" or op.phase != TRAINING_PHASES[0]:
        return 0.0
    ep = run.layout.ep
    routing_map_bytes = op.items * run.model.n_routed_experts * ep  # the gathered map, every rank's
    return all_gather(ep, routing_map_bytes, TwoLevelNet.of_node(run.node)).time_s

"""The network sub-commands' answers: topology metrics and collective times, as plain dicts."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwmodels import collectives as ab
from hwmodels.cost import topology_metrics
from hwmodels.kernels import collectives
from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import design_topology
from hwmodels.traffic import ring_transfers
from simulator.network import collectives as network


def topology_summary(
    kind: str,
    radix: int = 64,
    endpoints: int | None = None,
    planes: int | None = None,
    oversubscription: float = 1.0,
    switch: str = "ib-ndr-64",
) -> dict[str, Any]:
    """`topology_metrics` of the designed topology (closed form: milliseconds at any size)."""
    return topology_metrics(design_topology(kind, radix, endpoints, planes, oversubscription), load_switch(switch))


def _two_level(node_name: str, oversubscription: float) -> ab.TwoLevelNet:
    return ab.TwoLevelNet.of_node(load_node(node_name), oversubscription)


TIMED_KINDS = {"all-gather": "all_gather", "reduce-scatter": "reduce_scatter", "all-to-all": "all_to_all",
               "all-reduce": "all_reduce"}  # fmt: skip


def collective_summary(
    collective: str,
    topology: str,
    gpus: int,
    bytes_per_gpu: float,
    radix: int = 64,
    planes: int | None = None,
    oversubscription: float = 1.0,
    node: str = "h800-ib",
    switch: str = "ib-ndr-64",
    ecmp: str = "hash",
    seed: int = 0,
    forwarding: bool = True,
) -> dict[str, Any]:
    """A collective on `gpus` GPUs of a topology sized to them: the flow-level result, the alpha-beta one and,
    inside one node whose GPU has a table, NCCL's as timed there (`hwmodels.kernels.collectives`)."""
    if bytes_per_gpu <= 0:
        raise ValueError(f"--bytes-per-gpu={bytes_per_gpu:g} must be positive")
    if gpus < 2:
        raise ValueError("a collective needs at least 2 GPUs")
    node_spec = load_node(node)
    if gpus % node_spec.gpus_per_node:
        raise ValueError(f"gpus={gpus} must be a multiple of {node_spec.gpus_per_node} GPUs per {node_spec.name} node")
    spec = design_topology(topology, radix, gpus, planes, oversubscription)
    fabric = build_fabric(spec, node_spec, load_switch(switch), gpus)
    fast = None  # the fast model's time (busiest link), where the collective is one round of transfers
    if collective == "all-to-all":
        flow = network.all_to_all(fabric, gpus, bytes_per_gpu, forwarding, ecmp, seed)
        fast = network.fast_all_to_all_s(fabric, gpus, bytes_per_gpu, forwarding, ecmp, seed)
    elif collective == "send-recv":  # every GPU to its peer in the next node, as pipeline stages do
        g = fabric.node.gpus_per_node
        src = np.arange(gpus)
        flow = network.send_recv(fabric, src, (src + g) % gpus, bytes_per_gpu, ecmp, seed)
        fast = network.fast_s(fabric, src, (src + g) % gpus, np.full(gpus, bytes_per_gpu), ecmp, seed)
    elif collective == "all-reduce-tree":
        flow = network.tree_all_reduce(fabric, gpus, bytes_per_gpu, ecmp, seed)
    else:
        flow = network.ring_collective(fabric, collective, gpus, bytes_per_gpu, ecmp, seed)
        transfers = ring_transfers(fabric, gpus, bytes_per_gpu / gpus)
        fast = network.RING_STEPS[collective](gpus) * network.fast_s(fabric, *transfers, ecmp, seed)
    net = _two_level(node, oversubscription)
    if collective == "send-recv":
        t = ab.send_recv(bytes_per_gpu, net, same_node=gpus <= net.gpus_per_node)
        closed = {"time_s": t, "algo_bytes_per_s": bytes_per_gpu / t, "bus_bytes_per_s": bytes_per_gpu / t}
    else:
        res = ab.COLLECTIVES[collective](gpus, bytes_per_gpu, net)
        closed = {
            "time_s": res.time_s,
            "algo_bytes_per_s": res.algo_bytes_per_s,
            "bus_bytes_per_s": res.bus_bytes_per_s,
        }
    timed = None  # as nccl-tests timed it on the node's GPUs, where the group fits one node that has a table
    kind, tables = TIMED_KINDS.get(collective), collectives(node_spec.gpu)
    if kind and tables and gpus <= node_spec.gpus_per_node:
        timed = tables[kind].time_s(gpus, bytes_per_gpu)
    return {
        "collective": collective,
        "topology": topology,
        "gpus": gpus,
        "bytes_per_gpu": bytes_per_gpu,
        "time_s": flow.time_s,
        "algo_bytes_per_s": flow.algo_bytes_per_s,
        "bus_bytes_per_s": flow.bus_bytes_per_s,
        "flows": flow.flows,
        "max_link_utilization": flow.max_link_utilization,
        "ecmp": ecmp,
        "forwarding": forwarding,
        "fast_time_s": fast,
        "alpha_beta": closed,
        "timed_s": timed,
    }

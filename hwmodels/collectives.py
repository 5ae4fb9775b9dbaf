"""Alpha-beta closed forms of collectives on a two-level cluster (the analytic model's costs).

GPUs sit g to a node on a scale-up fabric (NVLink); nodes meet on a scale-out network with one NIC per GPU.
A collective's time is latency (alpha, per message or step) plus bytes over the bandwidth of the busiest link
it loads (beta): the classic latency-bandwidth model (Hockney 1994; Thakur, Rabenseifner & Gropp 2005).
Bus bandwidth follows nccl-tests (doc/PERFORMANCE.md): busbw = algbw x 2(n-1)/n for all-reduce and
x (n-1)/n for reduce-scatter, all-gather and all-to-all, so that busbw is comparable to link speed whatever n.

Conventions shared by every function:

* `bytes_per_gpu` (B) is the per-GPU buffer as nccl-tests counts it: the vector of an all-reduce, the full
  (gathered) buffer of reduce-scatter / all-gather, all a GPU sends in an all-to-all (its 1/n to itself included).
* Ranks are placed node by node: n GPUs fill ceil(n/g) nodes of g = min(gpus_per_node, n) GPUs; with
  n <= gpus_per_node everything stays on the scale-up fabric. The ring collectives take `per_node`, the group's
  ranks that share a node, for a strided group (Megatron's data-parallel ranks sit tp apart, its expert-data-
  parallel ranks ep apart: with tp = 8 each node holds one rank of a group, whose ring then crosses a NIC at
  every step).
* One GPU: time 0, algbw inf, busbw 0 (nothing moves; nccl-tests reports the same for a single rank).
* Bad input (n_gpus < 1, negative or NaN bytes) raises ValueError naming the argument.

`in_node_s` prices a collective inside one node as it was timed there (hwmodels/data/kernels/collectives.toml:
nccl-tests and TensorRT-LLM's all-reduce), the alpha-beta forms standing in where no table covers the GPU.

`simulator/network/collectives.py` runs the same collectives flow by flow on a routed topology;
`tests/simulator` compares the two, so the ring model here uses the same rail-aligned channel layout as the flow model.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from hwmodels.kernels import collectives_of
from hwmodels.specs import NodeSpec


def _is_count(value: object) -> bool:
    """True for an integer (Python or NumPy, not bool) >= 1."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= 1  # type: ignore[arg-type]  # any object: a TypeError means no
    except TypeError:
        return False


@dataclass(frozen=True, slots=True)
class TwoLevelNet:
    """Per-GPU bandwidths (bytes/s, one direction) and per-message latencies of a two-level cluster."""

    gpus_per_node: int
    scaleup_bw_bytes_per_s: float  # NVLink per GPU per direction (achieved)
    scaleout_bw_bytes_per_s: float  # NIC per GPU per direction (achieved)
    scaleup_latency_s: float
    scaleout_latency_s: float
    oversubscription: float = 1.0  # fabric taper >= 1: cross-node traffic gets at most scaleout_bw / oversubscription
    # per GPU when every GPU sends across the fabric at once

    def __post_init__(self) -> None:
        if not _is_count(self.gpus_per_node):
            raise ValueError(f"gpus_per_node={self.gpus_per_node!r} must be an integer >= 1")
        for name in ("scaleup_bw_bytes_per_s", "scaleout_bw_bytes_per_s"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ValueError(f"{name}={value} must be positive and finite (bytes/s per GPU per direction)")
        for name in ("scaleup_latency_s", "scaleout_latency_s"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:
                raise ValueError(f"{name}={value} must be >= 0 and finite (seconds; 0 for a pure-bandwidth model)")
        if not 1 <= self.oversubscription < math.inf:
            raise ValueError(f"oversubscription={self.oversubscription} must be >= 1 (1 = full bisection)")

    @classmethod
    def of_node(cls, node: NodeSpec, oversubscription: float = 1.0) -> TwoLevelNet:
        """The achieved NVLink / NIC rates and latencies of a catalog node."""
        return cls(
            gpus_per_node=node.gpus_per_node,
            scaleup_bw_bytes_per_s=node.scaleup_achieved_bw_bytes_per_s,
            scaleout_bw_bytes_per_s=node.scaleout_achieved_bw_bytes_per_s_per_gpu,
            scaleup_latency_s=node.scaleup_latency_s,
            scaleout_latency_s=node.nic.latency_s,
            oversubscription=oversubscription,
        )

    @property
    def fabric_bw_bytes_per_s(self) -> float:
        """Scale-out bandwidth per GPU when every GPU sends across the fabric at once: scaleout_bw / taper."""
        return self.scaleout_bw_bytes_per_s / self.oversubscription


@dataclass(frozen=True, slots=True)
class CollectiveTime:
    """Time of one collective and its nccl-tests bandwidths."""

    time_s: float
    algo_bytes_per_s: float  # bytes_per_gpu / time_s (nccl-tests algbw)
    bus_bytes_per_s: float  # algbw x the collective's bus factor (nccl-tests busbw)


def _check(n_gpus: int, bytes_per_gpu: float) -> None:
    """ValueError for a non-integer or < 1 GPU count, or negative / NaN / infinite bytes."""
    if not _is_count(n_gpus):
        raise ValueError(f"n_gpus={n_gpus!r} must be an integer >= 1")
    if not 0 <= bytes_per_gpu < math.inf:
        raise ValueError(f"bytes_per_gpu={bytes_per_gpu} must be >= 0 and finite")


def _result(time_s: float, bytes_per_gpu: float, bus_factor: float) -> CollectiveTime:
    """A CollectiveTime; a collective that takes no time (one GPU, or no bytes and no latency) has algbw inf and
    busbw 0."""
    if time_s == 0:
        return CollectiveTime(0.0, math.inf, 0.0)
    algo = bytes_per_gpu / time_s
    return CollectiveTime(time_s, algo, algo * bus_factor)


def _nodes(n_gpus: int, net: TwoLevelNet, per_node: int | None = None) -> tuple[int, int]:
    """(g, nodes): the group's GPUs per occupied node and the number of nodes; ranks placed node by node, or
    `per_node` of them to a node (a strided group)."""
    if per_node is not None and not (_is_count(per_node) and per_node <= net.gpus_per_node):
        raise ValueError(f"per_node={per_node!r} must be an integer from 1 to gpus_per_node={net.gpus_per_node}")
    g = min(per_node or net.gpus_per_node, n_gpus)
    return g, math.ceil(n_gpus / g)


def ring_step_s(n_gpus: int, chunk_bytes: float, net: TwoLevelNet, per_node: int | None = None) -> tuple[float, float]:
    """(bandwidth time, latency) of one ring step in which every GPU sends `chunk_bytes` (= B/n) to its successor.

    One node: the step is all NVLink, chunk / scaleup_bw, alpha = scaleup latency.
    Several nodes: NCCL builds g rail-aligned rings (channels), each carrying 1/g of the data; ring c leaves every
    node through local GPU c's NIC, so every GPU's NIC carries exactly one ring's inter-node hop and the rest of
    its step goes over NVLink. A step then sends (g-1)/g of the chunk over NVLink and 1/g over the NIC, both at
    once, and every NIC is busy at once, so the NIC gets scaleout_bw / oversubscription:

        beta = max(chunk (g-1)/g / scaleup_bw,  chunk / g / (scaleout_bw / oversubscription))

    i.e. each ring's step runs at the pace of its slowest hop, the scale-out one when the NIC is the bottleneck.
    Alpha per step is the latency of the slowest fabric crossed: max(scaleup, scaleout latency). A strided group
    (`per_node` = g of its ranks to a node) has g rings through g NICs: with g = 1 every step is chunk / NIC.
    """
    g, nodes = _nodes(n_gpus, net, per_node)
    if nodes == 1:
        return chunk_bytes / net.scaleup_bw_bytes_per_s, net.scaleup_latency_s
    nvlink_s = chunk_bytes * (g - 1) / g / net.scaleup_bw_bytes_per_s
    nic_s = chunk_bytes / g / net.fabric_bw_bytes_per_s
    return max(nvlink_s, nic_s), max(net.scaleup_latency_s, net.scaleout_latency_s)


def _ring(
    n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet, steps_per_rank: int, per_node: int | None
) -> CollectiveTime:
    """`steps_per_rank` x (n-1) ring steps of B/n each; bus factor steps_per_rank x (n-1)/n."""
    _check(n_gpus, bytes_per_gpu)
    if n_gpus == 1:
        return _result(0.0, bytes_per_gpu, 0.0)
    beta_s, alpha_s = ring_step_s(n_gpus, bytes_per_gpu / n_gpus, net, per_node)
    steps = steps_per_rank * (n_gpus - 1)
    return _result(steps * (alpha_s + beta_s), bytes_per_gpu, steps / n_gpus)


def ring_all_reduce(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet, per_node: int | None = None) -> CollectiveTime:
    """Ring all-reduce (reduce-scatter then all-gather): 2(n-1) steps of B/n.

        time = 2(n-1) (alpha_step + beta_step(B/n))        (steps: see `ring_step_s`)
        busbw = algbw x 2(n-1)/n                           (nccl-tests PERFORMANCE.md, AllReduce)

    With zero latency busbw equals the step's bottleneck bandwidth exactly: scaleup_bw in one node, and
    min(scaleup_bw g/(g-1), g scaleout_bw / oversubscription) across nodes (per GPU, summed over the g rings).
    Sources: Patarasuk & Yuan 2009 (bandwidth-optimal ring); NCCL's rail-aligned multi-channel rings.
    """
    return _ring(n_gpus, bytes_per_gpu, net, 2, per_node)


def reduce_scatter(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet, per_node: int | None = None) -> CollectiveTime:
    """Ring reduce-scatter of a B-byte buffer (each GPU ends with B/n): n-1 steps of B/n.

    time = (n-1) (alpha_step + beta_step(B/n)),  busbw = algbw x (n-1)/n   (nccl-tests PERFORMANCE.md)
    """
    return _ring(n_gpus, bytes_per_gpu, net, 1, per_node)


def all_gather(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet, per_node: int | None = None) -> CollectiveTime:
    """Ring all-gather into a B-byte buffer (each GPU contributes B/n): n-1 steps of B/n.

        time = (n-1) (alpha_step + beta_step(B/n)),  busbw = algbw x (n-1)/n   (nccl-tests PERFORMANCE.md)

    The reduce-scatter's steps without the reduction, so RS + AG = ring all-reduce exactly.
    """
    return _ring(n_gpus, bytes_per_gpu, net, 1, per_node)


def tree_all_reduce(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet) -> CollectiveTime:
    """NCCL's tree all-reduce: a double binary tree across nodes over a chain inside each node.

        time = 2 ceil(log2 nodes) alpha_out + 2 (g-1) alpha_up + 2 B / bw_bottleneck
        bw_bottleneck = min(scaleup_bw, g x scaleout_bw / oversubscription)   (scaleup_bw in one node)
        busbw = algbw x 2(n-1)/n   (nccl-tests counts every all-reduce algorithm alike)

    Latency: the reduction climbs the chain (g-1 NVLink hops) and the tree (ceil(log2 nodes) network hops), the
    broadcast comes back down the same way. Bandwidth (pipelined in chunks, so only the busiest port counts):
    the two trees (Sanders, Speck & Träff 2009) each carry B/2, and every node is interior (two children) in one
    and a leaf in the other. Reduce: a node sends B/2 to its parent in each tree = B; broadcast: it sends B/2 to
    each of its two children in the tree where it is interior = B. So each node sends (and receives) 2B across
    the network, spread over its g NICs (one per channel): 2B / (g scaleout_bw / oversubscription). In the node,
    each GPU's NVLink port carries B up the chain and B back down: 2B / scaleup_bw. The slower sets the pace.
    At zero latency busbw = bw_bottleneck (n-1)/n, a little under the ring's.
    """
    _check(n_gpus, bytes_per_gpu)
    if n_gpus == 1:
        return _result(0.0, bytes_per_gpu, 0.0)
    g, nodes = _nodes(n_gpus, net)
    alpha_s = 2 * math.ceil(math.log2(nodes)) * net.scaleout_latency_s + 2 * (g - 1) * net.scaleup_latency_s
    bw = net.scaleup_bw_bytes_per_s
    if nodes > 1:
        bw = min(bw, g * net.fabric_bw_bytes_per_s)
    return _result(alpha_s + 2 * bytes_per_gpu / bw, bytes_per_gpu, 2 * (n_gpus - 1) / n_gpus)


def all_to_all(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet) -> CollectiveTime:
    """All-to-all of B bytes per GPU, B/n to every GPU (itself included, as nccl-tests counts).

        intra = B (g-1)/n / scaleup_bw                            (the g-1 peers in the node, over NVLink)
        inter = B (n-g)/n / (scaleout_bw / oversubscription)      (the n-g peers elsewhere, over the GPU's NIC)
        time  = max(intra, inter) + alpha_up [g > 1] + alpha_out [n > g]
        busbw = algbw x (n-1)/n                                   (nccl-tests PERFORMANCE.md, AlltoAll)

    The two parts run concurrently, so the slower sets the pace. Latency, kept simple: one alpha of each fabric
    used, added (all sends are posted at once, so the true start-up lies between the max and this sum; it is
    negligible at the sizes where all-to-all matters). Every GPU sends across the fabric at once, hence the taper.
    With zero latency and the NIC the bottleneck, busbw = (scaleout_bw / oversubscription) (n-1)/(n-g), which
    tends to scaleout_bw / oversubscription as n >> g.
    """
    _check(n_gpus, bytes_per_gpu)
    if n_gpus == 1:
        return _result(0.0, bytes_per_gpu, 0.0)
    g, _ = _nodes(n_gpus, net)
    intra_s = bytes_per_gpu * (g - 1) / n_gpus / net.scaleup_bw_bytes_per_s
    inter_s = bytes_per_gpu * (n_gpus - g) / n_gpus / net.fabric_bw_bytes_per_s
    alpha_s = (net.scaleup_latency_s if g > 1 else 0.0) + (net.scaleout_latency_s if n_gpus > g else 0.0)
    return _result(alpha_s + max(intra_s, inter_s), bytes_per_gpu, (n_gpus - 1) / n_gpus)


def send_recv(bytes_: float, net: TwoLevelNet, same_node: bool) -> float:
    """Seconds for one point-to-point transfer of `bytes_`: alpha + bytes / bw of the fabric it crosses.

        same node:   scaleup_latency + bytes / scaleup_bw
        across:      scaleout_latency + bytes / scaleout_bw

    One transfer per NIC (a pipeline-parallel send) does not load the fabric's taper, so no oversubscription.
    """
    if not 0 <= bytes_ < math.inf:
        raise ValueError(f"bytes_={bytes_} must be >= 0 and finite")
    if same_node:
        return net.scaleup_latency_s + bytes_ / net.scaleup_bw_bytes_per_s
    return net.scaleout_latency_s + bytes_ / net.scaleout_bw_bytes_per_s


COLLECTIVES: dict[str, Callable[[int, float, TwoLevelNet], CollectiveTime]] = {
    "all-reduce": ring_all_reduce,
    "all-reduce-tree": tree_all_reduce,
    "reduce-scatter": reduce_scatter,
    "all-gather": all_gather,
    "all-to-all": all_to_all,
}


def in_node_s(kind: str, n_gpus: int, bytes_per_gpu: float, node: NodeSpec) -> float:
    """Seconds of one `kind` collective (`hwmodels.kernels.COLLECTIVE_KINDS`: NCCL's all_gather, reduce_scatter,
    all_to_all, all_reduce; custom_all_reduce, TensorRT-LLM's) over `n_gpus` GPUs of one `node`, B = `bytes_per_gpu` as
    nccl-tests counts it: as timed on the node's GPU at that count, else the alpha-beta form at the node's
    achieved NVLink rate (the custom all-reduce as the ring all-reduce); the forms also price a group that
    leaves the node."""
    _check(n_gpus, bytes_per_gpu)
    if n_gpus == 1 or bytes_per_gpu == 0:
        return 0.0
    gpu, in_domain = node.gpu, n_gpus <= node.scaleup_domain_gpus
    tables = collectives_of(gpu.name, gpu.die, gpu.scaleup_bw_bytes_per_s) if in_domain else None
    timed = tables[kind].time_s(n_gpus, bytes_per_gpu) if tables else None
    if timed is not None:
        return timed
    net = _node_net(node)
    if kind == "all_to_all":
        return all_to_all(n_gpus, bytes_per_gpu, net).time_s
    forms = {"all_gather": all_gather, "reduce_scatter": reduce_scatter, "all_reduce": ring_all_reduce,
             "custom_all_reduce": ring_all_reduce}  # fmt: skip
    return forms[kind](n_gpus, bytes_per_gpu, net).time_s


@cache
def _node_net(node: NodeSpec) -> TwoLevelNet:
    """`TwoLevelNet.of_node`, built once per node (serving prices a collective per layer and batch)."""
    return TwoLevelNet.of_node(node)

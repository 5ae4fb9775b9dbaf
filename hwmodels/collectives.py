"""Alpha-beta closed forms of collectives on a two-level cluster (the analytic model's costs).

GPUs sit g to a node on a scale-up fabric (NVLink); nodes meet on a scale-out
network with one NIC per GPU. A collective's time is latency (alpha, per
message) plus bytes over the bandwidth of the busiest link it loads (beta).
Bus bandwidth follows nccl-tests (PERFORMANCE.md): algbw x 2(n-1)/n for
all-reduce, x (n-1)/n for reduce-scatter, all-gather and all-to-all.
`simulator/network.py` runs the same collectives flow by flow on a topology;
the tests compare the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TwoLevelNet:
    """Per-GPU bandwidths (bytes/s, one direction) and per-message latencies of a two-level cluster."""

    gpus_per_node: int
    scaleup_bw_bytes_per_s: float  # NVLink per GPU per direction (achieved)
    scaleout_bw_bytes_per_s: float  # NIC per GPU per direction (achieved)
    scaleup_latency_s: float
    scaleout_latency_s: float
    oversubscription: float = 1.0  # fabric taper: cross-node traffic gets scaleout_bw / oversubscription

    def __post_init__(self) -> None:
        if self.gpus_per_node < 1:
            raise ValueError(f"gpus_per_node={self.gpus_per_node} must be >= 1")
        for name in ("scaleup_bw_bytes_per_s", "scaleout_bw_bytes_per_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        if min(self.scaleup_latency_s, self.scaleout_latency_s) < 0:
            raise ValueError("latencies must be >= 0")
        if self.oversubscription < 1:
            raise ValueError(f"oversubscription={self.oversubscription} must be >= 1 (1 = full bisection)")

    @property
    def fabric_bw_bytes_per_s(self) -> float:
        """Scale-out bandwidth per GPU when every GPU sends across the fabric at once."""
        return self.scaleout_bw_bytes_per_s / self.oversubscription


@dataclass(frozen=True, slots=True)
class CollectiveTime:
    time_s: float
    algo_bytes_per_s: float  # bytes_per_gpu / time_s (nccl-tests algbw)
    bus_bytes_per_s: float  # algbw x the collective's bus factor (nccl-tests busbw)


def _check(n_gpus: int, bytes_per_gpu: float) -> None:
    if n_gpus < 1:
        raise ValueError(f"n_gpus={n_gpus} must be >= 1")
    if bytes_per_gpu < 0:
        raise ValueError(f"bytes_per_gpu={bytes_per_gpu} must be >= 0")


def _result(time_s: float, bytes_per_gpu: float, bus_factor: float) -> CollectiveTime:
    """A CollectiveTime; one GPU (or no bytes) takes no time, and then has infinite algbw and zero busbw."""
    if time_s == 0:
        return CollectiveTime(0.0, math.inf, 0.0)
    algo = bytes_per_gpu / time_s
    return CollectiveTime(time_s, algo, algo * bus_factor)


def ring_step_s(n_gpus: int, chunk_bytes: float, net: TwoLevelNet) -> tuple[float, float]:
    """(bandwidth time, latency) of one ring step moving `chunk_bytes` per GPU.

    NCCL runs g rail-aligned rings on multi-node jobs, each leaving a node through a different GPU's NIC, so a GPU
    sends (g-1)/g of its chunk over NVLink and 1/g over its NIC; both go at once. In one node: all NVLink.
    """
    g = min(net.gpus_per_node, n_gpus)
    if n_gpus <= net.gpus_per_node:
        return chunk_bytes / net.scaleup_bw_bytes_per_s, net.scaleup_latency_s
    nvlink = chunk_bytes * (g - 1) / g / net.scaleup_bw_bytes_per_s
    nic = chunk_bytes / g / net.fabric_bw_bytes_per_s
    return max(nvlink, nic), max(net.scaleup_latency_s, net.scaleout_latency_s)


def ring_all_reduce(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet) -> CollectiveTime:
    """Ring all-reduce: 2(n-1) steps of B/n (reduce-scatter, then all-gather)."""
    _check(n_gpus, bytes_per_gpu)
    if n_gpus == 1:
        return _result(0.0, bytes_per_gpu, 0.0)
    beta, alpha = ring_step_s(n_gpus, bytes_per_gpu / n_gpus, net)
    return _result(2 * (n_gpus - 1) * (alpha + beta), bytes_per_gpu, 2 * (n_gpus - 1) / n_gpus)


def reduce_scatter(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet) -> CollectiveTime:
    """Ring reduce-scatter of a B-byte buffer: n-1 steps of B/n."""
    _check(n_gpus, bytes_per_gpu)
    if n_gpus == 1:
        return _result(0.0, bytes_per_gpu, 0.0)
    beta, alpha = ring_step_s(n_gpus, bytes_per_gpu / n_gpus, net)
    return _result((n_gpus - 1) * (alpha + beta), bytes_per_gpu, (n_gpus - 1) / n_gpus)


def all_gather(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet) -> CollectiveTime:
    """Ring all-gather into a B-byte buffer: the reduce-scatter's steps without the reduction."""
    return reduce_scatter(n_gpus, bytes_per_gpu, net)


def tree_all_reduce(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet) -> CollectiveTime:
    """NCCL's double binary tree across nodes over an intra-node chain.

    Latency: up and down the chain (2(g-1) scale-up hops) and the tree (2 ceil(log2 nodes) scale-out hops).
    Bandwidth: each of the two trees carries B/2 and every node sends and receives its half twice (reduce, then
    broadcast, pipelined), so a node's NICs move B each way: B / (g x fabric bw) per GPU's NIC; the chain moves B
    over NVLink. The slower of the two sets the pace.
    """
    _check(n_gpus, bytes_per_gpu)
    if n_gpus == 1:
        return _result(0.0, bytes_per_gpu, 0.0)
    g = min(net.gpus_per_node, n_gpus)
    nodes = math.ceil(n_gpus / g)
    alpha = 2 * (g - 1) * net.scaleup_latency_s + 2 * math.ceil(math.log2(nodes)) * net.scaleout_latency_s
    beta = bytes_per_gpu / net.scaleup_bw_bytes_per_s
    if nodes > 1:
        beta = max(beta, bytes_per_gpu / (g * net.fabric_bw_bytes_per_s))
    return _result(alpha + beta, bytes_per_gpu, 2 * (n_gpus - 1) / n_gpus)


def all_to_all(n_gpus: int, bytes_per_gpu: float, net: TwoLevelNet) -> CollectiveTime:
    """All-to-all of B bytes per GPU (B/n to each GPU, itself included): (g-1)/n of B over NVLink and (n-g)/n over
    the NIC, at once; one latency of each fabric used."""
    _check(n_gpus, bytes_per_gpu)
    if n_gpus == 1:
        return _result(0.0, bytes_per_gpu, 0.0)
    g = min(net.gpus_per_node, n_gpus)
    intra = bytes_per_gpu * (g - 1) / n_gpus / net.scaleup_bw_bytes_per_s
    inter = bytes_per_gpu * (n_gpus - g) / n_gpus / net.fabric_bw_bytes_per_s
    alpha = net.scaleup_latency_s if g > 1 else 0.0
    alpha = max(alpha, net.scaleout_latency_s if n_gpus > g else 0.0)
    return _result(alpha + max(intra, inter), bytes_per_gpu, (n_gpus - 1) / n_gpus)


def send_recv(bytes_: float, net: TwoLevelNet, same_node: bool) -> float:
    """Seconds to send `bytes_` point to point, over NVLink or the NIC."""
    if bytes_ < 0:
        raise ValueError(f"bytes={bytes_} must be >= 0")
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

"""Collectives on a real fabric: their flows, routed on the topology, shared max-min fairly.

Each collective's point-to-point transfers between GPUs come from
`hwmodels.traffic`, `route_transfers` gives each transfer its links (NVLink inside a node, NIC +
switch path + NIC across nodes), and `simulator/network/flows.py` runs them. With
`forwarding` (DeepEP's dispatch/combine, and the only way across planes of a
multi-plane fat tree) a transfer to another node first crosses the network
to the GPU of the sender's in-node index on the destination node, then
NVLink; the legs of many transfers that share a hop are merged into one
flow, as the kernels batch them. A pipelined algorithm (the tree all-reduce)
is one flow per pipeline over all its edges, plus the pipeline's fill latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from hwmodels.routing import Fabric, link_loads, transfer_links
from hwmodels.traffic import all_to_all_legs, forward_legs, moe_transfers, ring_transfers
from simulator.network.flows import FlowResult, FlowSet, simulate_flows

# Memory of the flow model per GPU-to-GPU transfer (arrays, routes, incidence), measured: a 2,048-GPU
# all-to-all (4.2M transfers) peaks at 0.9 GB with forwarding, 1.9 GB without. Larger sets are refused
# before they are built.
BYTES_PER_TRANSFER = 450
MAX_FLOW_MODEL_BYTES = 4e9


def check_transfers(count: int, what: str, fix: str = "use fewer GPUs") -> None:
    """Raise ValueError, with the figure, if `count` transfers would take the flow model past its memory limit."""
    need = count * BYTES_PER_TRANSFER
    if need > MAX_FLOW_MODEL_BYTES:
        raise ValueError(
            f"{what}: {count:,} transfers need about {need / 1e9:,.0f} GB in the flow model, over its limit of "
            f"{MAX_FLOW_MODEL_BYTES / 1e9:.0f} GB; {fix}"
        )


def check_moe_transfers(gpus: int, ep: int, gpus_per_node: int, phase: str) -> None:
    """Refuse a MoE dispatch or combine too large for the flow model (its legs: per GPU, one per node of its
    group and g per such node)."""
    check_transfers(
        gpus * (ep // gpus_per_node) * (gpus_per_node + 1),
        f"the MoE {phase} of {gpus:,} GPUs at ep={ep}",
        "use fewer GPUs or the closed-form network (v3sim simulate --network analytic)",
    )


@dataclass(frozen=True, slots=True)
class CollectiveResult:
    """Completion time of a collective and what each link carried."""

    name: str
    gpus: int
    bytes_per_gpu: float
    time_s: float
    algo_bytes_per_s: float  # bytes_per_gpu / time_s (nccl-tests algbw)
    bus_bytes_per_s: float  # algbw x the collective's bus factor (nccl-tests busbw)
    flows: int
    max_link_utilization: float  # busiest link's bytes / (capacity x time)


def route_transfers(
    fabric: Fabric, src: np.ndarray, dst: np.ndarray, size: np.ndarray, ecmp: str = "hash", seed: int = 0
) -> FlowSet:
    """A FlowSet of GPU-to-GPU transfers: NVLink (up, down) inside a node; NIC up, the switch path and NIC down
    across nodes. Latency: the scale-up latency, or the NIC's plus each switch's."""
    src, dst, size = np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(size, float)
    n = len(src)
    flows, links, weights, hops = transfer_links(fabric, src, dst, ecmp, seed)  # hops: switch-to-switch links
    n_links = len(fabric.capacity_bytes_per_s)
    incidence = csr_matrix((weights, (links, flows)), shape=(n_links, n))
    latency = transfer_latency_s(fabric, src, dst, hops)
    return FlowSet(incidence, fabric.capacity_bytes_per_s, size, np.zeros(n), latency)


def transfer_latency_s(fabric: Fabric, src: np.ndarray, dst: np.ndarray, hops: np.ndarray) -> np.ndarray:
    """Each transfer's latency: the scale-up latency inside a node, else the NIC's plus each switch's."""
    g = fabric.node.gpus_per_node
    local = np.asarray(src) // g == np.asarray(dst) // g
    hop_latency = fabric.node.nic.latency_s + (hops + 1) * fabric.switch_latency_s
    return np.where(local, fabric.node.scaleup_latency_s, hop_latency)


def run_transfers(
    fabric: Fabric,
    name: str,
    src: np.ndarray,
    dst: np.ndarray,
    size: np.ndarray,
    bytes_per_gpu: float,
    bus_factor: float,
    ecmp: str = "hash",
    seed: int = 0,
    steps: int = 1,
) -> CollectiveResult:
    """Route and run one round of transfers; `steps` identical rounds run back to back (ring algorithms)."""
    result = simulate_flows(route_transfers(fabric, src, dst, size, ecmp, seed))
    gpus = len(np.unique(np.concatenate([src, dst])))
    return _collective_result(fabric, name, gpus, bytes_per_gpu, bus_factor, result, result.makespan_s * steps)


def _collective_result(
    fabric: Fabric, name: str, gpus: int, bytes_per_gpu: float, bus_factor: float, result: FlowResult, time_s: float
) -> CollectiveResult:
    """A CollectiveResult for a collective of time_s whose round of flows is `result` (its link loads)."""
    makespan_s = result.makespan_s
    busy = result.link_bytes / (fabric.capacity_bytes_per_s * makespan_s) if makespan_s else [0.0]
    algo = bytes_per_gpu / time_s if time_s else float("inf")
    flows = len(result.finish_s)
    return CollectiveResult(name, gpus, bytes_per_gpu, time_s, algo, algo * bus_factor, flows, float(max(busy)))


def all_to_all_transfers(
    fabric: Fabric, gpus: int, bytes_per_gpu: float, forwarding: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, bytes) of a uniform all-to-all of the first `gpus` GPUs (see `all_to_all`)."""
    g = fabric.node.gpus_per_node
    if forwarding and gpus % g == 0:
        check_transfers(gpus * (gpus // g + g - 2), f"an all-to-all of {gpus:,} GPUs")
        return all_to_all_legs(g, gpus, bytes_per_gpu)
    check_transfers(gpus * (gpus - 1), f"an all-to-all of {gpus:,} GPUs")
    src = np.repeat(np.arange(gpus), gpus)
    dst = np.tile(np.arange(gpus), gpus)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    size = np.full(len(src), bytes_per_gpu / gpus)
    return forward_legs(fabric, src, dst, size) if forwarding else (src, dst, size)


def fast_s(
    fabric: Fabric, src: np.ndarray, dst: np.ndarray, size: np.ndarray, ecmp: str = "hash", seed: int = 0
) -> float:
    """The fast model's time for transfers that all start at once: each ends when the busiest link it crosses
    has carried all its bytes (bytes over capacity), plus its latency; the last of them sets the time. No rates
    and no events (tests/simulator/test_fabric.py holds it to the flow model's makespan)."""
    flows, links, weights, hops = transfer_links(fabric, src, dst, ecmp, seed)
    drain_s = link_loads(fabric, flows, links, weights, size) / fabric.capacity_bytes_per_s
    finish_s = np.zeros(len(src))
    np.maximum.at(finish_s, flows, drain_s[links])
    finish_s += transfer_latency_s(fabric, src, dst, hops)
    return float(finish_s.max(initial=0.0))


FAST_CHUNK_LEGS = 2_000_000  # legs routed at once by the fast all-to-all: about 0.5 GB of routes at a time


def fast_all_to_all_s(
    fabric: Fabric, gpus: int, bytes_per_gpu: float, forwarding: bool = True, ecmp: str = "hash", seed: int = 0
) -> float:
    """`fast_s` of the uniform all-to-all (`all_to_all_transfers`), its legs built and routed a block of
    sending GPUs at a time: memory is bounded by FAST_CHUNK_LEGS, not by the gpus x (nodes + g) legs, so
    16,384 GPUs (33.5M legs) run on a laptop. Each link's load is summed over the blocks with the latest
    latency of the transfers crossing it: the busiest link plus its latency is `fast_s`'s finish time
    (max over transfers of max over their links = max over links of the transfers crossing them). Random
    ECMP draws per block (hash and spray take the same paths as the whole set)."""
    g = fabric.node.gpus_per_node
    if not forwarding or gpus % g or ecmp == "random":
        return fast_s(fabric, *all_to_all_transfers(fabric, gpus, bytes_per_gpu, forwarding), ecmp, seed)
    per_gpu = gpus // g + g - 2
    block = max(1, FAST_CHUNK_LEGS // per_gpu)
    loads = np.zeros(len(fabric.capacity_bytes_per_s))
    latest_s = np.full(len(loads), -np.inf)  # the latest latency among the transfers crossing each link
    remote_before = 0
    for first in range(0, gpus, block):
        src, dst, size = all_to_all_legs(g, gpus, bytes_per_gpu, range(first, min(gpus, first + block)))
        flows, links, weights, hops = transfer_links(fabric, src, dst, ecmp, seed, remote_before)
        remote_before += int((src // g != dst // g).sum())
        loads += link_loads(fabric, flows, links, weights, size)
        np.maximum.at(latest_s, links, transfer_latency_s(fabric, src, dst, hops)[flows])
    used = np.isfinite(latest_s)
    return float((loads[used] / fabric.capacity_bytes_per_s[used] + latest_s[used]).max(initial=0.0))


def all_to_all(
    fabric: Fabric, gpus: int, bytes_per_gpu: float, forwarding: bool = True, ecmp: str = "hash", seed: int = 0
) -> CollectiveResult:
    """Uniform all-to-all of the first `gpus` GPUs: each sends bytes_per_gpu / gpus to every other GPU
    (nccl-tests' convention: the 1/n a GPU keeps counts in bytes_per_gpu). With forwarding over whole nodes
    the legs come in closed form (`hwmodels.traffic.all_to_all_legs`), one per (GPU, other node) and per pair
    of GPUs in a node, never the gpus^2 transfers."""
    src, dst, size = all_to_all_transfers(fabric, gpus, bytes_per_gpu, forwarding)
    return run_transfers(fabric, "all-to-all", src, dst, size, bytes_per_gpu, (gpus - 1) / gpus, ecmp, seed)


RING_STEPS = {"all-reduce": lambda n: 2 * (n - 1), "reduce-scatter": lambda n: n - 1, "all-gather": lambda n: n - 1}
BUS_FACTOR = {"all-reduce": lambda n: 2 * (n - 1) / n, "reduce-scatter": lambda n: (n - 1) / n}
BUS_FACTOR["all-gather"] = BUS_FACTOR["reduce-scatter"]


def ring_collective(
    fabric: Fabric, name: str, gpus: int, bytes_per_gpu: float, ecmp: str = "hash", seed: int = 0
) -> CollectiveResult:
    """Ring all-reduce, reduce-scatter or all-gather: steps of bytes_per_gpu / gpus per GPU, one after another."""
    if name not in RING_STEPS:
        raise ValueError(f"unknown ring collective {name!r}; use one of: {', '.join(RING_STEPS)}")
    if gpus < 2:
        raise ValueError("a collective needs at least 2 GPUs")
    src, dst, size = ring_transfers(fabric, gpus, bytes_per_gpu / gpus)
    factor = BUS_FACTOR[name](gpus)
    return run_transfers(fabric, name, src, dst, size, bytes_per_gpu, factor, ecmp, seed, RING_STEPS[name](gpus))


def _btree_parent(rank: np.ndarray, nodes: int) -> np.ndarray:
    """Parent of each rank in NCCL's binary tree on `nodes` ranks (ncclGetBtree, src/graph/trees.cc): clear the
    lowest set bit and set the next one up (or just clear it past the last rank); rank 0 is the root (-1)."""
    bit = rank & -rank
    up = (rank ^ bit) | (bit << 1)
    return np.where(rank == 0, -1, np.where(up >= nodes, rank ^ bit, up))


def double_binary_tree(nodes: int) -> np.ndarray:
    """(2, nodes) parent node of every node in NCCL's double binary tree (-1 at a root; ncclGetDtree): the
    binary tree and its mirror image (nodes even) or its shift by one (odd), so that the nodes interior to one
    tree are leaves of the other (Sanders, Speck & Träff 2009)."""
    rank = np.arange(nodes)
    if nodes % 2:
        up = _btree_parent((rank - 1) % nodes, nodes)
        second = np.where(up < 0, -1, (up + 1) % nodes)
    else:
        up = _btree_parent(nodes - 1 - rank, nodes)
        second = np.where(up < 0, -1, nodes - 1 - up)
    return np.stack([_btree_parent(rank, nodes), second])


def tree_parents(gpus: int, gpus_per_node: int) -> np.ndarray:
    """(2g, gpus) parent GPU of every GPU in each pipeline (c, t) of the tree all-reduce (-1 at its root), g =
    gpus_per_node: channel c chains each node's GPUs over NVLink from local index c - 1 down to its head c,
    and tree t of `double_binary_tree` joins the heads, over local GPU c's NIC (rail c, as the rings do)."""
    g, nodes = gpus_per_node, gpus // gpus_per_node
    c = np.arange(g)[:, None, None, None]
    t = np.arange(2)[None, :, None, None]
    node = np.arange(nodes)[None, None, :, None]
    k = np.arange(g)[None, None, None, :]  # position in the chain; 0 is the head
    up_node = double_binary_tree(nodes)[t, node]
    head_parent = np.where(up_node < 0, -1, up_node * g + c)
    parents = np.empty((g, 2, gpus), dtype=np.int64)
    parents[c, t, node * g + (c + k) % g] = np.where(k > 0, node * g + (c + k - 1) % g, head_parent)
    return parents.reshape(2 * g, gpus)


def tree_edges(parents: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, pipeline) of every edge of every pipeline: child to parent (reduce), then parent to child
    (broadcast), each carrying its pipeline's bytes."""
    pipe, child = np.nonzero(parents >= 0)
    parent = parents[pipe, child]
    return np.concatenate([child, parent]), np.concatenate([parent, child]), np.tile(pipe, 2)


def _path_latency_s(parents: np.ndarray, edge_latency_s: np.ndarray) -> np.ndarray:
    """(pipelines, gpus) summed latency of the edges from each GPU to its pipeline's root, given the latency
    of each GPU's edge to its parent (one vectorized step per level of the trees)."""
    rows = np.arange(len(parents))[:, None]
    total, ancestor = edge_latency_s.copy(), parents
    while (ancestor >= 0).any():
        up = np.maximum(ancestor, 0)
        total += np.where(ancestor >= 0, edge_latency_s[rows, up], 0.0)
        ancestor = np.where(ancestor >= 0, parents[rows, up], -1)
    return total


def tree_all_reduce(
    fabric: Fabric, gpus: int, bytes_per_gpu: float, ecmp: str = "hash", seed: int = 0
) -> CollectiveResult:
    """NCCL's tree all-reduce on the first `gpus` GPUs, the algorithm of `hwmodels.collectives.tree_all_reduce`:
    2g pipelines (g channels x the two trees of a double binary tree across nodes), each reducing
    bytes_per_gpu / 2g up a chain inside every node and the tree across nodes, then broadcasting it back down.

    Pipelined in small chunks, a pipeline moves its bytes over all its edges at once and at one pace, so each
    is one flow loading every link as often as its edges cross it. Its latency is the pipeline's fill: its
    longest reduce path plus its longest broadcast path, hops as routed (the closed form's
    2 ceil(log2 nodes) alpha_out + 2 (g-1) alpha_up).
    """
    g = fabric.node.gpus_per_node
    if gpus < 2 or gpus % g or gpus > fabric.gpus:
        raise ValueError(f"gpus={gpus} must be a multiple of {g} GPUs per node, from 2 to the fabric's {fabric.gpus}")
    if not 0 < bytes_per_gpu < np.inf:
        raise ValueError(f"bytes_per_gpu={bytes_per_gpu:g} must be positive and finite")
    parents = tree_parents(gpus, g)
    src, dst, pipe = tree_edges(parents)
    edges = route_transfers(fabric, src, dst, np.zeros(len(src)), ecmp, seed)
    n, half = len(parents), len(src) // 2
    lanes = csr_matrix((np.ones(len(src)), (np.arange(len(src)), pipe)), shape=(len(src), n))
    hop_s = np.zeros((2, *parents.shape))
    hop_s[:, pipe[:half], src[:half]] = edges.latency_s.reshape(2, half)  # each child's edge: up, then down
    fill_s = sum(_path_latency_s(parents, h).max(axis=1) for h in hop_s)
    flows = FlowSet(
        (edges.incidence @ lanes).tocsr(),
        edges.capacity_bytes_per_s,
        np.full(n, bytes_per_gpu / n),
        np.zeros(n),
        fill_s,
    )
    result = simulate_flows(flows)
    factor = BUS_FACTOR["all-reduce"](gpus)
    return _collective_result(fabric, "all-reduce-tree", gpus, bytes_per_gpu, factor, result, result.makespan_s)


def send_recv(
    fabric: Fabric, src: np.ndarray, dst: np.ndarray, size_bytes: float, ecmp: str = "hash", seed: int = 0
) -> CollectiveResult:
    """Pipeline-parallel sends: every src[i] sends size_bytes to dst[i] at once."""
    size = np.full(len(src), float(size_bytes))
    return run_transfers(fabric, "send-recv", np.asarray(src), np.asarray(dst), size, size_bytes, 1.0, ecmp, seed)


def moe_all_to_all(
    fabric: Fabric,
    ep: int,
    tokens_per_gpu: int,
    per_token: dict[str, float],
    phase: str = "dispatch",
    ecmp: str = "hash",
    seed: int = 0,
) -> CollectiveResult:
    """MoE dispatch (or combine) of every EP group at once, uniform routing (`hwmodels.traffic.moe_transfers`)."""
    check_moe_transfers(fabric.gpus, ep, fabric.node.gpus_per_node, phase)
    src, dst, size = moe_transfers(fabric, ep, tokens_per_gpu, per_token, phase)
    bytes_per_gpu = tokens_per_gpu * per_token[phase]
    return run_transfers(fabric, f"moe-{phase}", src, dst, size, bytes_per_gpu, 1.0, ecmp, seed)

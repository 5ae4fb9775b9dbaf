"""Collectives on a real fabric: their flows, routed on the topology, shared max-min fairly.

Each builder turns a collective into point-to-point transfers between GPUs,
`route_transfers` gives each transfer its links (NVLink inside a node, NIC +
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

from hwmodels.routing import Fabric, switch_paths
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


def _merge(src: np.ndarray, dst: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the bytes of transfers with the same (src, dst)."""
    n = int(max(src.max(initial=0), dst.max(initial=0))) + 1
    key = src * n + dst
    if n * n <= 50_000_000:  # dense bincount beats sorting
        total = np.bincount(key, weights=size, minlength=n * n)
        used = np.flatnonzero(np.bincount(key, minlength=n * n))
        return used // n, used % n, total[used]
    keys, inverse = np.unique(key, return_inverse=True)
    return keys // n, keys % n, np.bincount(inverse, weights=size, minlength=len(keys))


def forward_legs(
    fabric: Fabric, src: np.ndarray, dst: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split transfers to other nodes into a network leg (to the sender's in-node index on the destination
    node) and an NVLink leg (from there to the destination); merge legs that share endpoints."""
    g = fabric.node.gpus_per_node
    relay = (dst // g) * g + src % g
    cross = src // g != dst // g
    leg_src = np.concatenate([src[cross], relay[cross], src[~cross]])
    leg_dst = np.concatenate([relay[cross], dst[cross], dst[~cross]])
    leg_size = np.concatenate([size[cross], size[cross], size[~cross]])
    keep = leg_src != leg_dst
    return _merge(leg_src[keep], leg_dst[keep], leg_size[keep])


def route_transfers(
    fabric: Fabric, src: np.ndarray, dst: np.ndarray, size: np.ndarray, ecmp: str = "hash", seed: int = 0
) -> FlowSet:
    """A FlowSet of GPU-to-GPU transfers: NVLink (up, down) inside a node; NIC up, the switch path and NIC down
    across nodes. Latency: the scale-up latency, or the NIC's plus each switch's."""
    src, dst, size = np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(size, float)
    g, n = fabric.node.gpus_per_node, len(src)
    local = src // g == dst // g
    idx = np.arange(n)
    f_parts = [idx[local], idx[local], idx[~local], idx[~local]]
    l_parts = [fabric.nvlink_up(src[local]), fabric.nvlink_down(dst[local])]
    l_parts += [fabric.nic_up(src[~local]), fabric.nic_down(dst[~local])]
    w_parts = [np.ones(len(p)) for p in f_parts]
    remote = idx[~local]
    pf, pl, pw = switch_paths(fabric, fabric.gpu_switch[src[remote]], fabric.gpu_switch[dst[remote]], ecmp, seed)
    f_parts.append(remote[pf])
    l_parts.append(pl)
    w_parts.append(pw)
    flows, links, weights = np.concatenate(f_parts), np.concatenate(l_parts), np.concatenate(w_parts)
    n_links = len(fabric.capacity_bytes_per_s)
    incidence = csr_matrix((weights, (links, flows)), shape=(n_links, n))
    hops = np.bincount(remote[pf], weights=pw, minlength=n)  # switch-to-switch links crossed
    hop_latency = fabric.node.nic.latency_s + (hops + 1) * fabric.switch_latency_s
    latency = np.where(local, fabric.node.scaleup_latency_s, hop_latency)
    return FlowSet(incidence, fabric.capacity_bytes_per_s, size, np.zeros(n), latency)


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


def all_to_all(
    fabric: Fabric, gpus: int, bytes_per_gpu: float, forwarding: bool = True, ecmp: str = "hash", seed: int = 0
) -> CollectiveResult:
    """Uniform all-to-all of the first `gpus` GPUs: each sends bytes_per_gpu / gpus to every other GPU
    (nccl-tests' convention: the 1/n a GPU keeps counts in bytes_per_gpu)."""
    check_transfers(gpus * (gpus - 1), f"an all-to-all of {gpus:,} GPUs")
    src = np.repeat(np.arange(gpus), gpus)
    dst = np.tile(np.arange(gpus), gpus)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    size = np.full(len(src), bytes_per_gpu / gpus)
    if forwarding:
        src, dst, size = forward_legs(fabric, src, dst, size)
    return run_transfers(fabric, "all-to-all", src, dst, size, bytes_per_gpu, (gpus - 1) / gpus, ecmp, seed)


def ring_transfers(fabric: Fabric, gpus: int, bytes_per_step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of ring collectives over g channels (g = GPUs per node): channel c visits each node's GPUs
    from local index c around to c - 1 and crosses to the next node from there, over the NIC of that GPU
    and NVLink on arrival, so every NIC carries one channel (NCCL's rail-aligned rings)."""
    g = min(fabric.node.gpus_per_node, gpus)
    nodes = gpus // g
    srcs, dsts = [], []
    for c in range(g):
        order = (np.arange(nodes)[:, None] * g + (c + np.arange(g))[None, :] % g).ravel()
        srcs.append(order)
        dsts.append(np.roll(order, -1))
    src, dst = np.concatenate(srcs), np.concatenate(dsts)
    return forward_legs(fabric, src, dst, np.full(len(src), bytes_per_step / g))


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


def send_recv(fabric: Fabric, src: np.ndarray, dst: np.ndarray, size_bytes: float) -> CollectiveResult:
    """Pipeline-parallel sends: every src[i] sends size_bytes to dst[i] at once."""
    size = np.full(len(src), float(size_bytes))
    return run_transfers(fabric, "send-recv", np.asarray(src), np.asarray(dst), size, size_bytes, 1.0)


def moe_transfers(
    fabric: Fabric,
    ep: int,
    tokens_per_gpu: float | np.ndarray,
    per_token: dict[str, float],
    phase: str = "dispatch",
    gpu_load: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, bytes) of the MoE dispatch (or combine: the same flows reversed) of every EP group of `ep`
    consecutive GPUs, with forwarding.

    `per_token` is `workloads.comm.ep_bytes_per_token_per_layer`. `tokens_per_gpu` is one number or one per
    GPU (0: the GPU takes no part). `gpu_load` is each GPU's routed tokens relative to its group's mean
    (default: all 1, uniform routing): a token's network bytes go to the other nodes of its group in
    proportion to their load (to the sender's in-node index there), its NVLink copies to the group's nodes in
    proportion to their load and, inside a node, from that GPU to the others in proportion to theirs.
    """
    g = fabric.node.gpus_per_node
    if ep % g or fabric.gpus % ep:
        raise ValueError(f"ep={ep} must be a multiple of {g} GPUs per node and divide {fabric.gpus} GPUs")
    n_gpus, nodes = fabric.gpus, ep // g
    check_transfers(
        n_gpus * nodes * (g + 1),
        f"the MoE {phase} of {n_gpus:,} GPUs at ep={ep}",
        "use fewer GPUs or the closed-form network (v3sim simulate --network analytic)",
    )
    tokens = np.broadcast_to(np.asarray(tokens_per_gpu, float), (n_gpus,))
    load = np.ones(n_gpus) if gpu_load is None else np.asarray(gpu_load, float)
    if load.shape != (n_gpus,) or (load < 0).any():
        raise ValueError(f"gpu_load must be {n_gpus} non-negative numbers")
    node_load = load.reshape(-1, g).sum(axis=1)
    group_load = node_load.reshape(-1, nodes).sum(axis=1)
    s = np.arange(n_gpus)
    ib_src = np.repeat(s, nodes)
    ib_node = np.repeat((s // ep) * nodes, nodes) + np.tile(np.arange(nodes), n_gpus)
    ib_dst = ib_node * g + ib_src % g
    remote = group_load[ib_src // ep] - node_load[ib_src // g]
    ib_share = np.divide(node_load[ib_node], remote, out=np.zeros(len(ib_src)), where=remote > 0)
    ib_size = np.where(ib_node == ib_src // g, 0.0, tokens[ib_src] * per_token[f"{phase}_ib"] * ib_share)
    node_share = np.divide(
        node_load[ib_node], group_load[ib_src // ep], out=np.zeros(len(ib_src)), where=group_load[ib_src // ep] > 0
    )
    nv_relay = np.repeat(ib_dst, g)
    nv_dst = np.repeat(ib_node, g) * g + np.tile(np.arange(g), len(ib_dst))
    others = node_load[nv_dst // g] - load[nv_relay]
    in_node = np.divide(load[nv_dst], others, out=np.zeros(len(nv_dst)), where=others > 0)
    nv_size = np.repeat(tokens[ib_src] * per_token[f"{phase}_nvlink"] * node_share, g) * in_node
    src = np.concatenate([ib_src, nv_relay])
    dst = np.concatenate([ib_dst, nv_dst])
    size = np.concatenate([ib_size, nv_size])
    keep = (src != dst) & (size > 0)
    src, dst, size = _merge(src[keep], dst[keep], size[keep])
    return (dst, src, size) if phase == "combine" else (src, dst, size)


def moe_all_to_all(
    fabric: Fabric,
    ep: int,
    tokens_per_gpu: int,
    per_token: dict[str, float],
    phase: str = "dispatch",
    ecmp: str = "hash",
    seed: int = 0,
) -> CollectiveResult:
    """MoE dispatch (or combine) of every EP group at once, uniform routing (`moe_transfers`)."""
    src, dst, size = moe_transfers(fabric, ep, tokens_per_gpu, per_token, phase)
    bytes_per_gpu = tokens_per_gpu * per_token[phase]
    return run_transfers(fabric, f"moe-{phase}", src, dst, size, bytes_per_gpu, 1.0, ecmp, seed)

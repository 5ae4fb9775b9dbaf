"""Routing on a topology graph with its GPUs: directed links, ECMP, planes and NVLink forwarding.

`build_fabric` joins a switch graph (hwmodels/topology.py) with the nodes that
hang off it: every GPU reaches its NIC's switch over its NIC link and the
other GPUs of its node through the node's NVSwitch. Links are directed (a
400G port carries 50 GB/s each way), each with a capacity and a latency.

`route` turns (source GPU, destination GPU) pairs into the links each flow
uses, vectorized over all flows: between switches it walks shortest paths hop
by hop, choosing among equal-cost next hops by a hash of the flow (as switch
ECMP does), by a seeded random draw, or spraying evenly over all of them
(per-packet spraying / adaptive routing at its ideal). `fabric_graph` gives
the same links as a typed networkx graph, NVLink included.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from hwmodels.names import ECMP_MODES
from hwmodels.specs import NodeSpec, SwitchSpec
from hwmodels.topology import TABLE, TopologySpec, build_switch_graph, leaf_ports, topology_counts

# A networkx switch graph costs about 1 KB per switch and link: 500,000 of them is about 0.5 GB.
MAX_GRAPH_ELEMENTS = 500_000


@dataclass(frozen=True, eq=False)
class Fabric:
    """A topology with GPUs attached: directed link arrays and the maps routing needs."""

    spec: TopologySpec
    node: NodeSpec
    gpus: int
    switch_latency_s: float
    switch_names: list  # switch graph node of each switch index
    gpu_switch: np.ndarray  # (gpus,) switch index of each GPU's NIC
    capacity_bytes_per_s: np.ndarray  # (links,) switch pairs both ways, then NIC up, NIC down, NVLink up, down
    neighbors: np.ndarray  # (n_sw, max_degree) switch neighbours, -1 padded
    switch_link_key: np.ndarray  # sorted u * n_sw + v over switch-to-switch links
    switch_link_id: np.ndarray  # link index of each key

    @property
    def n_switches(self) -> int:
        return len(self.switch_names)

    def nic_up(self, gpu: np.ndarray) -> np.ndarray:
        """Link index GPU -> its NIC's switch (links are: switch pairs both ways, NIC up, NIC down, NVLink up, down)."""
        return len(self.switch_link_key) + gpu

    def nic_down(self, gpu: np.ndarray) -> np.ndarray:
        return len(self.switch_link_key) + self.gpus + gpu

    def nvlink_up(self, gpu: np.ndarray) -> np.ndarray:
        """Link index GPU -> its node's NVSwitch."""
        return len(self.switch_link_key) + 2 * self.gpus + gpu

    def nvlink_down(self, gpu: np.ndarray) -> np.ndarray:
        return len(self.switch_link_key) + 3 * self.gpus + gpu


def endpoint_of_gpu(spec: TopologySpec, gpus_per_node: int, gpu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(plane, endpoint index within the plane) of each GPU's NIC.

    multi-plane: local GPU r of a node is in plane r % planes. multi-rail: rail r
    of every node on the rail's own leaves. Otherwise GPUs fill leaves in order.
    """
    node, local = np.divmod(gpu, gpus_per_node)
    if TABLE[spec.kind].planes == "split":
        per_node = gpus_per_node // spec.planes
        return local % spec.planes, node * per_node + local // spec.planes
    return np.zeros_like(gpu), gpu


def _gpu_switch(spec: TopologySpec, graph: nx.Graph, names: list, gpus_per_node: int, gpus: int) -> np.ndarray:
    index = {v: i for i, v in enumerate(names)}
    gpu = np.arange(gpus)
    plane, ep = endpoint_of_gpu(spec, gpus_per_node, gpu)
    if TABLE[spec.kind].planes == "rails":
        down, _ = leaf_ports(spec.radix, spec.oversubscription)
        leaves = sum(1 for v in names if v[0] == "leaf")
        node, rail = np.divmod(gpu, gpus_per_node)
        per_rail = leaves // spec.planes
        if per_rail == 0:  # fewer leaves than rails: rails share leaves
            leaf = (rail % spec.planes) * leaves // spec.planes
        else:
            leaf = (rail % spec.planes) * per_rail + (node // down) % per_rail
        return np.array([index[("leaf", 0, int(i))] for i in leaf])
    attach = [v for v in names if graph.nodes[v].get("endpoints", 0) > 0]
    starts = {}  # plane -> (cumulative endpoints, switch ids)
    for p in set(plane.tolist()):
        sws = [v for v in attach if graph.nodes[v]["plane"] == p]
        starts[p] = (np.cumsum([graph.nodes[v]["endpoints"] for v in sws]), np.array([index[v] for v in sws]))
    out = np.empty(gpus, dtype=np.int64)
    for p, (cum, ids) in starts.items():
        mask = plane == p
        out[mask] = ids[np.searchsorted(cum, ep[mask], side="right")]
    return out


def build_fabric(spec: TopologySpec, node: NodeSpec, switch: SwitchSpec, gpus: int | None = None) -> Fabric:
    """The fabric of `spec` with `gpus` GPUs (default: one per endpoint) in nodes of `node`.

    Capacities per direction: NIC links at the NIC's effective rate, NVLink at the
    node's achieved scale-up rate, switch links at the port rate times the same
    efficiency as the NIC (parallel links add up).
    """
    gpus = spec.endpoints if gpus is None else gpus
    g = node.gpus_per_node
    if gpus > spec.endpoints or gpus % g:
        raise ValueError(f"gpus={gpus} must be a multiple of {g} GPUs per node and at most {spec.endpoints} endpoints")
    if TABLE[spec.kind].planes == "split" and g % spec.planes:
        raise ValueError(f"planes={spec.planes} must divide the {g} NICs of a {node.name} node")
    counts = topology_counts(spec)
    if counts.switches + counts.links > MAX_GRAPH_ELEMENTS:
        raise ValueError(
            f"a {spec.kind} of {counts.switches:,} switches and {counts.links:,} links is beyond the flow model's "
            f"limit of {MAX_GRAPH_ELEMENTS:,} switches and links together; use fewer GPUs or a larger radix"
        )
    graph = build_switch_graph(spec)
    names = sorted(graph.nodes)
    n_sw = len(names)
    index = {v: i for i, v in enumerate(names)}
    gpu_sw = _gpu_switch(spec, graph, names, g, gpus)
    eff = node.nic.effective_bw_bytes_per_s / node.nic.bw_bytes_per_s
    u = np.array([index[a] for a, b in graph.edges], dtype=np.int64)
    v = np.array([index[b] for a, b in graph.edges], dtype=np.int64)
    mult = np.array([d["links"] for *_, d in graph.edges(data=True)], dtype=float)
    sw_bw = mult * switch.port_bw_bytes_per_s * eff
    nic_bw = np.full(gpus, node.scaleout_achieved_bw_bytes_per_s_per_gpu)
    nvl_bw = np.full(gpus, node.scaleup_achieved_bw_bytes_per_s)
    cap = np.concatenate([sw_bw, sw_bw, nic_bw, nic_bw, nvl_bw, nvl_bw])
    keys = np.concatenate([u * n_sw + v, v * n_sw + u])
    order = np.argsort(keys)
    degree = np.bincount(np.concatenate([u, v]), minlength=n_sw)
    neighbors = np.full((n_sw, max(int(degree.max(initial=0)), 1)), -1, dtype=np.int64)
    for i, name in enumerate(names):
        nbrs = [index[w] for w in graph.neighbors(name)]
        neighbors[i, : len(nbrs)] = nbrs
    return Fabric(spec, node, gpus, switch.latency_s, names, gpu_sw, cap, neighbors, keys[order], order)


def fabric_graph(fabric: Fabric) -> nx.DiGraph:
    """The fabric as a typed networkx DiGraph, one edge per directed link, for graph analyses (paths, cuts).

    Nodes: ("gpu", i) of type "gpu" with its `node` and `local_rank`; ("nvswitch", n) of type "nvswitch"; each
    switch under its switch-graph name, of type "switch" with `tier` and `plane`. Edges: `kind` ("nic",
    "nvlink" or "switch"), the fabric's `link` index and its `bw_bytes_per_s`, and `latency_s` split so that a
    path sums to what `simulator.network.collectives.route_transfers` charges: half the NIC's (or NVLink's)
    latency at each end, plus one switch latency on every link into a switch.
    """
    g, gpus, n_sw, names = fabric.node.gpus_per_node, fabric.gpus, fabric.n_switches, fabric.switch_names
    graph = nx.DiGraph()
    graph.add_nodes_from((("gpu", i), {"type": "gpu", "node": i // g, "local_rank": i % g}) for i in range(gpus))
    graph.add_nodes_from((("nvswitch", n), {"type": "nvswitch", "node": n}) for n in range(gpus // g))
    switches = build_switch_graph(fabric.spec).nodes
    graph.add_nodes_from(
        (v, {"type": "switch", "tier": switches[v]["tier"], "plane": switches[v]["plane"]}) for v in names
    )
    gpu = np.arange(gpus)
    gpu_names, nvswitch = [("gpu", i) for i in range(gpus)], [("nvswitch", i // g) for i in range(gpus)]
    nic_sw = [names[s] for s in fabric.gpu_switch]
    nic_s, nvl_s, sw_s = fabric.node.nic.latency_s / 2, fabric.node.scaleup_latency_s / 2, fabric.switch_latency_s
    key = fabric.switch_link_key
    links = [
        ([names[u] for u in key // n_sw], [names[v] for v in key % n_sw], "switch", fabric.switch_link_id, sw_s),
        (gpu_names, nic_sw, "nic", fabric.nic_up(gpu), nic_s + sw_s),
        (nic_sw, gpu_names, "nic", fabric.nic_down(gpu), nic_s),
        (gpu_names, nvswitch, "nvlink", fabric.nvlink_up(gpu), nvl_s),
        (nvswitch, gpu_names, "nvlink", fabric.nvlink_down(gpu), nvl_s),
    ]
    cap = fabric.capacity_bytes_per_s
    for us, vs, kind, ids, latency_s in links:
        attrs = ({"kind": kind, "link": int(i), "bw_bytes_per_s": float(cap[i]), "latency_s": latency_s} for i in ids)
        graph.add_edges_from(zip(us, vs, attrs, strict=True))
    return graph


def transfer_links(
    fabric: Fabric,
    src: np.ndarray,
    dst: np.ndarray,
    ecmp: str = "hash",
    seed: int = 0,
    remote_before: int = 0,
    cross_planes: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(flow, link, weight) of every link each GPU-to-GPU transfer crosses (NVLink up and down inside a node;
    NIC up, the switch path and NIC down across nodes), and each transfer's switch-to-switch hops. The ECMP
    hash numbers the transfers that cross nodes in order, from `remote_before` (how many crossed before these
    in the same set): a set routed in parts takes the same paths as routed whole. With `cross_planes`, a
    transfer between planes of a multi-plane fabric is forwarded over NVLink (below); without, it has no path."""
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    g, n = fabric.node.gpus_per_node, len(src)
    local = src // g == dst // g
    idx = np.arange(n)
    # Multi-plane: a transfer to a NIC of another plane first crosses NVLink to the GPU of its own node in the
    # destination's plane (the same local index), which sends it (ISCA 2025 section 5: planes are joined only
    # by intra-node forwarding). Aligned transfers, all of V3's, never take this hop.
    nic_src = src.copy()
    if cross_planes and TABLE[fabric.spec.kind].planes == "split" and fabric.spec.planes > 1:
        planes = fabric.spec.planes
        cross = ~local & ((src % g) % planes != (dst % g) % planes)
        nic_src[cross] = (src[cross] // g) * g + dst[cross] % g
    else:
        cross = np.zeros(n, dtype=bool)
    f_parts = [idx[local], idx[local], idx[cross], idx[cross], idx[~local], idx[~local]]
    l_parts = [fabric.nvlink_up(src[local]), fabric.nvlink_down(dst[local])]
    l_parts += [fabric.nvlink_up(src[cross]), fabric.nvlink_down(nic_src[cross])]
    l_parts += [fabric.nic_up(nic_src[~local]), fabric.nic_down(dst[~local])]
    w_parts = [np.ones(len(p)) for p in f_parts]
    remote = idx[~local]
    pf, pl, pw = switch_paths(
        fabric, fabric.gpu_switch[nic_src[remote]], fabric.gpu_switch[dst[remote]], ecmp, seed, remote_before
    )
    f_parts.append(remote[pf])
    l_parts.append(pl)
    w_parts.append(pw)
    hops = np.bincount(remote[pf], weights=pw, minlength=n)
    return np.concatenate(f_parts), np.concatenate(l_parts), np.concatenate(w_parts), hops


def link_loads(
    fabric: Fabric, flow: np.ndarray, link: np.ndarray, weight: np.ndarray, size_bytes: np.ndarray
) -> np.ndarray:
    """(links,) bytes every link carries when each transfer takes its routed links (`transfer_links`' output;
    sprayed paths in shares). Over the capacities, its maximum is the fast network model's time."""
    size = np.asarray(size_bytes, float)
    return np.bincount(link, weights=weight * size[flow], minlength=len(fabric.capacity_bytes_per_s))


def _mix(*parts: np.ndarray | int) -> np.ndarray:
    """A 64-bit hash of integer arrays (splitmix64 finalizer), the stand-in for a switch's ECMP hash."""
    h = np.zeros(np.broadcast(*parts).shape, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            h = (h ^ np.asarray(p, dtype=np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(31)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(29)
    return h


def _next_hops(fabric: Fabric, dist: np.ndarray, target: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each (target, switch) pair asked: its neighbours one hop closer to the target, first in the row (in
    row order), and their count. Only the pairs flows stand on are built, never every target x switch (at
    16,384 GPUs that table has hundreds of millions of entries)."""
    nbrs = fabric.neighbors[cur]
    closer = (nbrs >= 0) & (dist[target[:, None], np.maximum(nbrs, 0)] == (dist[target, cur] - 1)[:, None])
    order = np.argsort(~closer, axis=1, kind="stable")
    return np.take_along_axis(nbrs, order, axis=1), closer.sum(axis=1)


def switch_paths(
    fabric: Fabric,
    src_sw: np.ndarray,
    dst_sw: np.ndarray,
    mode: str = "hash",
    seed: int = 0,
    first_hash: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flow, link, weight) triples of shortest switch paths from src_sw[f] to dst_sw[f]; flow f is number
    first_hash + f in the ECMP hash."""
    if mode not in ECMP_MODES:
        raise ValueError(f"unknown ECMP mode {mode!r}; use one of: {', '.join(ECMP_MODES)}")
    targets, dst_pos = np.unique(dst_sw, return_inverse=True)
    rows = np.repeat(np.arange(fabric.n_switches), fabric.neighbors.shape[1])
    cols = fabric.neighbors.ravel()
    keep = cols >= 0
    shape = (fabric.n_switches, fabric.n_switches)
    adjacency = csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=shape)
    dist = shortest_path(adjacency, unweighted=True, indices=targets)  # (targets, n_sw)
    if np.isinf(dist[dst_pos, src_sw]).any():
        raise ValueError("some flows have no switch path (different planes need NVLink forwarding)")
    rng = np.random.default_rng(seed)
    flow = np.arange(len(src_sw))
    cur, weight = src_sw.astype(np.int64), np.ones(len(src_sw))
    out_f, out_l, out_w = [], [], []
    hop = 0
    while True:
        moving = cur != dst_sw[flow]
        flow, cur, weight = flow[moving], cur[moving], weight[moving]
        if not len(flow):
            break
        pairs, pair = np.unique(dst_pos[flow] * fabric.n_switches + cur, return_inverse=True)
        cand, count = _next_hops(fabric, dist, pairs // fabric.n_switches, pairs % fabric.n_switches)
        pair = pair.ravel()
        n_next = count[pair]
        if mode == "spray":  # every closer neighbour, a share each
            r = np.repeat(np.arange(len(flow)), n_next)
            c = np.arange(len(r)) - np.repeat(np.cumsum(n_next) - n_next, n_next)
            flow, cur, weight = flow[r], cur[r], weight[r] / n_next[r]
            nxt = cand[pair[r], c]
        else:
            if mode == "hash":
                draw = _mix(flow + first_hash, hop, seed)
            else:
                draw = rng.integers(0, 2**62, len(flow)).astype(np.uint64)
            nxt = cand[pair, (draw % n_next.astype(np.uint64)).astype(np.int64)]
        link = fabric.switch_link_id[np.searchsorted(fabric.switch_link_key, cur * fabric.n_switches + nxt)]
        out_f.append(flow)
        out_l.append(link)
        out_w.append(weight)
        cur, hop = nxt, hop + 1
    if not out_f:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(out_f), np.concatenate(out_l), np.concatenate(out_w)

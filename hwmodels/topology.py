"""Cluster topologies: the design of each kind in closed form, and its networkx graph.

A `TopologySpec` names a kind and its size (switch radix, endpoints, planes,
oversubscription). `design_topology` fills in what the user left out (the
largest instance the radix allows) and checks that the size is buildable.
`topology_counts` gives the switch and link counts in closed form (the
numbers of the ISCA 2025 comparison table, in microseconds), and
`build_switch_graph` builds the real graph, which the tests hold to those
counts and which routing (`hwmodels/routing.py`) runs on.

An endpoint is one NIC port (one GPU in the V3 cluster, where every GPU has
its own 400G NIC). Hops count switch-to-switch links between the switches of
two endpoints (the Slim Fly paper's router diameter).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwmodels.names import TOPOLOGY_KINDS as KINDS
from hwmodels.slimfly import mms_edges, slim_fly_q_params

if TYPE_CHECKING:  # networkx is imported where a graph is built: sizing, costs and metrics need none
    import networkx as nx


@dataclass(frozen=True, slots=True)
class TopologyKind:
    """What distinguishes one kind of network: its family (whose closed forms and graph builder it uses), how
    planes work in it, whether leaves can be tapered, and where the design comes from. One row of `TABLE`."""

    name: str
    family: str  # a key of FAMILIES: "fat-tree-2", "fat-tree-3", "slim-fly" or "dragonfly"
    planes: str = "none"  # "none"; "split": each plane a whole fabric for endpoints / planes; "rails": one fabric
    oversubscription: bool = True  # leaves (edge switches) may have more down than up ports
    tapered_leaf_per_plane: bool = False  # a leaf holds one NIC of each of its nodes (planes or rails)
    source: str = ""

    @property
    def tree(self) -> bool:
        """Switches in tiers (leaf, spine, ...), as opposed to a flat graph of routers."""
        return self.family in ("fat-tree-2", "fat-tree-3")

    @property
    def default_planes(self) -> int:
        return 8 if self.planes != "none" else 1  # V3's 8 NICs per node


TABLE = {
    k.name: k
    for k in (
        TopologyKind("fat-tree-2", "fat-tree-2", source="two-layer fat tree (V3 report, section 3.1)"),
        TopologyKind("multi-plane", "fat-tree-2", "split", tapered_leaf_per_plane=True,
                     source="multi-plane two-layer fat tree, NIC i of every node in plane i (ISCA 2025)"),
        TopologyKind("multi-rail", "fat-tree-2", "rails", tapered_leaf_per_plane=True,
                     source="rail-optimized two-layer fat tree sharing one set of spines"),
        TopologyKind("fat-tree-3", "fat-tree-3", source="three-layer fat tree, k pods (Al-Fares et al. 2008)"),
        TopologyKind("slim-fly", "slim-fly", oversubscription=False, source="MMS graph (Besta and Hoefler 2014)"),
        TopologyKind("dragonfly", "dragonfly", oversubscription=False, source="balanced Dragonfly (Kim et al. 2008)"),
    )
}  # fmt: skip
if tuple(TABLE) != KINDS:
    raise RuntimeError("hwmodels/names.py must list the kinds TABLE holds, in its order")


def topology_kind(name: str) -> TopologyKind:
    """The kind called `name`; an unknown name is a ValueError listing the known ones."""
    if name not in TABLE:
        raise ValueError(f"unknown topology {name!r}; use one of: {', '.join(KINDS)}")
    return TABLE[name]


@dataclass(frozen=True, slots=True)
class TopologySpec:
    """One network: its kind, switch radix, endpoints (NIC ports), planes and oversubscription.

    For `multi-plane`, `planes` independent two-layer fat trees each hold
    endpoints / planes NICs (NIC i of every node in plane i). For
    `multi-rail`, `planes` is the number of rails (NICs per node) sharing one
    set of spines. `oversubscription` R means a leaf (an edge switch in
    `fat-tree-3`) has R down ports per up port.
    """

    kind: str
    radix: int
    endpoints: int
    planes: int = 1
    oversubscription: float = 1.0

    def __post_init__(self) -> None:
        kind = topology_kind(self.kind)
        if self.radix < 4 or self.radix % 2:
            raise ValueError(f"radix={self.radix} must be an even number of ports >= 4")
        if self.endpoints < 2:
            raise ValueError(f"endpoints={self.endpoints} must be at least 2")
        if self.planes < 1 or self.endpoints % self.planes:
            raise ValueError(f"planes={self.planes} must be >= 1 and divide endpoints={self.endpoints}")
        if self.oversubscription < 1:
            raise ValueError(f"oversubscription={self.oversubscription} must be >= 1 (1 = full bisection)")
        if self.oversubscription != 1 and not kind.oversubscription:
            raise ValueError(f"{self.kind} takes no --oversubscription; its concentration follows the radix")
        if self.planes != 1 and kind.planes == "none":
            raise ValueError(f"{self.kind} has one plane; --planes is for multi-plane and multi-rail")
        capacity = max_endpoints(self.kind, self.radix, self.planes, self.oversubscription)
        if self.endpoints > capacity:
            raise ValueError(
                f"{self.kind} with radix {self.radix} holds at most {capacity} endpoints, not {self.endpoints}; "
                "use a larger --radix or fewer --endpoints"
            )

    @property
    def endpoints_per_plane(self) -> int:
        return self.endpoints // self.planes if TABLE[self.kind].planes == "split" else self.endpoints

    @property
    def fabric_planes(self) -> int:
        """Independent fabrics: the planes of a multi-plane network, else 1."""
        return self.planes if TABLE[self.kind].planes == "split" else 1


@dataclass(frozen=True, slots=True)
class TopologyCounts:
    """Switches and links of a topology (closed form; `build_switch_graph` has the same numbers)."""

    endpoints: int
    switches: int
    links: int  # switch-to-switch
    switches_by_tier: dict[str, int]
    diameter_hops: int
    bisection_links: float  # switch-to-switch (or endpoint) links across the worst even cut
    ecmp_paths: int  # equal-cost shortest paths between two endpoints at the diameter (fewest over such pairs)


def leaf_ports(radix: int, oversubscription: float) -> tuple[int, int]:
    """(down, up) ports of a leaf with `oversubscription` down ports per up port."""
    up = max(1, math.floor(radix / (1 + oversubscription)))
    return radix - up, up


def dragonfly_params(radix: int) -> tuple[int, int, int]:
    """(p, a, h) of the balanced Dragonfly (Kim et al. 2008): a = 2p = 2h, p + (a - 1) + h <= radix."""
    p = (radix + 1) // 4
    return p, 2 * p, p


def dragonfly_global_pairs(groups: int, ports_per_group: int) -> list[tuple[int, int]]:
    """Global links as (group, group) pairs: every pair of groups `ports // (groups - 1)` times, then each group's
    leftover ports to its neighbours s = 1, 2, ... around the ring of groups (all ports used but one when odd)."""
    if groups < 2:
        return []
    per_pair, extra = divmod(ports_per_group, groups - 1)
    pairs = [(x, y) for x in range(groups) for y in range(x + 1, groups)] * per_pair
    pairs += [(x, (x + s) % groups) for s in range(1, extra // 2 + 1) for x in range(groups)]
    return pairs


def max_endpoints(kind: str, radix: int, planes: int = 1, oversubscription: float = 1.0) -> int:
    """The most endpoints the kind can hold at this radix (planes and oversubscription included)."""
    record = topology_kind(kind)
    per_fabric = FAMILIES[record.family].capacity(radix, oversubscription)
    return per_fabric * (planes if record.planes == "split" else 1)


def _fat_tree_2_capacity(k: int, oversubscription: float) -> int:
    down, _ = leaf_ports(k, oversubscription)
    return down * k  # k leaves, each up port on a distinct spine port


def _fat_tree_3_capacity(k: int, oversubscription: float) -> int:
    down, _ = leaf_ports(k, oversubscription)
    return k * (k // 2) * down  # k pods of k/2 edge switches


def _slim_fly_capacity(k: int, oversubscription: float) -> int:
    q, _, _, p = slim_fly_q_params(k)
    return 2 * q * q * p


def _dragonfly_capacity(k: int, oversubscription: float) -> int:
    p, a, h = dragonfly_params(k)
    return (a * h + 1) * a * p


def design_topology(
    kind: str, radix: int = 64, endpoints: int | None = None, planes: int | None = None, oversubscription: float = 1.0
) -> TopologySpec:
    """A TopologySpec with the defaults filled in: with no `endpoints`, the largest instance the radix allows
    (for `multi-plane`, 8 planes; for `multi-rail`, 8 rails)."""
    if planes is None:
        planes = topology_kind(kind).default_planes
    if endpoints is None:
        TopologySpec(kind, radix, planes * 2, planes, oversubscription)  # validates kind, radix, planes
        endpoints = max_endpoints(kind, radix, planes, oversubscription)
    return TopologySpec(kind, radix, endpoints, planes, oversubscription)


def _fat_tree_2_plane(n: int, radix: int, oversubscription: float) -> tuple[int, int, int]:
    """(leaves, spines, links) of one two-layer fat tree plane holding n endpoints."""
    down, up = leaf_ports(radix, oversubscription)
    leaves = math.ceil(n / down)
    if leaves == 1:
        return 1, 0, 0
    links = leaves * up
    return leaves, math.ceil(links / radix), links


def topology_counts(spec: TopologySpec) -> TopologyCounts:
    """Switches, links, diameter and bisection of `spec`, in closed form."""
    return FAMILIES[TABLE[spec.kind].family].counts(spec)


def _fat_tree_2_counts(spec: TopologySpec) -> TopologyCounts:
    k, n, planes = spec.radix, spec.endpoints, spec.fabric_planes
    leaves, spines, links = _fat_tree_2_plane(spec.endpoints_per_plane, k, spec.oversubscription)
    tiers = {"leaf": leaves * planes, "spine": spines * planes}
    cut = n / 2 / spec.oversubscription if leaves > 1 else n / 2
    ecmp = min(leaf_ports(k, spec.oversubscription)[1], spines) if leaves > 1 else 1
    return TopologyCounts(n, sum(tiers.values()), links * planes, tiers, 2 if leaves > 1 else 0, cut, ecmp)


def _fat_tree_3_counts(spec: TopologySpec) -> TopologyCounts:
    k, n = spec.radix, spec.endpoints
    down, up = leaf_ports(k, spec.oversubscription)
    edges = math.ceil(n / down)
    pods = math.ceil(edges / (k // 2))
    aggs = pods * (k // 2)
    cores = math.ceil(aggs * (k // 2) / k)
    tiers = {"edge": edges, "aggregation": aggs, "core": cores}
    links = edges * up + aggs * (k // 2)
    ecmp = min(up, k // 2) * min(k // 2, cores)
    return TopologyCounts(n, edges + aggs + cores, links, tiers, 4, n / 2 / spec.oversubscription, ecmp)


def _slim_fly_counts(spec: TopologySpec) -> TopologyCounts:
    n = spec.endpoints
    q, _, kp, _ = slim_fly_q_params(spec.radix, n)
    routers = 2 * q * q
    # cut between the MMS graph's two subgraphs: q^2 routers each with q cross edges (an upper bound on the
    # worst even cut, which the Slim Fly paper estimates close to it)
    return TopologyCounts(n, routers, routers * kp // 2, {"router": routers}, 2, float(q**3), 1)


def _dragonfly_counts(spec: TopologySpec) -> TopologyCounts:
    n = spec.endpoints
    p, a, h = dragonfly_params(spec.radix)
    g = math.ceil(n / (a * p))
    per_pair, extra = divmod(a * h, g - 1) if g > 1 else (0, 0)
    global_links = per_pair * g * (g - 1) // 2 + g * (extra // 2)
    links = g * a * (a - 1) // 2 + global_links
    # groups split in half; global links spread evenly over group pairs
    cut = global_links * (g // 2) * (g - g // 2) / (g * (g - 1) / 2) if g > 1 else a * a / 4
    return TopologyCounts(n, g * a, links, {"router": g * a}, 3 if g > 1 else 1, cut, max(per_pair, 1))


def build_switch_graph(spec: TopologySpec) -> nx.Graph:
    """The switch graph: nodes are switches with `tier`, `plane` and `endpoints` (attached NIC ports);
    edges carry `links` (parallel switch-to-switch links)."""
    return FAMILIES[TABLE[spec.kind].family].build(spec)


def _attach(graph: nx.Graph, switches: list, n: int, per_switch: int) -> None:
    """Give the switches `per_switch` endpoints each, in order, until n are placed."""
    for i, sw in enumerate(switches):
        graph.nodes[sw]["endpoints"] = max(0, min(per_switch, n - i * per_switch))


def _add_link(graph: nx.Graph, u, v, links: int = 1) -> None:
    if graph.has_edge(u, v):
        graph.edges[u, v]["links"] += links
    else:
        graph.add_edge(u, v, links=links)


def _build_fat_tree_2(spec: TopologySpec) -> nx.Graph:
    import networkx as nx

    graph = nx.Graph()
    planes = spec.fabric_planes
    down, up = leaf_ports(spec.radix, spec.oversubscription)
    leaves, spines, _ = _fat_tree_2_plane(spec.endpoints_per_plane, spec.radix, spec.oversubscription)
    for plane in range(planes):
        leaf_ids = [("leaf", plane, i) for i in range(leaves)]
        graph.add_nodes_from(leaf_ids, tier="leaf", plane=plane)
        graph.add_nodes_from((("spine", plane, j) for j in range(spines)), tier="spine", plane=plane, endpoints=0)
        _attach(graph, leaf_ids, spec.endpoints_per_plane, down)
        for i in range(leaves if spines else 0):  # up port u of every leaf goes to spine port in round robin
            for u in range(up):
                _add_link(graph, ("leaf", plane, i), ("spine", plane, (i * up + u) % spines))
    return graph


def _build_fat_tree_3(spec: TopologySpec) -> nx.Graph:
    import networkx as nx

    graph = nx.Graph()
    k, half = spec.radix, spec.radix // 2
    counts = topology_counts(spec)
    down, up = leaf_ports(k, spec.oversubscription)
    edges = [("edge", 0, i) for i in range(counts.switches_by_tier["edge"])]
    graph.add_nodes_from(edges, tier="edge", plane=0)
    graph.add_nodes_from((("agg", 0, i) for i in range(counts.switches_by_tier["aggregation"])), tier="aggregation")
    graph.add_nodes_from((("core", 0, i) for i in range(counts.switches_by_tier["core"])), tier="core")
    nx.set_node_attributes(graph, 0, "plane")
    nx.set_node_attributes(graph, 0, "endpoints")
    _attach(graph, edges, spec.endpoints, down)
    for e in range(len(edges)):
        pod = e // half
        for u in range(up):
            _add_link(graph, ("edge", 0, e), ("agg", 0, pod * half + u % half))
    cores = counts.switches_by_tier["core"]
    for a in range(counts.switches_by_tier["aggregation"]):
        for u in range(half):  # uplinks round robin over the cores: agg j of every pod reaches core group j
            _add_link(graph, ("agg", 0, a), ("core", 0, (a * half + u) % cores))
    return graph


def _build_slim_fly(spec: TopologySpec) -> nx.Graph:
    import networkx as nx

    q, _, _, p = slim_fly_q_params(spec.radix, spec.endpoints)
    graph = nx.Graph()
    graph.add_nodes_from((("router", 0, i) for i in range(2 * q * q)), tier="router", plane=0)
    for u, v in mms_edges(q):
        graph.add_edge(("router", 0, u), ("router", 0, v), links=1)
    _attach(graph, sorted(graph.nodes), spec.endpoints, p)
    return graph


def _build_dragonfly(spec: TopologySpec) -> nx.Graph:
    import networkx as nx

    p, a, h = dragonfly_params(spec.radix)
    g = math.ceil(spec.endpoints / (a * p))
    graph = nx.Graph()
    routers = [("router", 0, i) for i in range(g * a)]
    graph.add_nodes_from(routers, tier="router", plane=0)
    _attach(graph, routers, spec.endpoints, p)
    for grp in range(g):
        for i in range(a):
            for j in range(i + 1, a):
                _add_link(graph, routers[grp * a + i], routers[grp * a + j])
    used = [0] * g  # global ports used per group; port t of a group sits on router t // h
    for x, y in dragonfly_global_pairs(g, a * h):
        _add_link(graph, routers[x * a + used[x] // h], routers[y * a + used[y] // h])
        used[x] += 1
        used[y] += 1
    return graph


def graph_hop_stats(graph: nx.Graph) -> tuple[int, float]:
    """(diameter, average) switch-to-switch hops between endpoints of the graph, over ordered pairs of distinct
    endpoints in one connected plane (scipy's breadth-first search from every switch with endpoints)."""
    import networkx as nx
    from scipy.sparse.csgraph import shortest_path  # scipy only for this analysis, not for building or routing

    nodes = list(graph.nodes)
    ends = np.array([graph.nodes[v].get("endpoints", 0) for v in nodes], dtype=float)
    adjacency = nx.to_scipy_sparse_array(graph, nodelist=nodes, weight=None, format="csr")
    sources = np.flatnonzero(ends)
    dist = shortest_path(adjacency, unweighted=True, indices=sources)[:, sources]
    reachable = np.isfinite(dist)
    weights = np.outer(ends[sources], ends[sources]) - np.diag(ends[sources])  # ordered pairs, self excluded
    weights = np.where(reachable, weights, 0.0)
    hops = np.where(reachable, dist, 0.0)
    diameter = int(hops[weights > 0].max()) if (weights > 0).any() else 0
    return diameter, float((hops * weights).sum() / weights.sum())


@dataclass(frozen=True, slots=True)
class Family:
    """How one family of networks is sized, counted and built (one row of `FAMILIES`, named by kinds)."""

    capacity: Callable[[int, float], int]  # (radix, oversubscription) -> endpoints of one fabric
    counts: Callable[[TopologySpec], TopologyCounts]
    build: Callable[[TopologySpec], nx.Graph]


FAMILIES = {
    "fat-tree-2": Family(_fat_tree_2_capacity, _fat_tree_2_counts, _build_fat_tree_2),
    "fat-tree-3": Family(_fat_tree_3_capacity, _fat_tree_3_counts, _build_fat_tree_3),
    "slim-fly": Family(_slim_fly_capacity, _slim_fly_counts, _build_slim_fly),
    "dragonfly": Family(_dragonfly_capacity, _dragonfly_counts, _build_dragonfly),
}
if {k.family for k in TABLE.values()} - FAMILIES.keys():
    raise RuntimeError("every topology kind's family must be a row of FAMILIES")

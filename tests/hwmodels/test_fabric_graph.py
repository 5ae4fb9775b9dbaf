"""The fabric as a networkx graph: one edge per link with the fabric's capacity, and paths through NVSwitch,
leaves and spines with the hop counts and latencies of the ISCA 2025 latency table."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import numpy as np
import pytest

from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric, fabric_graph, switch_paths
from hwmodels.topology import design_topology

NODE, SWITCH = load_node("h800-ib"), load_switch("ib-ndr-64")


def fabric(kind, gpus, radix=16, planes=None):
    return build_fabric(design_topology(kind, radix, gpus, planes), NODE, SWITCH, gpus)


@pytest.mark.parametrize("kind", ["fat-tree-2", "multi-plane", "multi-rail", "fat-tree-3", "dragonfly"])
def test_one_edge_per_link_with_its_capacity(kind):
    fab = fabric(kind, 128)
    assert len(fab.switch_link_key) > 0
    graph = fabric_graph(fab)
    links = len(fab.capacity_bytes_per_s)
    assert graph.number_of_edges() == links
    assert sorted(d["link"] for *_, d in graph.edges(data=True)) == list(range(links))
    for *_, d in graph.edges(data=True):
        assert d["bw_bytes_per_s"] == fab.capacity_bytes_per_s[d["link"]]
    kinds = Counter(d["kind"] for *_, d in graph.edges(data=True))
    assert kinds == {"nic": 2 * 128, "nvlink": 2 * 128, "switch": len(fab.switch_link_key)}
    types = Counter(t for _, t in graph.nodes(data="type"))
    assert types == {"gpu": 128, "nvswitch": 16, "switch": fab.n_switches}
    for i in range(128):  # each GPU's four links, as the fabric numbers them
        gpu, nvswitch, nic = ("gpu", i), ("nvswitch", i // 8), fab.switch_names[fab.gpu_switch[i]]
        ends = [(gpu, nic), (nic, gpu), (gpu, nvswitch), (nvswitch, gpu)]
        ids = [fab.nic_up(i), fab.nic_down(i), fab.nvlink_up(i), fab.nvlink_down(i)]
        assert [graph.edges[e]["link"] for e in ends] == ids


def test_gpus_of_a_node_meet_through_their_nvswitch():
    """Two hops through the node's NVSwitch; on a multi-plane fabric their NICs are in different planes, so
    that is the only two-hop path (under a shared leaf, GPU-leaf-GPU is another)."""
    via_nvswitch = [("gpu", 8), ("nvswitch", 1), ("gpu", 13)]
    graph = fabric_graph(fabric("multi-plane", 64))
    assert list(nx.all_shortest_paths(graph, ("gpu", 8), ("gpu", 13))) == [via_nvswitch]
    assert nx.path_weight(graph, via_nvswitch, "latency_s") == pytest.approx(NODE.scaleup_latency_s)
    assert graph.nodes[("gpu", 13)] == {"type": "gpu", "node": 1, "local_rank": 5}
    assert graph.nodes[("nvswitch", 1)] == {"type": "nvswitch", "node": 1}
    graph = fabric_graph(fabric("fat-tree-2", 64))
    assert via_nvswitch in nx.all_shortest_paths(graph, ("gpu", 8), ("gpu", 13))


@pytest.mark.parametrize(
    ("src", "dst", "tiers", "latency_us"), [(0, 8, ["leaf"], 2.8), (0, 63, ["leaf", "spine", "leaf"], 3.7)]
)
def test_fat_tree_paths_cross_leaves_through_a_spine(src, dst, tiers, latency_us):
    """Radix 32: 16 GPUs (two nodes) per leaf, 4 leaves. ISCA 2025's IB latency table: 2.8 us under one leaf,
    3.7 us across leaves (the NIC and switch latencies in the catalog are derived from these two figures)."""
    fab = fabric("fat-tree-2", 64, radix=32)
    graph = fabric_graph(fab)
    path = nx.shortest_path(graph, ("gpu", src), ("gpu", dst))
    assert [graph.nodes[v].get("tier") for v in path[1:-1]] == tiers
    switch_hops = sum(graph.edges[u, v]["kind"] == "switch" for u, v in nx.utils.pairwise(path))
    assert switch_hops == len(tiers) - 1
    assert nx.path_weight(graph, path, "latency_s") == pytest.approx(latency_us * 1e-6)
    _, links, _ = switch_paths(fab, fab.gpu_switch[[src]], fab.gpu_switch[[dst]])
    by_link = {d["link"]: (u, v) for u, v, d in graph.edges(data=True)}
    routed = [by_link[i][0] for i in links] + [path[-2]]  # the switches routing walks, by the graph's link ids
    assert routed[0] == path[1] and all(graph.has_edge(u, v) for u, v in nx.utils.pairwise(routed))
    assert len(routed) == len(tiers)


def test_multi_plane_gpus_have_one_nic_in_their_plane():
    planes = 4
    graph = fabric_graph(fabric("multi-plane", 128, planes=planes))
    for v, d in graph.nodes(data=True):
        if d["type"] != "gpu":
            continue
        up = [w for w in graph.successors(v) if graph.edges[v, w]["kind"] == "nic"]
        down = [w for w in graph.predecessors(v) if graph.edges[w, v]["kind"] == "nic"]
        assert len(up) == 1 and down == up
        assert graph.nodes[up[0]]["plane"] == d["local_rank"] % planes
    network_only = graph.edge_subgraph((u, v) for u, v, k in graph.edges(data="kind") if k != "nvlink")
    assert not nx.has_path(network_only, ("gpu", 0), ("gpu", 9))  # planes 0 and 1: NVLink forwarding needed
    assert nx.has_path(graph, ("gpu", 0), ("gpu", 9))


def _reference_paths(fab, src_sw, dst_sw, mode, seed):
    """switch_paths flow by flow: BFS distances from networkx, at each switch the neighbours one hop closer in
    the fabric's row order; hash picks the k-th by the same draw, spray takes each in shares."""
    from hwmodels.routing import _mix

    graph = nx.Graph((u, int(v)) for u, row in enumerate(fab.neighbors) for v in row if v >= 0)
    out = []
    for f, (s, d) in enumerate(zip(src_sw, dst_sw, strict=True)):
        dist = nx.single_source_shortest_path_length(graph, int(d))
        frontier, hop = [(int(s), 1.0)], 0
        while frontier and frontier[0][0] != d:
            nxt = []
            for cur, w in frontier:
                closer = [int(v) for v in fab.neighbors[cur] if v >= 0 and dist[int(v)] == dist[cur] - 1]
                if mode == "spray":
                    picks = [(v, w / len(closer)) for v in closer]
                else:
                    picks = [(closer[int(_mix(f, hop, seed) % len(closer))], w)]
                for v, share in picks:
                    link = fab.switch_link_id[np.searchsorted(fab.switch_link_key, cur * fab.n_switches + v)]
                    out.append((f, hop, int(link), share))
                    nxt.append((v, share))
            frontier, hop = nxt, hop + 1
    return sorted(out)


@pytest.mark.parametrize("kind", ["fat-tree-2", "multi-rail", "fat-tree-3", "dragonfly", "slim-fly"])
@pytest.mark.parametrize("mode", ["hash", "spray"])
def test_switch_paths_equal_a_flow_by_flow_walk(kind, mode):
    """The vectorized next hops (built only for the (target, switch) pairs flows reach) = walking each flow."""
    fab = fabric(kind, 128)
    rng = np.random.default_rng(7)
    src, dst = rng.integers(0, 128, 300), rng.integers(0, 128, 300)
    src_sw, dst_sw = fab.gpu_switch[src], fab.gpu_switch[dst]
    flows, links, weights = switch_paths(fab, src_sw, dst_sw, mode, seed=5)
    got = sorted((int(f), int(link), float(w)) for f, link, w in zip(flows, links, weights, strict=True))
    want = sorted((f, link, share) for f, _, link, share in _reference_paths(fab, src_sw, dst_sw, mode, 5))
    assert len(got) == len(want)
    assert all(a[:2] == b[:2] and a[2] == pytest.approx(b[2]) for a, b in zip(got, want, strict=True))

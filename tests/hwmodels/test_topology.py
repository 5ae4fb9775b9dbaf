"""Topologies: the ISCA 2025 comparison table, the graphs against the closed forms, bad input."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.cost import network_cost_usd, topology_metrics
from hwmodels.registry import load_switch
from hwmodels.slimfly import mms_edges
from hwmodels.topology import (
    KINDS,
    TopologySpec,
    build_switch_graph,
    design_topology,
    graph_hop_stats,
    topology_counts,
)
from simulator.explore.validate import tolerance

# ISCA 2025 (arXiv 2505.09343), network topology comparison, 64-port 400G switches.
# figures.toml row -> (kind, endpoints argument: None = the largest instance at radix 64)
ISCA_ROWS = {
    "fat_tree_2": ("fat-tree-2", None),
    "multi_plane_fat_tree": ("multi-plane", None),
    "fat_tree_3": ("fat-tree-3", None),
    "slim_fly": ("slim-fly", None),
    "dragonfly": ("dragonfly", 261632),  # ISCA's instance: 511 groups of 32 routers (the radix allows 513)
}
CALIBRATED = {"fat_tree_2", "fat_tree_3"}  # the two rows the switch and link prices were solved from


@pytest.fixture(scope="module")
def switch():
    return load_switch("ib-ndr-64")


@pytest.mark.golden
@pytest.mark.parametrize("row", ISCA_ROWS)
def test_isca_counts_exact(figures, switch, row):
    endpoints, switches, links, _, _ = figures["topology_comparison"][row]
    kind, n = ISCA_ROWS[row]
    m = topology_metrics(design_topology(kind, 64, n), switch)
    assert (m["endpoints"], m["switches"], m["links"]) == (endpoints, switches, links)


@pytest.mark.golden
@pytest.mark.parametrize("row", sorted(set(ISCA_ROWS) - CALIBRATED))
def test_isca_costs_predicted_within_5_percent(figures, switch, row):
    *_, cost_musd, per_endpoint_kusd = figures["topology_comparison"][row]
    kind, n = ISCA_ROWS[row]
    m = topology_metrics(design_topology(kind, 64, n), switch)
    rel = tolerance("topology_cost")  # the table `v3sim validate` reads
    assert m["cost_usd"] == pytest.approx(cost_musd * 1e6, rel=rel)
    assert m["cost_per_endpoint_usd"] == pytest.approx(per_endpoint_kusd * 1e3, rel=rel)


def test_prices_are_the_two_row_solve(figures, switch):
    """Calibrated, not validated: the switch and link prices solve the FT2 (per endpoint) and FT3 (total) rows."""
    t = figures["topology_comparison"]
    ft2, ft3 = topology_counts(design_topology("fat-tree-2")), topology_counts(design_topology("fat-tree-3"))
    # per endpoint: s * S + l * L = c, for (s, l) = switches and links per endpoint
    s2, l2, c2 = ft2.switches / ft2.endpoints, ft2.links / ft2.endpoints, t["fat_tree_2"][4] * 1e3
    s3, l3, c3 = ft3.switches / ft3.endpoints, ft3.links / ft3.endpoints, t["fat_tree_3"][3] * 1e6 / ft3.endpoints
    price = (c2 * l3 - c3 * l2) / (s2 * l3 - s3 * l2)
    link = (c2 - s2 * price) / l2
    assert switch.price_usd == pytest.approx(price, rel=1e-3)
    assert switch.isl_price_usd == pytest.approx(link, rel=2e-3)


def test_cost_adds_switches_and_links(switch):
    c = topology_counts(design_topology("fat-tree-2"))
    assert network_cost_usd(c, switch) == 96 * switch.price_usd + 2048 * switch.isl_price_usd


def test_multi_plane_costs_what_eight_fat_trees_cost(switch):
    one = topology_metrics(design_topology("fat-tree-2", 64, 2048), switch)
    eight = topology_metrics(design_topology("multi-plane", 64, 16384, 8), switch)
    assert eight["cost_usd"] == pytest.approx(8 * one["cost_usd"])
    assert eight["bisection_bytes_per_s"] == pytest.approx(8 * one["bisection_bytes_per_s"])


SMALL = [
    ("fat-tree-2", 16, 128, None, 1.0),
    ("fat-tree-2", 16, 100, None, 3.0),
    ("multi-plane", 16, 256, 8, 1.0),
    ("multi-rail", 16, 128, 8, 1.0),
    ("fat-tree-3", 8, 128, None, 1.0),
    ("fat-tree-3", 16, 700, None, 1.0),
    ("slim-fly", 12, None, None, 1.0),
    ("slim-fly", 20, 500, None, 1.0),
    ("dragonfly", 16, None, None, 1.0),
    ("dragonfly", 16, 600, None, 1.0),
]


@pytest.mark.parametrize(("kind", "radix", "endpoints", "planes", "over"), SMALL)
def test_graph_matches_closed_form(kind, radix, endpoints, planes, over):
    spec = design_topology(kind, radix, endpoints, planes, over)
    counts = topology_counts(spec)
    graph = build_switch_graph(spec)
    assert graph.number_of_nodes() == counts.switches
    assert sum(d["links"] for *_, d in graph.edges(data=True)) == counts.links
    assert sum(d.get("endpoints", 0) for _, d in graph.nodes(data=True)) == counts.endpoints
    # no switch uses more ports than it has
    for v, d in graph.nodes(data=True):
        assert d.get("endpoints", 0) + sum(e["links"] for *_, e in graph.edges(v, data=True)) <= radix
    if kind != "multi-plane":  # one connected plane: hops from the graph itself
        diameter, _ = graph_hop_stats(graph)
        assert diameter == counts.diameter_hops


@pytest.mark.parametrize("q", [5, 7, 11, 13])
def test_slim_fly_is_the_mms_graph(q):
    """Besta & Hoefler: k' = (3q - delta)/2 links per router and diameter 2."""
    graph = nx.Graph(mms_edges(q))
    delta = {1: 1, 3: -1}[q % 4]
    assert {d for _, d in graph.degree()} == {(3 * q - delta) // 2}
    assert graph.number_of_nodes() == 2 * q * q
    assert nx.diameter(graph) == 2


def test_ecmp_paths_on_the_graph():
    spec = design_topology("fat-tree-3", 8, 128)
    graph = build_switch_graph(spec)
    paths = list(
        nx.all_shortest_paths(graph, ("edge", 0, 0), ("edge", 0, len([1 for v in graph if v[0] == "edge"]) - 1))
    )
    assert len(paths) == topology_counts(spec).ecmp_paths
    spec2 = design_topology("fat-tree-2", 16, 128)
    g2 = build_switch_graph(spec2)
    assert len(list(nx.all_shortest_paths(g2, ("leaf", 0, 0), ("leaf", 0, 7)))) == topology_counts(spec2).ecmp_paths


def test_bisection_of_full_fat_trees_is_a_min_cut():
    """Half the endpoints on each side: the max flow between the halves equals the closed-form cut."""
    spec = design_topology("fat-tree-2", 8, 32)
    graph = build_switch_graph(spec)
    leaves = sorted(v for v in graph if v[0] == "leaf")
    flow = nx.DiGraph()
    for u, v, d in graph.edges(data=True):
        flow.add_edge(u, v, capacity=d["links"])
        flow.add_edge(v, u, capacity=d["links"])
    half = len(leaves) // 2
    for leaf in leaves[:half]:
        flow.add_edge("s", leaf, capacity=graph.nodes[leaf]["endpoints"])
    for leaf in leaves[half:]:
        flow.add_edge(leaf, "t", capacity=graph.nodes[leaf]["endpoints"])
    assert nx.maximum_flow_value(flow, "s", "t") == topology_counts(spec).bisection_links


def test_oversubscription_cuts_bisection_and_switches(switch):
    full = topology_metrics(design_topology("fat-tree-2", 64, 2048), switch)
    over = topology_metrics(design_topology("fat-tree-2", 64, 2048, oversubscription=3), switch)
    assert over["bisection_bytes_per_s"] == pytest.approx(full["bisection_bytes_per_s"] / 3)
    assert over["switches"] < full["switches"] and over["cost_usd"] < full["cost_usd"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "torus"}, "unknown topology 'torus'"),
        ({"kind": "fat-tree-2", "radix": 7}, "radix=7 must be an even number"),
        ({"kind": "fat-tree-2", "radix": 64, "endpoints": 3000}, "holds at most 2048 endpoints"),
        ({"kind": "fat-tree-3", "radix": 8, "endpoints": 1000}, "holds at most 128 endpoints"),
        ({"kind": "slim-fly", "radix": 64, "oversubscription": 2.0}, "takes no --oversubscription"),
        ({"kind": "multi-plane", "radix": 64, "endpoints": 100, "planes": 8}, "must be >= 1 and divide"),
        ({"kind": "dragonfly", "planes": 2}, "has one plane"),
    ],
)
def test_bad_topologies_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        design_topology(**kwargs)


def test_slim_fly_graph_needs_prime_q():
    with pytest.raises(ValueError, match="q=28 is not one"):
        build_switch_graph(design_topology("slim-fly"))


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    radix=st.sampled_from([8, 12, 16, 24]),
    fraction=st.floats(0.05, 1.0),
)
def test_counts_are_consistent(kind, radix, fraction):
    """Any buildable size: ports suffice, cost grows with endpoints, bisection at most half the endpoints' links."""
    planes = 4 if kind in ("multi-plane", "multi-rail") else 1
    full = design_topology(kind, radix, None, planes)
    n = max(planes * 2, int(full.endpoints * fraction) // planes * planes)
    spec = TopologySpec(kind, radix, n, planes)
    c = topology_counts(spec)
    assert c.switches * radix >= c.endpoints + 2 * c.links
    assert topology_counts(full).links >= c.links
    assert c.diameter_hops in (0, 1, 2, 3, 4)


def test_topology_kinds_are_one_table_of_records():
    """Every kind is a frozen record in one table, looked up by name; an unknown name is refused."""
    import dataclasses

    from hwmodels.names import TOPOLOGY_KINDS
    from hwmodels.topology import FAMILIES, TABLE, topology_kind

    assert tuple(TABLE) == TOPOLOGY_KINDS
    assert all(k.source and k.family in FAMILIES for k in TABLE.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        TABLE["multi-plane"].planes = "none"  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown topology 'torus'"):
        topology_kind("torus")
    # what the records say is what the designs do
    assert design_topology("multi-plane").planes == 8 and design_topology("fat-tree-2").planes == 1
    with pytest.raises(ValueError, match="no --oversubscription"):
        design_topology("slim-fly", oversubscription=2)

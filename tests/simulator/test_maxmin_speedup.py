"""Max-min filling against a plain reference, cold and started from a previous filling (issue 22, item 5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix

from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import design_topology
from hwmodels.traffic import moe_transfers
from simulator.network import flows
from simulator.network.collectives import route_transfers
from simulator.network.flows import SATURATED, SHARE_TOLERANCE, Routes, max_min_rates, progressive_filling
from simulator.runspec import v3_pretraining
from workloads.comm import ep_bytes_per_token_per_layer

RTOL = 1e-9


def reference_rates(share: np.ndarray, capacity: np.ndarray, active: np.ndarray, tolerance: float) -> np.ndarray:
    """Progressive filling, dense and recomputed from scratch each round: the common rate of the unfrozen
    flows at which each link fills is its capacity left over their total share of it; the lowest such rate
    is the round's level, and every unfrozen flow on a link that fills within `tolerance` of it (or, to
    rounding, exactly at it) gets that level. Flows crossing no link get inf, inactive ones 0."""
    crosses = (share > 0).any(axis=0)
    rate = np.where(active & ~crosses, np.inf, 0.0)
    free = active & crosses
    while free.any():
        frozen = active & crosses & ~free
        spare = capacity - share[:, frozen] @ rate[frozen]
        load = share[:, free].sum(axis=1)
        live = np.flatnonzero(load > 0)
        fill = spare[live] / load[live]
        level = fill.min()
        gap = fill - level
        full = live[(gap <= tolerance * level) | (load[live] * gap <= SATURATED * capacity[live])]
        now = free & (share[full] > 0).any(axis=0)
        rate[now] = level
        free &= ~now
    return rate


@st.composite
def flow_sets(draw):
    """(links x flows share matrix, capacity, active): paths of 0-3 links, some sprayed over 2-3 links at 1/k
    each; capacities from a few values (ties) or any in [0.5, 10]; a few flows inactive."""
    n_links = draw(st.integers(1, 7))
    n_flows = draw(st.integers(1, 12))
    share = np.zeros((n_links, n_flows))
    for f in range(n_flows):
        path = draw(st.lists(st.integers(0, n_links - 1), max_size=3, unique=True))
        sprayed = draw(st.lists(st.integers(0, n_links - 1), max_size=3, unique=True))
        share[path, f] = 1.0
        if len(sprayed) > 1:
            share[sprayed, f] += 1.0 / len(sprayed)
    value = st.sampled_from([1.0, 2.0, 3.0, 4.0]) if draw(st.booleans()) else st.floats(0.5, 10)
    capacity = np.array(draw(st.lists(value, min_size=n_links, max_size=n_links)))
    active = np.array(draw(st.lists(st.booleans(), min_size=n_flows, max_size=n_flows)))
    return share, capacity, active


def assert_rates_equal(rate, expected):
    assert (np.isinf(rate) == np.isinf(expected)).all()
    finite = np.isfinite(expected)
    np.testing.assert_allclose(rate[finite], expected[finite], rtol=RTOL, atol=0)


@settings(deadline=None, max_examples=300)
@given(flow_sets(), st.sampled_from([0.0, SHARE_TOLERANCE]))
def test_max_min_rates_equal_the_reference(case, tolerance):
    share, capacity, active = case
    rate = max_min_rates(csr_matrix(share), capacity, active, tolerance)
    assert_rates_equal(rate, reference_rates(share, capacity, active, tolerance))


@settings(deadline=None, max_examples=200)
@given(flow_sets(), st.lists(st.lists(st.booleans(), min_size=12, max_size=12), min_size=1, max_size=6))
def test_a_filling_started_from_the_last_equals_the_reference(case, masks):
    """Each filling starts from the one before, as simulate_flows chains them: flows leave (the rounds
    below the slowest of them are kept) and sometimes join (a fresh start)."""
    share, capacity, active = case
    routes = Routes.of(csr_matrix(share))
    filling = progressive_filling(routes, capacity, active)
    for mask in masks:
        mask = np.array(mask[: len(active)])
        active = active & mask if mask.sum() > 2 else active | mask  # mostly leave, sometimes join
        filling = progressive_filling(routes, capacity, active, previous=filling)
        assert_rates_equal(filling.rate_bytes_per_s, reference_rates(share, capacity, active, SHARE_TOLERANCE))


def cold_simulation(flow_set, monkeypatch):
    """simulate_flows with every reshare filled from scratch."""
    cold = flows.progressive_filling
    with monkeypatch.context() as m:
        m.setattr(flows, "progressive_filling", lambda *args, previous=None: cold(*args))
        return flows.simulate_flows(flow_set)


@settings(deadline=None, max_examples=100)
@given(flow_sets(), st.lists(st.floats(0.0, 10), min_size=12, max_size=12), st.lists(st.floats(0, 3), min_size=12))
def test_simulation_from_the_last_filling_equals_from_scratch(case, sizes, starts):
    share, capacity, _ = case
    n = share.shape[1]
    flow_set = flows.FlowSet(csr_matrix(share), capacity, np.array(sizes[:n]), np.array(starts[:n]), np.zeros(n))
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = cold_simulation(flow_set, monkeypatch)
    result = flows.simulate_flows(flow_set)
    np.testing.assert_allclose(result.finish_s, expected.finish_s, rtol=RTOL, atol=0)
    assert result.reshares == expected.reshares


def test_ep_dispatch_on_a_tapered_fat_tree_equals_from_scratch(monkeypatch):
    """V3's EP64 dispatch with drawn loads on a 512-GPU two-layer fat tree at 3:1 (the event model's slow
    case, smaller): hundreds of reshares, each started from the last, give the cold filling's finish times."""
    fabric = build_fabric(
        design_topology("fat-tree-2", 64, 512, None, 3.0), load_node("h800-ib"), load_switch("ib-ndr-64"), 512
    )
    run = v3_pretraining()
    per_token = ep_bytes_per_token_per_layer(run.model, run.layout, 4, "fp8", "bf16")
    load = np.random.default_rng(0).lognormal(0, 0.3, 512)
    src, dst, size = moe_transfers(fabric, 64, 4096.0, per_token, "dispatch", load / load.mean())
    flow_set = route_transfers(fabric, src, dst, size, "hash", 0)
    expected = cold_simulation(flow_set, monkeypatch)
    result = flows.simulate_flows(flow_set)
    assert result.reshares == expected.reshares > 50
    np.testing.assert_allclose(result.finish_s, expected.finish_s, rtol=RTOL, atol=0)

"""The flow-level model: hand-solved scenarios and the max-min invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix

from simulator.network.flows import SHARE_TOLERANCE, FlowSet, max_min_rates, simulate_flows


def flowset(paths, caps, sizes, starts=None, latency=None):
    """paths: per flow, a list of (link, weight)."""
    rows = [link for p in paths for link, _ in p]
    cols = [f for f, p in enumerate(paths) for _ in p]
    data = [w for p in paths for _, w in p]
    inc = csr_matrix((data, (rows, cols)), shape=(len(caps), len(paths)))
    n = len(paths)
    return FlowSet(
        inc,
        np.array(caps, float),
        np.array(sizes, float),
        np.zeros(n) if starts is None else np.array(starts, float),
        np.zeros(n) if latency is None else np.array(latency, float),
    )


def test_one_flow():
    res = simulate_flows(flowset([[(0, 1)]], [2.0], [10.0], latency=[0.5]))
    assert res.finish_s.tolist() == [5.5]


def test_n_equal_flows_share_and_finish_together():
    res = simulate_flows(flowset([[(0, 1)]] * 4, [1.0], [1.0] * 4))
    assert res.finish_s == pytest.approx([4.0] * 4)
    assert res.reshares == 1


def test_classic_max_min():
    fs = flowset([[(0, 1)], [(0, 1), (1, 1)], [(1, 1)]], [1.0, 2.0], [1, 1, 1])
    assert max_min_rates(fs.incidence, fs.capacity_bytes_per_s) == pytest.approx([0.5, 0.5, 1.5])


def test_reshare_when_a_flow_finishes():
    res = simulate_flows(flowset([[(0, 1)], [(0, 1)]], [1.0], [1.0, 3.0]))
    assert res.finish_s == pytest.approx([2.0, 4.0])


def test_late_start():
    # flow 0 alone for 1 s (1 byte done), then both share: flow 0 has 1 byte left at 0.5 B/s -> t=3;
    # flow 1 has sent 1 of 2 bytes by then, alone again -> t=4
    res = simulate_flows(flowset([[(0, 1)], [(0, 1)]], [1.0], [2.0, 2.0], starts=[0.0, 1.0]))
    assert res.finish_s == pytest.approx([3.0, 4.0])


def test_sprayed_flow_uses_both_links():
    fs = flowset([[(0, 0.5), (1, 0.5)]], [1.0, 1.0], [4.0])
    assert max_min_rates(fs.incidence, fs.capacity_bytes_per_s) == pytest.approx([2.0])
    assert simulate_flows(fs).finish_s == pytest.approx([2.0])


def test_zero_bytes_and_no_links_finish_at_start():
    fs = flowset([[], [(0, 1)]], [1.0], [5.0, 0.0], starts=[1.0, 2.0], latency=[0.1, 0.2])
    assert simulate_flows(fs).finish_s == pytest.approx([1.1, 2.2])


def test_bad_shapes_are_errors():
    inc = csr_matrix(np.ones((1, 2)))
    with pytest.raises(ValueError, match="size_bytes"):
        FlowSet(inc, np.ones(1), np.ones(3), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="size_bytes must be finite and >= 0"):
        FlowSet(inc, np.ones(1), -np.ones(2), np.zeros(2), np.zeros(2))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_sizes_are_refused_not_looped_on(bad):
    """A NaN size never finishes: simulate_flows used to loop forever on one."""
    inc = csr_matrix(np.ones((1, 2)))
    with pytest.raises(ValueError, match="size_bytes must be finite"):
        FlowSet(inc, np.ones(1), np.array([1.0, bad]), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="capacity_bytes_per_s must be positive"):
        FlowSet(inc, np.array([np.nan]), np.ones(2), np.zeros(2), np.zeros(2))


@st.composite
def networks(draw):
    n_links = draw(st.integers(1, 6))
    n_flows = draw(st.integers(1, 8))
    paths = [
        [(link, 1.0) for link in draw(st.sets(st.integers(0, n_links - 1), min_size=1, max_size=n_links))]
        for _ in range(n_flows)
    ]
    caps = draw(st.lists(st.floats(0.5, 10), min_size=n_links, max_size=n_links))
    sizes = draw(st.lists(st.floats(0.0, 10), min_size=n_flows, max_size=n_flows))
    starts = draw(st.lists(st.floats(0.0, 3), min_size=n_flows, max_size=n_flows))
    return flowset(paths, caps, sizes, starts)


@settings(deadline=None)
@given(networks())
def test_max_min_invariants(fs):
    rate = max_min_rates(fs.incidence, fs.capacity_bytes_per_s)
    load = fs.incidence @ rate
    assert (load <= fs.capacity_bytes_per_s * (1 + 1e-9)).all()  # feasible
    dense = fs.incidence.toarray() > 0
    # links within SHARE_TOLERANCE of their share freeze together, so "saturated" and "no one gets more" hold to it
    saturated = load >= fs.capacity_bytes_per_s * (1 - SHARE_TOLERANCE)
    for f in range(dense.shape[1]):  # every flow has a saturated link where no one gets more
        bottlenecks = [
            link
            for link in np.flatnonzero(dense[:, f])
            if saturated[link] and rate[f] >= rate[dense[link]].max() * (1 - SHARE_TOLERANCE)
        ]
        assert bottlenecks


@settings(deadline=None)
@given(networks())
def test_simulation_conserves_bytes_and_time(fs):
    res = simulate_flows(fs)
    assert res.link_bytes == pytest.approx(fs.incidence @ fs.size_bytes)
    by_flow = fs.incidence.tocsc()
    bottleneck = np.array([fs.capacity_bytes_per_s[by_flow[:, [f]].indices].min() for f in range(by_flow.shape[1])])
    assert (res.finish_s >= fs.start_s + fs.size_bytes / bottleneck - 1e-9).all()

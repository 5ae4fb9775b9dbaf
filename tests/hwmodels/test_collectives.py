"""Alpha-beta collectives: hand-computed values, bandwidth limits against nccl-tests' busbw, monotonicity."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwmodels.collectives import (
    COLLECTIVES,
    CollectiveTime,
    TwoLevelNet,
    all_gather,
    all_to_all,
    reduce_scatter,
    ring_all_reduce,
    send_recv,
    tree_all_reduce,
)

GB = 1e9
REL = 1e-12


def net(over: float = 1.0, alpha: bool = True, g: int = 8) -> TwoLevelNet:
    """NVLink 200 GB/s, NIC 50 GB/s per GPU; 1 us and 5 us latencies (or none)."""
    up_s, out_s = (1e-6, 5e-6) if alpha else (0.0, 0.0)
    return TwoLevelNet(g, 200 * GB, 50 * GB, up_s, out_s, over)


def assert_result(res: CollectiveTime, time_s: float, bytes_per_gpu: float, bus_factor: float) -> None:
    assert res.time_s == pytest.approx(time_s, rel=REL)
    assert res.algo_bytes_per_s == pytest.approx(bytes_per_gpu / time_s, rel=REL)
    assert res.bus_bytes_per_s == pytest.approx(bytes_per_gpu / time_s * bus_factor, rel=REL)


# --- hand-computed values -----------------------------------------------------------------------------------


def test_ring_all_reduce_in_one_node():
    """8 GPUs, 1 GB: 14 steps of 125 MB over NVLink, 0.625 ms + 1 us each."""
    assert_result(ring_all_reduce(8, GB, net()), 14 * (1e-6 + 0.625e-3), GB, 14 / 8)


def test_ring_all_reduce_on_two_nodes_is_nvlink_bound_at_full_bisection():
    """16 GPUs, 1 GB: 30 steps of 62.5 MB; NVLink 7/8 of it at 200 GB/s (273.4375 us) beats the NIC's 1/8 at
    50 GB/s (156.25 us); alpha is the slower fabric's 5 us."""
    assert_result(ring_all_reduce(16, GB, net()), 30 * (5e-6 + 273.4375e-6), GB, 30 / 16)


def test_ring_all_reduce_on_two_nodes_is_nic_bound_at_taper_2():
    """The same with oversubscription 2: the NIC's 1/8 of 62.5 MB at 25 GB/s takes 312.5 us."""
    assert_result(ring_all_reduce(16, GB, net(over=2.0)), 30 * (5e-6 + 312.5e-6), GB, 30 / 16)


def test_reduce_scatter_and_all_gather_in_one_node():
    """7 steps of 125 MB."""
    for fn in (reduce_scatter, all_gather):
        assert_result(fn(8, GB, net()), 7 * (1e-6 + 0.625e-3), GB, 7 / 8)


def test_tree_all_reduce():
    """32 GPUs on 4 nodes: 2 log2(4) = 4 network latencies, 14 NVLink ones; 2 GB over NVLink at 200 GB/s (the
    node's NICs give 400). With taper 8 the NICs give 8 x 50/8 = 50 GB/s: 40 ms."""
    assert_result(tree_all_reduce(32, GB, net()), 4 * 5e-6 + 14 * 1e-6 + 0.01, GB, 62 / 32)
    assert_result(tree_all_reduce(32, GB, net(over=8.0)), 4 * 5e-6 + 14 * 1e-6 + 0.04, GB, 62 / 32)
    assert_result(tree_all_reduce(8, GB, net()), 14 * 1e-6 + 0.01, GB, 14 / 8)  # one node: the chain only


def test_all_to_all_on_two_nodes_with_taper_2():
    """16 GPUs, 1.6 GB each: 0.7 GB to the 7 node peers over NVLink (3.5 ms), 0.8 GB to the other node at
    50/2 GB/s (32 ms); the parts overlap; one latency of each fabric."""
    assert_result(all_to_all(16, 1.6 * GB, net(over=2.0)), 0.032 + 1e-6 + 5e-6, 1.6 * GB, 15 / 16)


def test_all_to_all_in_one_node_ignores_the_network():
    assert_result(all_to_all(8, 1.6 * GB, net(over=4.0)), 1.4 * GB / (200 * GB) + 1e-6, 1.6 * GB, 7 / 8)


def test_fewer_gpus_than_a_node_stay_on_nvlink():
    """4 GPUs of an 8-GPU node: scale-up bandwidth and latency only, whatever the network."""
    slow_nic = TwoLevelNet(8, 200 * GB, 1.0, 1e-6, 1.0, 100.0)
    assert_result(ring_all_reduce(4, GB, slow_nic), 6 * (1e-6 + 0.25 * GB / (200 * GB)), GB, 6 / 4)
    assert_result(all_to_all(4, GB, slow_nic), 1e-6 + 0.75 * GB / (200 * GB), GB, 3 / 4)


def test_one_gpu_per_node_sends_everything_over_the_nic():
    """g = 1: no NVLink hop; all-to-all's latency is the network's alone."""
    one = TwoLevelNet(1, 200 * GB, 50 * GB, 1e-6, 5e-6)
    assert_result(all_to_all(4, GB, one), 5e-6 + 0.75 * GB / (50 * GB), GB, 3 / 4)
    assert_result(ring_all_reduce(4, GB, one), 6 * (5e-6 + 0.25 * GB / (50 * GB)), GB, 6 / 4)


def test_a_strided_group_rings_through_one_nic_a_node():
    """Megatron's data-parallel ranks sit tp apart: with tp = 8 each of 8 nodes holds one rank of a group of 8,
    so every ring step crosses a NIC at its own 50 GB/s (no NVLink hop, no rail sharing) where the same 8 ranks
    packed in a node would ring over NVLink; half a node each (per_node 4) is the two-node ring."""
    assert_result(reduce_scatter(8, GB, net(), per_node=1), 7 * (5e-6 + 0.125 * GB / (50 * GB)), GB, 7 / 8)
    assert_result(all_gather(8, GB, net(), per_node=1), 7 * (5e-6 + 0.125 * GB / (50 * GB)), GB, 7 / 8)
    assert_result(ring_all_reduce(8, GB, net(), per_node=1), 14 * (5e-6 + 0.125 * GB / (50 * GB)), GB, 14 / 8)
    two_nodes = TwoLevelNet(4, 200 * GB, 50 * GB, 1e-6, 5e-6)
    assert reduce_scatter(8, GB, net(), per_node=4) == reduce_scatter(8, GB, two_nodes)
    assert reduce_scatter(16, GB, net(), per_node=8) == reduce_scatter(16, GB, net())  # packed: the default


@pytest.mark.parametrize("per_node", [0, 9, 2.5, True])
def test_per_node_outside_the_node_is_refused(per_node):
    with pytest.raises(ValueError, match="per_node"):
        reduce_scatter(16, GB, net(), per_node=per_node)


def test_send_recv():
    assert send_recv(GB, net(), same_node=True) == pytest.approx(1e-6 + 5e-3, rel=REL)
    assert send_recv(GB, net(over=4.0), same_node=False) == pytest.approx(5e-6 + 20e-3, rel=REL)
    assert send_recv(0.0, net(), same_node=False) == 5e-6


@pytest.mark.parametrize("name", sorted(COLLECTIVES))
def test_one_gpu_takes_no_time(name):
    assert COLLECTIVES[name](1, GB, net()) == CollectiveTime(0.0, math.inf, 0.0)


@pytest.mark.parametrize("name", sorted(COLLECTIVES))
def test_no_bytes_costs_latency_only(name):
    res = COLLECTIVES[name](16, 0.0, net())
    assert res.time_s > 0 and res.algo_bytes_per_s == 0.0 and res.bus_bytes_per_s == 0.0
    assert COLLECTIVES[name](16, 0.0, net(alpha=False)) == CollectiveTime(0.0, math.inf, 0.0)


def test_registry_names():
    assert set(COLLECTIVES) == {"all-reduce", "all-reduce-tree", "reduce-scatter", "all-gather", "all-to-all"}
    assert COLLECTIVES["all-reduce"] is ring_all_reduce
    assert COLLECTIVES["all-reduce-tree"] is tree_all_reduce


def test_numpy_integers_are_accepted():
    assert ring_all_reduce(np.int64(16), GB, net()) == ring_all_reduce(16, GB, net())


# --- bandwidth limits (alpha = 0) ----------------------------------------------------------------------------

nets = st.builds(
    TwoLevelNet,
    gpus_per_node=st.integers(1, 16),
    scaleup_bw_bytes_per_s=st.floats(1e8, 1e13),
    scaleout_bw_bytes_per_s=st.floats(1e8, 1e13),
    scaleup_latency_s=st.floats(0, 1e-4),
    scaleout_latency_s=st.floats(0, 1e-4),
    oversubscription=st.floats(1, 16),
)
no_alpha_nets = nets.map(lambda n: dataclasses.replace(n, scaleup_latency_s=0.0, scaleout_latency_s=0.0))
gpu_counts = st.integers(1, 4096)
sizes = st.one_of(st.just(0.0), st.floats(1.0, 1e12))


@given(nets, st.integers(2, 4096), sizes)
def test_one_rank_a_node_never_takes_less_time(n2, n_gpus, size):
    """A group one rank to a node (every step through one NIC) is never faster than the same ranks packed, on
    any cluster whose network is no faster than its scale-up fabric."""
    up, out = sorted((n2.scaleup_bw_bytes_per_s, n2.scaleout_bw_bytes_per_s))[::-1]
    alpha_up, alpha_out = sorted((n2.scaleup_latency_s, n2.scaleout_latency_s))
    n2 = dataclasses.replace(n2, scaleup_bw_bytes_per_s=up, scaleout_bw_bytes_per_s=out,
                             scaleup_latency_s=alpha_up, scaleout_latency_s=alpha_out)  # fmt: skip
    for fn in (reduce_scatter, all_gather, ring_all_reduce):
        assert fn(n_gpus, size, n2, 1).time_s >= fn(n_gpus, size, n2).time_s * (1 - 1e-12)


@given(no_alpha_nets, st.integers(2, 4096), st.floats(1.0, 1e12))
def test_ring_all_reduce_busbw_is_the_bottleneck_bandwidth(n2, n_gpus, size):
    """nccl-tests' point of busbw: with no latency it is the busiest link's bandwidth, whatever n."""
    g = n2.gpus_per_node
    if n_gpus <= g:
        bottleneck = n2.scaleup_bw_bytes_per_s
    else:  # per GPU: NVLink carries (g-1)/g of a step, the NIC 1/g
        nvlink = math.inf if g == 1 else n2.scaleup_bw_bytes_per_s * g / (g - 1)
        bottleneck = min(nvlink, g * n2.scaleout_bw_bytes_per_s / n2.oversubscription)
    assert ring_all_reduce(n_gpus, size, n2).bus_bytes_per_s == pytest.approx(bottleneck, rel=1e-9)


@given(no_alpha_nets, st.integers(2, 4096), st.floats(1.0, 1e12))
def test_tree_all_reduce_busbw(n2, n_gpus, size):
    """Every node moves 2B each way: busbw = bottleneck (n-1)/n, just under the ring's."""
    g = min(n2.gpus_per_node, n_gpus)
    bw = n2.scaleup_bw_bytes_per_s
    if n_gpus > g:
        bw = min(bw, g * n2.scaleout_bw_bytes_per_s / n2.oversubscription)
    res = tree_all_reduce(n_gpus, size, n2)
    assert res.bus_bytes_per_s == pytest.approx(bw * (n_gpus - 1) / n_gpus, rel=1e-9)


@given(no_alpha_nets, st.integers(2, 4096), st.floats(1.0, 1e12))
def test_all_to_all_busbw_exact_formula(n2, n_gpus, size):
    """busbw = algbw (n-1)/n with algbw = B / max(B(g-1)/(n up), B(n-g)/(n fabric))."""
    g = min(n2.gpus_per_node, n_gpus)
    fabric = n2.scaleout_bw_bytes_per_s / n2.oversubscription
    per_byte_s = max((g - 1) / n_gpus / n2.scaleup_bw_bytes_per_s, (n_gpus - g) / n_gpus / fabric)
    expected = (n_gpus - 1) / n_gpus / per_byte_s
    assert all_to_all(n_gpus, size, n2).bus_bytes_per_s == pytest.approx(expected, rel=1e-9)


def test_all_to_all_busbw_tends_to_the_tapered_nic_bandwidth():
    """NIC-bound: busbw = fabric (n-1)/(n-g), slightly above fabric bw, and -> fabric bw as n >> g."""
    fabric = 50 * GB / 2
    for n_gpus in (16, 64, 1024, 65536):
        res = all_to_all(n_gpus, GB, net(over=2.0, alpha=False))
        assert res.bus_bytes_per_s == pytest.approx(fabric * (n_gpus - 1) / (n_gpus - 8), rel=REL)
    assert res.bus_bytes_per_s == pytest.approx(fabric, rel=2e-4)


# --- properties -----------------------------------------------------------------------------------------------

names = st.sampled_from(sorted(COLLECTIVES))


@given(names, nets, gpu_counts, sizes)
def test_time_is_finite_and_non_negative(name, n2, n_gpus, size):
    res = COLLECTIVES[name](n_gpus, size, n2)
    assert 0 <= res.time_s < math.inf
    assert res.algo_bytes_per_s >= 0 and res.bus_bytes_per_s >= 0


@given(names, nets, gpu_counts, sizes, st.floats(1, 100), st.sampled_from(["up", "out"]))
def test_more_bandwidth_never_takes_longer(name, n2, n_gpus, size, factor, which):
    field = f"scale{which}_bw_bytes_per_s"
    faster = dataclasses.replace(n2, **{field: getattr(n2, field) * factor})
    assert COLLECTIVES[name](n_gpus, size, faster).time_s <= COLLECTIVES[name](n_gpus, size, n2).time_s


@given(nets, sizes, st.floats(1, 100), st.booleans())
def test_send_recv_more_bandwidth_never_takes_longer(n2, size, factor, same_node):
    faster = dataclasses.replace(
        n2,
        scaleup_bw_bytes_per_s=n2.scaleup_bw_bytes_per_s * factor,
        scaleout_bw_bytes_per_s=n2.scaleout_bw_bytes_per_s * factor,
    )
    assert 0 <= send_recv(size, faster, same_node) <= send_recv(size, n2, same_node)


@given(names, nets, gpu_counts, sizes, st.floats(0, 1e12))
def test_more_bytes_never_take_less_time(name, n2, n_gpus, size, extra):
    assert COLLECTIVES[name](n_gpus, size + extra, n2).time_s >= COLLECTIVES[name](n_gpus, size, n2).time_s


@given(names, nets, gpu_counts, sizes)
def test_doubling_oversubscription_never_takes_less_time(name, n2, n_gpus, size):
    tapered = dataclasses.replace(n2, oversubscription=2 * n2.oversubscription)
    assert COLLECTIVES[name](n_gpus, size, tapered).time_s >= COLLECTIVES[name](n_gpus, size, n2).time_s


@given(no_alpha_nets, gpu_counts, st.floats(1.0, 1e12))
def test_reduce_scatter_plus_all_gather_is_ring_all_reduce(n2, n_gpus, size):
    rs, ag = reduce_scatter(n_gpus, size, n2), all_gather(n_gpus, size, n2)
    assert rs.time_s + ag.time_s == ring_all_reduce(n_gpus, size, n2).time_s


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COLLECTIVES))
@pytest.mark.parametrize(
    ("n_gpus", "size", "match"),
    [
        (0, GB, "n_gpus=0"),
        (-3, GB, "n_gpus=-3"),
        (2.5, GB, "n_gpus=2.5"),
        (True, GB, "n_gpus=True"),
        (8, -1.0, "bytes_per_gpu=-1.0"),
        (8, math.nan, "bytes_per_gpu=nan"),
        (8, math.inf, "bytes_per_gpu=inf"),
    ],
)
def test_bad_collective_arguments(name, n_gpus, size, match):
    with pytest.raises(ValueError, match=match):
        COLLECTIVES[name](n_gpus, size, net())


def test_bad_send_recv_bytes():
    with pytest.raises(ValueError, match="bytes_=-1"):
        send_recv(-1.0, net(), same_node=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpus_per_node", 0),
        ("gpus_per_node", 8.0),
        ("scaleup_bw_bytes_per_s", 0.0),
        ("scaleout_bw_bytes_per_s", -1.0),
        ("scaleout_bw_bytes_per_s", math.inf),
        ("scaleup_latency_s", -1e-6),
        ("scaleout_latency_s", math.nan),
        ("oversubscription", 0.5),
    ],
)
def test_bad_net_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}="):
        dataclasses.replace(net(), **{field: value})


def test_net_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        net().oversubscription = 2.0  # type: ignore[misc]

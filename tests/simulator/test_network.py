"""Collectives flow by flow on real topologies, against the alpha-beta closed forms: where they agree and where
contention makes them differ."""

from __future__ import annotations

import numpy as np
import pytest

from hwmodels import collectives as ab
from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import design_topology
from simulator import network
from simulator.netsummary import _two_level
from workloads.comm import ep_bytes_per_token_per_layer
from workloads.layout import ParallelLayout
from workloads.registry import load_model

NODE, SWITCH = load_node("h800-ib"), load_switch("ib-ndr-64")
MB = 1e6


def fabric(kind, gpus, radix=64, over=1.0, planes=None):
    return build_fabric(design_topology(kind, radix, gpus, planes, over), NODE, SWITCH, gpus)


@pytest.mark.parametrize("kind", ["multi-plane", "fat-tree-2", "multi-rail"])
@pytest.mark.parametrize("gpus", [16, 256])
def test_all_to_all_matches_alpha_beta_on_full_bisection(kind, gpus):
    flow = network.all_to_all(fabric(kind, gpus), gpus, 256 * MB)
    closed = ab.all_to_all(gpus, 256 * MB, _two_level("h800-ib", 1.0))
    assert flow.time_s == pytest.approx(closed.time_s, rel=0.01)
    assert flow.max_link_utilization == pytest.approx(1.0, rel=0.01)  # the NICs run full (less latency)


def test_multi_plane_needs_forwarding_and_multi_rail_does_not():
    with pytest.raises(ValueError, match="no switch path"):
        network.all_to_all(fabric("multi-plane", 256), 256, 64 * MB, forwarding=False)
    direct = network.all_to_all(fabric("multi-rail", 256), 256, 64 * MB, forwarding=False)
    forwarded = network.all_to_all(fabric("multi-plane", 256), 256, 64 * MB)
    assert direct.time_s == pytest.approx(forwarded.time_s, rel=0.01)  # same NIC bytes either way


def test_oversubscription_slows_cross_leaf_traffic():
    """R = 3 taper: the flow model is slower than full bisection but faster than the closed form, which sends
    all cross-node traffic through the taper although GPUs under one leaf never reach the spines."""
    gpus, size = 64, 128 * MB
    full = network.all_to_all(fabric("fat-tree-2", gpus, radix=16), gpus, size, forwarding=False, ecmp="spray")
    tapered = network.all_to_all(fabric("fat-tree-2", gpus, 16, 3.0), gpus, size, forwarding=False, ecmp="spray")
    closed = ab.all_to_all(gpus, size, _two_level("h800-ib", 3.0))
    assert full.time_s * 2 < tapered.time_s < closed.time_s


def test_ecmp_collisions_cost_time_and_spraying_removes_them():
    """Without forwarding, per-flow hashing loads some uplinks more than others; spraying is the ideal."""
    gpus, size = 64, 128 * MB
    fab = fabric("fat-tree-2", gpus, radix=16)  # 8 GPUs per leaf, 8 leaves, 4 spines
    hashed = network.all_to_all(fab, gpus, size, forwarding=False, ecmp="hash")
    sprayed = network.all_to_all(fab, gpus, size, forwarding=False, ecmp="spray")
    closed = ab.all_to_all(gpus, size, _two_level("h800-ib", 1.0))
    assert sprayed.time_s == pytest.approx(closed.time_s, rel=0.01)
    assert hashed.time_s > 1.02 * sprayed.time_s


def test_seeded_routing_is_reproducible():
    fab = fabric("fat-tree-2", 64, radix=16)
    a = network.all_to_all(fab, 64, 64 * MB, forwarding=False, ecmp="random", seed=7)
    b = network.all_to_all(fab, 64, 64 * MB, forwarding=False, ecmp="random", seed=7)
    assert a.time_s == b.time_s


@pytest.mark.parametrize("name", ["all-reduce", "reduce-scatter", "all-gather"])
def test_ring_collectives_near_alpha_beta(name):
    """Rail-aligned rings: NVLink carries 7/8 of each step; forwarding adds one NVLink hop per channel per node,
    which the closed form leaves out: the flow model is at most 15% slower, never faster."""
    gpus, size = 256, 256 * MB
    flow = network.ring_collective(fabric("multi-plane", gpus), name, gpus, size)
    closed = ab.COLLECTIVES[name](gpus, size, _two_level("h800-ib", 1.0))
    assert closed.time_s * 0.999 <= flow.time_s <= closed.time_s * 1.15


def test_ring_inside_one_node_is_nvlink_bound():
    flow = network.ring_collective(fabric("fat-tree-2", 8), "all-reduce", 8, 1e9)
    closed = ab.ring_all_reduce(8, 1e9, _two_level("h800-ib", 1.0))
    assert flow.time_s == pytest.approx(closed.time_s, rel=1e-6)


def test_send_recv_across_nodes_runs_at_nic_speed():
    fab = fabric("multi-plane", 64)
    src = np.arange(64)
    res = network.send_recv(fab, src, (src + 8) % 64, 100 * MB)
    assert res.time_s == pytest.approx(ab.send_recv(100 * MB, _two_level("h800-ib", 1.0), same_node=False), rel=1e-3)


def test_moe_dispatch_of_v3_is_ib_bound():
    """V3's EP64 over 8 nodes, node limit 4: the IB bytes per token over 40 GB/s set the dispatch time."""
    v3 = load_model("deepseek-v3")
    layout = ParallelLayout(tp=1, pp=1, dp=64, ep=64, zero_stage=1, gpus_per_node=8)
    per_token = ep_bytes_per_token_per_layer(v3, layout, node_limit=4)
    tokens = 4096
    fab = fabric("multi-plane", 128)
    dispatch = network.moe_all_to_all(fab, 64, tokens, per_token, "dispatch")
    combine = network.moe_all_to_all(fab, 64, tokens, per_token, "combine")
    ib_s = tokens * per_token["dispatch_ib"] / NODE.scaleout_achieved_bw_bytes_per_s_per_gpu
    assert dispatch.time_s == pytest.approx(ib_s, rel=0.02)
    assert combine.time_s > dispatch.time_s  # bf16 combine carries twice fp8's bytes


def test_bad_collective_input():
    with pytest.raises(ValueError, match="ep=12 must be a multiple"):
        network.moe_all_to_all(fabric("multi-plane", 64), 12, 10, {"dispatch_ib": 1, "dispatch_nvlink": 1})
    with pytest.raises(ValueError, match="unknown ring collective"):
        network.ring_collective(fabric("multi-plane", 64), "broadcast", 64, 1.0)

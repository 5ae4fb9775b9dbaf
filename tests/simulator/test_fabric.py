"""The fast network model (busiest link of the routed transfers) against the flow model, and the analytic
training model reading the topology through it (`simulator.analytic.fabric`)."""

from __future__ import annotations

import numpy as np
import pytest

from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import design_topology
from hwmodels.traffic import all_to_all_legs, forward_legs, moe_transfers
from simulator.analytic.fabric import fabric_factors
from simulator.analytic.report import estimate
from simulator.network import collectives as network
from simulator.network.flows import simulate_flows
from simulator.runspec import v3_pretraining
from workloads.comm import ep_bytes_per_token_per_layer

NODE, SWITCH = load_node("h800-ib"), load_switch("ib-ndr-64")
# every catalog kind as V3's 2,048 GPUs would use it (radix 64), tapered where the kind takes a taper
CATALOG = [
    ("multi-plane", 1.0),
    ("fat-tree-2", 1.0),
    ("fat-tree-2", 3.0),
    ("multi-rail", 1.0),
    ("multi-rail", 3.0),
    ("fat-tree-3", 1.0),
    ("fat-tree-3", 3.0),
    ("slim-fly", 1.0),
    ("dragonfly", 1.0),
]


def fabric(kind, gpus, over=1.0, radix=64):
    planes = 8 if kind in ("multi-plane", "multi-rail") else None
    return build_fabric(design_topology(kind, radix, gpus, planes, over), NODE, SWITCH, gpus)


def flow_and_fast_s(fab, src, dst, size, ecmp):
    flows = network.route_transfers(fab, src, dst, size, ecmp)
    return simulate_flows(flows).makespan_s, network.fast_s(fab, src, dst, size, ecmp)


@pytest.mark.parametrize(("kind", "over"), CATALOG)
def test_fast_model_matches_flow_model_on_v3_dispatch_at_2048_gpus(kind, over):
    """V3's expert dispatch and combine (EP64, every group at once, forwarding) on each catalog topology at
    2,048 GPUs: the busiest link's time is the flow model's makespan within 5% (it is exact on these)."""
    fab = fabric(kind, 2048, over)
    run = v3_pretraining()
    per_token = ep_bytes_per_token_per_layer(run.model, run.layout, 4, "fp8", "bf16")
    for phase in ("dispatch", "combine"):
        src, dst, size = moe_transfers(fab, 64, 4096.0, per_token, phase)
        flow_s, fast = flow_and_fast_s(fab, src, dst, size, "hash")
        assert fast == pytest.approx(flow_s, rel=0.05), (kind, over, phase)


@pytest.mark.parametrize(("kind", "over"), CATALOG)
@pytest.mark.parametrize("ecmp", ["hash", "spray"])
def test_fast_model_matches_flow_model_on_uniform_all_to_all(kind, over, ecmp):
    gpus = 256
    fab = fabric(kind, gpus, over, radix=32 if kind not in ("multi-plane", "multi-rail") else 64)
    src, dst, size = all_to_all_legs(8, gpus, 64e6)
    flow_s, fast = flow_and_fast_s(fab, src, dst, size, ecmp)
    assert fast == pytest.approx(flow_s, rel=0.05), (kind, over, ecmp)


@pytest.mark.parametrize("gpus", [8, 16, 64, 256])
def test_closed_form_all_to_all_legs_are_the_forwarded_transfers(gpus):
    """`all_to_all_legs` builds in O(gpus x (nodes + g)) what forwarding gpus^2 transfers gives, in its order."""
    fab = fabric("multi-plane", gpus if gpus >= 64 else 64)
    src = np.repeat(np.arange(gpus), gpus)
    dst = np.tile(np.arange(gpus), gpus)
    keep = src != dst
    expected = forward_legs(fab, src[keep], dst[keep], np.full(keep.sum(), 1e6 / gpus))
    got = all_to_all_legs(8, gpus, 1e6)
    assert np.array_equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    assert np.allclose(expected[2], got[2], rtol=1e-12)


def test_v3_multi_plane_has_no_switch_bottleneck_and_tapered_trees_do():
    """V3's EP64 groups sit under one leaf of each plane: the NICs are the limit (factor 0, no switch link on
    the path). A single-plane fat tree at 3:1 makes the switches the limit, hash ECMP more than spraying."""
    v3 = fabric_factors(v3_pretraining())
    assert v3.dispatch == v3.combine == 0.0
    hashed = fabric_factors(v3_pretraining(topology="fat-tree-2", oversubscription=3.0))
    sprayed = fabric_factors(v3_pretraining(topology="fat-tree-2", oversubscription=3.0, ecmp="spray"))
    assert hashed.dispatch > sprayed.dispatch > 1.0


def test_estimate_reads_the_topology():
    """The analytic step is no longer topology-blind: FT2 3:1 is slower than V3's multi-plane tree, spraying
    recovers part of it, and a full-bisection tree with spraying costs what the multi-plane tree does."""
    step = {
        (kind, over, ecmp): estimate(v3_pretraining(topology=kind, oversubscription=over, ecmp=ecmp)).step_time_s
        for kind, over, ecmp in [
            ("multi-plane", 1.0, "hash"),
            ("fat-tree-2", 3.0, "hash"),
            ("fat-tree-2", 3.0, "spray"),
            ("fat-tree-2", 1.0, "spray"),
        ]
    }
    plane = step[("multi-plane", 1.0, "hash")]
    assert step[("fat-tree-2", 3.0, "hash")] > step[("fat-tree-2", 3.0, "spray")] > 1.2 * plane
    assert step[("fat-tree-2", 1.0, "spray")] == pytest.approx(plane, rel=0.01)


def test_fast_model_factor_is_the_flow_model_ratio_on_the_run():
    """The factor the training model uses is the flow model's dispatch time over the NIC-only time on the run's
    own fabric (FT2 3:1, hash ECMP, V3's EP64 at 2,048 GPUs)."""
    run = v3_pretraining(topology="fat-tree-2", oversubscription=3.0)
    fab = fabric("fat-tree-2", 2048, 3.0)
    unit = {"dispatch_ib": 1e6, "dispatch_nvlink": 0.0}
    src, dst, size = moe_transfers(fab, 64, 1.0, unit, "dispatch")
    flows = network.route_transfers(fab, src, dst, size, "hash")
    flow_s = (simulate_flows(flows).finish_s - flows.latency_s).max()
    nic_s = 1e6 / NODE.scaleout_achieved_bw_bytes_per_s_per_gpu
    assert fabric_factors(run).dispatch == pytest.approx(flow_s / nic_s, rel=0.05)


@pytest.mark.parametrize(("kind", "gpus", "over"), [("multi-plane", 16384, 1.0), ("fat-tree-3", 4096, 1.0)])
def test_fast_model_matches_flow_model_at_scale(kind, gpus, over):
    """V3's dispatch at the largest scales the flow model runs here in seconds: V3's full 16,384-GPU
    multi-plane tree (229,376 legs) and a 4,096-GPU three-layer tree with hash collisions."""
    fab = fabric(kind, gpus, over)
    run = v3_pretraining()
    per_token = ep_bytes_per_token_per_layer(run.model, run.layout, 4, "fp8", "bf16")
    src, dst, size = moe_transfers(fab, 64, 4096.0, per_token, "dispatch")
    flow_s, fast = flow_and_fast_s(fab, src, dst, size, "hash")
    assert fast == pytest.approx(flow_s, rel=0.05)


@pytest.mark.parametrize(
    ("kind", "over"), [("multi-plane", 1.0), ("fat-tree-2", 3.0), ("fat-tree-3", 3.0), ("slim-fly", 1.0)]
)
@pytest.mark.parametrize("ecmp", ["hash", "spray"])
def test_the_all_to_all_routed_a_block_at_a_time_is_the_whole_one(kind, over, ecmp, monkeypatch):
    """fast_all_to_all_s (legs built and routed per block of senders, bounded memory: 16,384 GPUs run) = fast_s
    of every leg at once: the same paths (the ECMP hash numbers the cross-node legs across blocks) and time."""
    fab = fabric(kind, 512, over)
    whole = network.fast_s(fab, *network.all_to_all_transfers(fab, 512, 64e6), ecmp)
    monkeypatch.setattr(network, "FAST_CHUNK_LEGS", 500)  # about 7 senders per block: 74 blocks
    assert network.fast_all_to_all_s(fab, 512, 64e6, True, ecmp) == pytest.approx(whole, rel=1e-12)  # sum order
    whole_legs = all_to_all_legs(8, 512, 64e6)
    part = all_to_all_legs(8, 512, 64e6, range(40, 97))
    at = (whole_legs[0] >= 40) & (whole_legs[0] < 97)
    assert all(np.array_equal(w[at], p) for w, p in zip(whole_legs, part, strict=True))

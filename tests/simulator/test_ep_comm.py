"""Drawn expert loads and their all-to-alls on the fabric (`simulator.events.ep_comm`, `hwmodels.traffic`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.traffic import moe_transfers
from simulator.analytic.fabric import run_fabric
from simulator.analytic.profile import rates_for
from simulator.analytic.training import resolved, stage_times
from simulator.events.ep_comm import PHASES, Routing, draw_gpu_loads, ep_traffic
from simulator.runspec import v3_pretraining
from workloads.comm import ep_bytes_per_token_per_layer
from workloads.layout import stage_blocks

SMALL = {"gpus": 512, "pp": 4, "global_batch_tokens": 2048 * 4096}  # V3 at 512 GPUs: EP64 x 2 groups per stage
PER_TOKEN = {"dispatch": 3.0, "dispatch_ib": 1.0, "dispatch_nvlink": 2.0, "combine": 6.0}
PER_TOKEN |= {"combine_ib": 2.0, "combine_nvlink": 4.0}


@pytest.fixture(scope="module")
def fabric():
    return run_fabric(v3_pretraining(**SMALL))


def _sent(src, size, gpus):
    return np.bincount(src, weights=size, minlength=gpus)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.0, 3.0))
def test_loads_move_bytes_to_busy_gpus_but_each_sender_sends_its_share(fabric, seed, cv):
    rng = np.random.default_rng(seed)
    load = draw_gpu_loads(rng, fabric.gpus // 64, 64, 256, 64 * 1000 * 8, cv).ravel()
    assert np.allclose(load.reshape(-1, 64).mean(axis=1), 1.0)
    src, dst, size = moe_transfers(fabric, 64, 1000.0, PER_TOKEN, "dispatch", load)
    *_, even_size = moe_transfers(fabric, 64, 1000.0, PER_TOKEN, "dispatch")
    g = fabric.node.gpus_per_node
    cross = src // g != dst // g
    # network bytes leave each GPU as the per-token figure says, whatever the loads
    assert np.allclose(_sent(src[cross], size[cross], fabric.gpus), 1000.0 * PER_TOKEN["dispatch_ib"])
    assert size.sum() == pytest.approx(even_size.sum(), rel=1e-9)
    # the network bytes a node receives follow its load
    node_in = np.bincount(dst[cross] // g, weights=size[cross], minlength=fabric.gpus // g)
    node_load = load.reshape(-1, g).sum(axis=1)
    hot, cold = node_load.argmax(), node_load.argmin()
    assert node_in[hot] >= node_in[cold] - 1e-6


def test_uniform_loads_are_the_even_all_to_all(fabric):
    a = moe_transfers(fabric, 64, 4096.0, PER_TOKEN, "combine", np.ones(fabric.gpus))
    b = moe_transfers(fabric, 64, 4096.0, PER_TOKEN, "combine")
    for x, y in zip(a, b, strict=True):
        assert np.allclose(x, y)


def test_draws_are_seeded_and_spread_with_cv():
    def spread(cv, seed):
        return draw_gpu_loads(np.random.default_rng(seed), 4, 64, 256, 64 * 4096 * 8, cv).max()

    assert spread(0.5, 1) == spread(0.5, 1)
    assert draw_gpu_loads(np.random.default_rng(0), 4, 64, 256, 10, None).max() == 1.0
    assert 1.0 < spread(0.0, 0) < 1.05  # a balanced router: only the multinomial noise of 2M routed tokens
    assert spread(0.0, 0) < spread(0.3, 0) < spread(1.0, 0)


def test_uniform_flow_phases_equal_the_analytic_per_layer_times():
    # Multi-plane, uniform loads: every NIC carries its share at full rate, as the closed form assumes; the
    # flow model adds the switch hops' latency (< 0.1%).
    run = v3_pretraining(**SMALL)
    rates = rates_for(None, run.node.gpu)
    run = resolved(run, rates)
    traffic = ep_traffic(run, Routing(expert_cv=None, samples=1))
    t = stage_times(run, rates, 1)
    layers = sum(stage_blocks(run.model, run.layout, 1, include_mtp=True))
    for phase in PHASES:
        assert traffic.phase_s[phase][0, 1] == pytest.approx(getattr(t, phase) / layers, rel=1e-3)
    assert (traffic.max_load == 1).all()


def test_backward_phases_scale_the_forward_flows_by_their_bytes():
    run = v3_pretraining(**SMALL)
    traffic = ep_traffic(run, Routing(expert_cv=0.5, samples=2, seed=3))
    fwd = ep_bytes_per_token_per_layer(run.model, run.layout, run.node_limit, "fp8", "bf16")
    bwd = ep_bytes_per_token_per_layer(run.model, run.layout, run.node_limit, "bf16", "bf16")
    assert traffic.backward_scale["dispatch"] == pytest.approx(bwd["dispatch"] / fwd["dispatch"])
    # bf16 gradients on the dispatch pattern take longer than its fp8 forward
    assert (traffic.phase_s["combine_b"][:, 1:] > traffic.phase_s["dispatch_f"][:, 1:]).all()
    assert (traffic.max_load[:, 1:] > 1).all()


def test_no_expert_parallelism_is_a_clear_error():
    with pytest.raises(ValueError, match="no expert-parallel all-to-all"):
        ep_traffic(v3_pretraining(**SMALL, ep=1), Routing())


@pytest.mark.parametrize(("cv", "samples"), [(-0.1, 8), (0.0, 0), (0.0, 65)])
def test_bad_routing_is_refused(cv, samples):
    with pytest.raises(ValueError):
        Routing(expert_cv=cv, samples=samples)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([2, 4]), st.integers(0, 2**31), st.floats(0.0, 3.0))
def test_an_ep_group_inside_a_node_moves_nvlink_copies_to_its_own_gpus(ep, seed, cv):
    """EP smaller than a node (V3 at EP4 on 8-GPU nodes, EP2 on a GB200 rack): each GPU sends its tokens'
    NVLink copies to the other GPUs of its group alone, by their load; nothing crosses a NIC."""
    fabric = run_fabric(v3_pretraining(gpus=64, pp=4, ep=ep, global_batch_tokens=2048 * 4096))
    load = draw_gpu_loads(np.random.default_rng(seed), fabric.gpus // ep, ep, 256, ep * 1000 * 8, cv).ravel()
    src, dst, size = moe_transfers(fabric, ep, 1000.0, PER_TOKEN, "dispatch", load)
    assert (src // ep == dst // ep).all() and (src != dst).all()
    assert np.allclose(_sent(src, size, fabric.gpus), 1000.0 * PER_TOKEN["dispatch_nvlink"])
    back = moe_transfers(fabric, ep, 1000.0, PER_TOKEN, "combine", load)
    assert (back[0] // ep == back[1] // ep).all()
    with pytest.raises(ValueError, match="ep=3 must divide or be a multiple of 8 GPUs per node"):
        moe_transfers(fabric, 3, 1000.0, PER_TOKEN, "dispatch")


def test_the_event_model_runs_ep_inside_a_node_beside_the_analytic_one():
    """`v3sim simulate --gpu gb200` (EP2 inside NVL72 racks) and V3 at EP4 were refused ("ep must be a multiple
    of the GPUs per node"); their all-to-alls now run on NVLink in the flow model, near the analytic step."""
    from simulator.events.simulate import simulate

    sim = simulate(v3_pretraining(gpus=512, pp=4, ep=4, global_batch_tokens=2048 * 4096))
    assert sim.step_time_s == pytest.approx(sim.analytic_step_time_s, rel=0.05)
    kinds = {kind for kind, u in sim.to_dict()["link_utilization"].items() if u["max"] > 0}
    assert kinds == {"nvlink-up", "nvlink-down"}

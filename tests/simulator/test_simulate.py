"""`simulate(run)` and `v3sim simulate`: the event model on the analytic model's stage times."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.events.ep_comm import Routing
from simulator.events.simulate import Stragglers, simulate
from simulator.runspec import v3_pretraining

SMALL = {"gpus": 512, "pp": 4, "global_batch_tokens": 2048 * 4096}  # V3 at 512 GPUs, PP4 DualPipe, EP64


@pytest.fixture(scope="module")
def v3_sim():
    return simulate(v3_pretraining())


def test_v3_dualpipe_step_is_deterministic_and_adds_up(v3_sim):
    again = simulate(v3_pretraining())
    assert again.step_time_s == v3_sim.step_time_s
    assert v3_sim.step_time_s == pytest.approx(v3_sim.pipeline_s + v3_sim.dp_and_optimizer_s)
    assert len(v3_sim.timeline.events) == len(again.timeline.events) > 120


def test_dualpipe_event_model_stays_near_the_rank_average(v3_sim):
    # The analytic model averages each DualPipe rank's two stages; the event model pairs their real chunks, so
    # the two differ by how even the balancer's split is: a few percent either way (docs/events.md).
    assert 0.95 < v3_sim.step_time_s / v3_sim.analytic_step_time_s < 1.12


def test_1f1b_overlaps_sends_the_analytic_model_counts_exposed():
    sim = simulate(v3_pretraining(schedule="1f1b"))
    assert 0.9 < sim.step_time_s / sim.analytic_step_time_s < 1.0


def test_cli_writes_a_perfetto_trace(capsys, tmp_path):
    trace = tmp_path / "step.json"
    assert main(["simulate", "--schedule", "zb1p", "--json", "--trace", str(trace)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"step_time_s", "analytic_step_time_s", "difference", "idle_s", "ops"} <= set(out)
    events = json.loads(trace.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert sum(e["ph"] == "X" for e in events) == out["events"] > out["ops"]
    assert {e["tid"] for e in events if e["ph"] == "X"} == {0, 1}  # compute and EP communication lanes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--schedule", "dualpipev"], "does not run dualpipev yet"),
        (["--schedule", "interleaved", "--virtual-stages", "2"], "divisible by pp=16"),
        (["--trace", "/nonexistent/dir/x.json"], "the folder /nonexistent/dir does not exist"),
        (["--network", "analytic", "--links", "x.csv"], "--links needs the flow network"),
        (["--straggler-slowdown", "0.5"], "slowdown=0.5 must be in [1, 100]"),
    ],
)
def test_bad_simulations_are_one_line_errors(capsys, argv, message):
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# --- the flow network, drawn loads and stragglers -----------------------------------------------------------


def test_uniform_loads_on_the_flow_network_are_the_analytic_network(v3_sim):
    closed = simulate(v3_pretraining(), network="analytic")
    flow = simulate(v3_pretraining(), routing=Routing(expert_cv=None))
    assert flow.step_time_s == pytest.approx(closed.step_time_s, rel=1e-3)  # only switch-hop latency differs
    assert v3_sim.step_time_s >= flow.step_time_s  # a balanced router's multinomial noise costs a little


def test_same_seed_same_step_other_seed_other_step():
    run = v3_pretraining(**SMALL)
    one, two, other = (simulate(run, routing=Routing(0.5, 4, seed)) for seed in (7, 7, 8))
    assert one.step_time_s == two.step_time_s
    assert one.timeline.events.equals(two.timeline.events)
    assert other.step_time_s != one.step_time_s


def test_expert_imbalance_makes_the_event_model_slower_than_the_analytic_one():
    run = v3_pretraining(**SMALL)
    steps = [simulate(run, routing=Routing(cv, 4)).step_time_s for cv in (None, 0.0, 0.5, 1.0)]
    analytic = simulate(run, network="analytic").analytic_step_time_s
    assert steps == sorted(steps)
    assert steps[2] > 1.1 * analytic  # docs/events.md: what the analytic model cannot see


@pytest.fixture(scope="module")
def tapered():
    return simulate(v3_pretraining(**SMALL, topology="fat-tree-2", oversubscription=3.0), routing=Routing(None, 1))


def test_an_oversubscribed_fat_tree_slows_both_models_alike(tapered):
    """The event model runs the all-to-alls flow by flow on the 3:1 tree; the analytic model prices them by
    the busiest link of the same routed pattern (`simulator.analytic.fabric`): both see the taper, and agree
    within 10% (before the fast model, the analytic step was 30% short of the event one here)."""
    full = simulate(v3_pretraining(**SMALL, topology="fat-tree-2"), routing=Routing(None, 1))
    assert tapered.step_time_s > 1.3 * full.step_time_s
    assert tapered.analytic_step_time_s > 1.3 * full.analytic_step_time_s
    assert tapered.step_time_s == pytest.approx(tapered.analytic_step_time_s, rel=0.10)


def test_link_loads_respect_capacity_and_topology(v3_sim, tapered):
    for sim in (v3_sim, tapered):
        assert sim.links["utilization"].max() <= 1 + 1e-9
    # multi-plane: an EP group's 8 nodes share each plane's leaf, so no EP byte crosses a spine
    assert v3_sim.links.query("kind == 'switch'")["bytes"].sum() == 0
    assert tapered.link_summary()["switch"]["max"] > 0.3
    assert set(v3_sim.link_summary()) == {"nic-up", "nic-down", "nvlink-up", "nvlink-down"}


def test_stragglers_slow_their_ranks_by_at_most_their_factor():
    run = v3_pretraining(**SMALL)
    base = simulate(run, network="analytic")
    assert simulate(run, network="analytic", stragglers=Stragglers(0.0, 2.0)).step_time_s == base.step_time_s
    every = simulate(run, network="analytic", stragglers=Stragglers(1.0, 1.5))
    assert every.slow_ranks == (0, 1, 2, 3)
    assert base.pipeline_s < every.pipeline_s <= 1.5 * base.pipeline_s + 1e-9
    some = simulate(run, network="analytic", stragglers=Stragglers(0.003, 1.5), routing=Routing(seed=1))
    assert 0 < len(some.slow_ranks) < 4 and base.pipeline_s < some.pipeline_s < every.pipeline_s


def test_communication_spans_lie_inside_their_ops(v3_sim):
    events = v3_sim.timeline.events
    comm, compute = events[events["stream"] == "comm"], events[events["stream"] == "compute"]
    assert len(comm) > 0 and set(comm["op"]) == {"dispatch_f", "combine_f", "dispatch_b", "combine_b"}
    spans = compute.set_index(["rank", "label"])
    for row in comm.itertuples():
        op = spans.loc[(row.rank, row.label.split(" ", 1)[1])]
        assert op["start_s"] - 1e-12 <= row.start_s < row.end_s <= op["end_s"] + 1e-12
    assert np.allclose(v3_sim.timeline.comm_s, comm.assign(d=comm.end_s - comm.start_s).groupby("rank")["d"].sum())


def test_a_bad_expert_cv_is_a_usage_error(capsys):
    assert main(["simulate", "--expert-cv", "lots"]) == 2
    err = capsys.readouterr().err
    assert "or 'uniform'" in err and err.count("\n") == 1


def test_cli_writes_link_loads(capsys, tmp_path):
    links = tmp_path / "links.csv"
    argv = ["simulate", "--gpus", "512", "--pp", "4", "--global-batch-tokens", str(2048 * 4096), "--json"]
    assert main([*argv, "--expert-cv", "0.3", "--samples", "2", "--seed", "5", "--links", str(links)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["seed"], out["expert_cv"], out["network"]) == (5, 0.3, "flow")
    header = links.read_text().splitlines()[0]
    assert header == "link,kind,bytes,utilization"


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**16), st.floats(0.0, 1.0))
def test_drawn_loads_never_beat_uniform_and_links_stay_within_capacity(seed, cv):
    run = v3_pretraining(**SMALL)
    sim = simulate(run, routing=Routing(cv, 2, seed))
    assert sim.step_time_s >= _uniform_small().step_time_s - 1e-9
    assert sim.links["utilization"].max() <= 1 + 1e-9
    assert max(sim.timeline.busy_s) <= sim.pipeline_s + 1e-9


@functools.cache
def _uniform_small():
    return simulate(v3_pretraining(**SMALL), routing=Routing(None, 1))

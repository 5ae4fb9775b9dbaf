"""Goodput (issue 24, the engine): failure rates from Llama 3's published interruptions, the closed form of a
run with checkpoints, failures and restarts (Daly 2006), its optimal interval, and the event form's draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.reliability import load_failure_rates
from simulator.analytic.goodput import (
    expected_wall_s,
    goodput,
    optimal_interval_s,
    young_daly_interval_s,
)
from simulator.events.goodput import draw_runs

HOUR, DAY = 3600.0, 86400.0


def test_rates_reproduce_llama3s_interruptions():
    """419 unexpected interruptions in 54 days on 16,384 H100s (Llama 3, table 5): one every 3.09 hours."""
    rates = load_failure_rates("llama3-405b")
    assert rates.mtbf_s(16384, 8) / HOUR == pytest.approx(54 * 24 / 419, rel=1e-12)
    assert rates.mtbf_s(2048, 8) == pytest.approx(8 * rates.mtbf_s(16384, 8), rel=1e-12)  # linear in the job
    gpu_share = rates.per_gpu_s["gpu"] / (sum(rates.per_gpu_s.values()) + sum(rates.per_node_s.values()) / 8)
    assert gpu_share == pytest.approx(268 / 419, rel=1e-12)  # GPU, HBM and SDC faults: 64% of them
    assert math.isinf(rates.scaled(0).mtbf_s(2048, 8))


def test_nothing_failing_costs_only_the_checkpoint_writes():
    nothing = load_failure_rates().scaled(0).mtbf_s(2048, 8)
    run = goodput(30 * DAY, checkpoint_s=120.0, restart_s=900.0, mtbf_s=nothing, interval_s=HOUR)
    assert run.expected_failures == 0 and run.breakdown_s["lost_work"] == 0 and run.breakdown_s["restarts"] == 0
    assert run.expected_s == pytest.approx(30 * DAY + 30 * 24 * 120.0)
    assert goodput(30 * DAY, 0.0, 900.0, nothing).goodput == 1.0  # free checkpoints, nothing fails: all work


@given(
    st.floats(1.0, 3600.0),  # checkpoint seconds
    st.floats(600.0, 30 * DAY),  # MTBF
    st.floats(0.0, 3600.0),  # restart seconds
    st.sampled_from([0.5, 0.8, 0.95, 0.99, 1.01, 1.05, 1.25, 2.0]),
)
@settings(max_examples=300, deadline=None)
def test_the_optimal_interval_minimises_the_expected_time(checkpoint_s, mtbf_s, restart_s, factor):
    """No interval nearby does better than optimal_interval_s per unit of work (runs of whole segments), and
    Daly's higher-order estimate is within 1% of it while the checkpoint is short beside the MTBF."""
    best = optimal_interval_s(checkpoint_s, mtbf_s)

    def per_work(tau: float) -> float:
        return expected_wall_s(1000 * tau, tau, checkpoint_s, restart_s, mtbf_s) / (1000 * tau)

    assert per_work(best) <= per_work(best * factor) * (1 + 1e-9)
    if checkpoint_s < 0.01 * mtbf_s:
        assert young_daly_interval_s(checkpoint_s, mtbf_s) == pytest.approx(best, rel=0.01)


@pytest.mark.parametrize(("mtbf_h", "checkpoint_s", "restart_s", "days"), [(24.7, 300, 600, 10), (3.09, 60, 900, 3)])
def test_the_event_form_matches_the_closed_form_on_the_mean(mtbf_h, checkpoint_s, restart_s, days):
    run = goodput(days * DAY, checkpoint_s, restart_s, mtbf_h * HOUR)
    draws = draw_runs(days * DAY, run.interval_s, checkpoint_s, restart_s, mtbf_h * HOUR, runs=300, seed=3)
    assert draws.wall_s.mean() == pytest.approx(run.expected_s, rel=0.02)
    assert draws.failures.mean() == pytest.approx(run.expected_failures, rel=0.05)
    assert draws.percentile_s(10) < run.expected_s < draws.percentile_s(90)


def test_the_same_seed_draws_the_same_runs():
    args = (2 * DAY, HOUR, 120.0, 600.0, 5 * HOUR)
    a, b, c = draw_runs(*args, runs=20, seed=7), draw_runs(*args, runs=20, seed=7), draw_runs(*args, runs=20, seed=8)
    assert np.array_equal(a.wall_s, b.wall_s) and np.array_equal(a.failures, b.failures)
    assert not np.array_equal(a.wall_s, c.wall_s)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(ValueError, match="interval_s=0"):
        expected_wall_s(DAY, 0.0, 60.0, 60.0, HOUR)
    with pytest.raises(ValueError, match="mtbf_s=-1"):
        goodput(DAY, 60.0, 60.0, -1.0)
    with pytest.raises(ValueError, match="no failure statistics named 'x'"):
        load_failure_rates("x")
    with pytest.raises(ValueError, match="factor"):
        load_failure_rates().scaled(math.nan)


def _train_json(capsys, *argv: str) -> dict:
    import json

    from simulator.cli import main

    assert main(["train", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_train_reports_the_expected_run_beside_the_steady_state(capsys):
    """`v3sim train` adds the expected figures by default; --goodput off gives the steady state exactly."""
    on = _train_json(capsys)
    off = _train_json(capsys, "--goodput", "off")
    g = on["goodput"]
    assert "goodput" not in off and off["gpu_hours"] == on["gpu_hours"]
    assert g["expected_gpu_hours"] > on["gpu_hours"] and 0.9 < g["goodput"] < 1
    assert g["expected_gpu_hours"] == pytest.approx(on["gpu_hours"] / g["goodput"], rel=1e-12)
    assert g["mtbf_hours"] == pytest.approx(8 * 54 * 24 / 419, rel=1e-12)  # 2,048 GPUs: Llama 3's rate
    # the checkpoint: 682.6B parameters (MTP included) x (2 bf16 weight + 4 fp32 master + 2 x 2 bf16 Adam moments)
    assert g["checkpoint_bytes"] == pytest.approx(682.6e9 * 10, rel=1e-4)
    never = _train_json(capsys, "--failure-scale", "0")["goodput"]
    assert never["expected_failures"] == 0 and never["breakdown_hours"]["lost_work"] == 0
    slow = _train_json(capsys, "--restart-s", "3600", "--storage", "tectonic")["goodput"]
    assert slow["goodput"] < g["goodput"] and slow["restart_s"] > 3600


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--storage", "s3"], "no checkpoint storage named 's3'"), (["--failure-scale", "-1"], "failure-scale")],
)
def test_bad_goodput_options_are_one_line_errors(capsys, argv, message):
    from simulator.cli import main

    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_drawn_runs_band_the_expected_run(capsys):
    """`--goodput-draws N`: P10 <= P50 <= P90 from whole runs drawn in SimPy, around the closed form's mean."""
    g = _train_json(capsys, "--goodput-draws", "60", "--failure-scale", "8")["goodput"]
    d = g["draws"]
    assert d["runs"] == 60 and d["days"]["p10"] <= d["days"]["p50"] <= d["days"]["p90"]
    assert d["mean_days"] == pytest.approx(g["expected_days"], rel=0.02)
    assert d["gpu_hours"]["p50"] == pytest.approx(g["expected_gpu_hours"], rel=0.02)
    from simulator.cli import main

    assert main(["train", "--goodput-draws", "100000"]) == 2  # bounded


def test_a_sweep_takes_the_goodput_inputs_as_axes(capsys):
    """failure_scale, storage, restart_s and checkpoint_interval_min are sweep inputs, evaluated on arrays after
    the model run (one run for all of them); each row's expected figures are `v3sim train`'s to 1e-12."""
    from simulator.explore.sweep import run_sweep
    from simulator.explore.sweepspec import sweep_from_dict

    spec = sweep_from_dict(
        {
            "axes": {
                "failure_scale": [0.0, 1.0, 4.0],
                "storage": ["3fs", "tectonic", "s3"],
                "restart_s": [150.0, 900.0],
                "checkpoint_interval_min": [30.0],
            },
            "objectives": {"expected_gpu_hours": "min"},
        }
    )
    frame = run_sweep(spec, processes=1)
    assert (frame["storage"] == "s3").eq(~frame["valid"]).all()
    assert frame.loc[~frame["valid"], "reason"].str.startswith("storage='s3'; use one of").all()
    ok = frame[frame["valid"]]
    row = ok[(ok["failure_scale"] == 4.0) & (ok["storage"] == "tectonic") & (ok["restart_s"] == 900.0)].iloc[0]
    cli = _train_json(
        capsys, "--failure-scale", "4", "--storage", "tectonic", "--restart-s", "900", "--checkpoint-interval-min", "30"
    )["goodput"]
    for column, key in (
        ("goodput", "goodput"),
        ("expected_gpu_hours", "expected_gpu_hours"),
        ("expected_days", "expected_days"),
    ):
        assert row[column] == pytest.approx(cli[key], rel=1e-12), column
    by_scale = ok[(ok["storage"] == "3fs") & (ok["restart_s"] == 150.0)].set_index("failure_scale")["goodput"]
    assert by_scale[0.0] > by_scale[1.0] > by_scale[4.0]
    assert ok["step_time_s"].nunique() == 1  # the model ran once for every goodput input


def test_a_sweep_finds_the_optimal_interval_per_row(capsys):
    from simulator.explore.sweep import run_sweep
    from simulator.explore.sweepspec import sweep_from_dict

    frame = run_sweep(sweep_from_dict({"axes": {"gpus": [1024, 4096]}}), processes=1)
    for gpus, row in frame.set_index("gpus").iterrows():
        cli = _train_json(capsys, "--gpus", str(gpus))["goodput"]
        assert row["goodput"] == pytest.approx(cli["goodput"], rel=1e-12)
        assert row["mtbf_hours"] == pytest.approx(cli["mtbf_hours"], rel=1e-12)


# --- asynchronous checkpoints and hot spares ---


def test_an_async_checkpoint_is_daly_with_the_write_on_every_restart_and_the_end():
    """Async: training pauses for the snapshot; a failure loses back to the last checkpoint written, one write
    further back: under exponential failures, exactly Daly's form with the write added to the restart and
    to the run's last segment. With nothing failing it costs the pauses and the last write alone."""
    work, pause, write, restart, mtbf = 10 * DAY, 0.5, 30.0, 600.0, 24.7 * HOUR
    never = expected_wall_s(work, HOUR, pause, restart + write, math.inf, tail_s=write)
    assert never == pytest.approx(work + 240 * pause + write, rel=1e-12)
    run = goodput(work, pause, restart + write, mtbf, tail_s=write, min_interval_s=write - pause)
    sync = goodput(work, write, restart, mtbf)
    assert run.expected_s < sync.expected_s  # a 0.5 s pause beats a 30 s one, even losing a write per failure
    assert sum(run.breakdown_s.values()) == pytest.approx(run.expected_s - work, rel=1e-9)
    draws = draw_runs(work, run.interval_s, pause, restart + write, mtbf, runs=300, seed=5, tail_s=write)
    assert draws.wall_s.mean() == pytest.approx(run.expected_s, rel=0.02)


def test_async_checkpoints_in_train(capsys):
    """V3 on 3FS: the fullest GPU's 13.8 GB of weights and optimizer states over 64 GB/s of PCIe pause it
    0.22 s instead of the 2.8 s write; goodput rises; an interval shorter than the write is refused."""
    sync = _train_json(capsys)["goodput"]
    g = _train_json(capsys, "--checkpointing", "async")["goodput"]
    assert g["checkpointing"] == "async" and g["checkpoint_write_s"] == pytest.approx(sync["checkpoint_s"])
    assert g["checkpoint_s"] == pytest.approx(13.79e9 / 64e9, rel=0.01)
    assert g["tail_s"] == g["checkpoint_write_s"] and g["restart_s"] == pytest.approx(sync["restart_s"] + g["tail_s"])
    assert g["goodput"] > sync["goodput"] and g["checkpoint_interval_min"] < sync["checkpoint_interval_min"]
    from simulator.cli import main

    assert main(["train", "--checkpointing", "async", "--checkpoint-interval-min", "0.01"]) == 2
    assert "asynchronous write" in capsys.readouterr().err


@given(st.floats(1e-4, 50.0), st.integers(0, 60))
@settings(max_examples=200, deadline=None)
def test_each_spare_makes_a_shortfall_rarer(load, spares):
    """Erlang B falls with every spare and lies in [0, 1]; `spares_for` is the first count under its target."""
    from simulator.analytic.spares import shortfall_probability, spares_for

    rate, repair = load / DAY, DAY
    b, more = shortfall_probability(spares, rate, repair), shortfall_probability(spares + 1, rate, repair)
    assert 0 <= more <= b <= 1 and (more < b or more == 0)  # strictly, until it underflows (load 1e-4, 60 spares)
    k = spares_for(0.01, rate, repair)
    assert shortfall_probability(k, rate, repair) <= 0.01
    assert k == 0 or shortfall_probability(k - 1, rate, repair) > 0.01


def test_with_no_spare_a_node_failure_waits_for_its_own_repair():
    from simulator.analytic.spares import wait_per_node_failure_s

    assert wait_per_node_failure_s(0, 1 / DAY, 12 * HOUR) == 12 * HOUR
    assert wait_per_node_failure_s(3, 0.0, 12 * HOUR) == 0.0  # nothing fails: spares never run out


@pytest.mark.parametrize(
    ("mtbf_h", "days", "spares", "repair_h"),
    [(24.7, 60, 0, 12), (24.7, 60, 2, 24), (6.0, 30, 3, 12), (3.09, 20, 8, 24)],
)
def test_the_event_form_matches_the_closed_form_with_hot_spares(mtbf_h, days, spares, repair_h):
    """A pool drawn node by node (each failure takes a node out with probability 0.77, Llama 3's GPU and host
    share; exponential repairs; the job waits while more are out than spares) against the closed form's
    Erlang-B wait: the means agree within 2% (measured 0.05-0.9%)."""
    from simulator.analytic.spares import wait_per_node_failure_s
    from simulator.events.goodput import NodePool

    mtbf, share = mtbf_h * HOUR, 0.77
    pool = NodePool(spares, repair_h * HOUR, share)
    wait = share * wait_per_node_failure_s(spares, share / mtbf, pool.repair_s)
    run = goodput(days * DAY, 1.0, 303.0, mtbf, None, 3.0, wait)
    draws = draw_runs(days * DAY, run.interval_s, 1.0, 303.0, mtbf, runs=200, seed=3, tail_s=3.0, pool=pool)
    assert draws.wall_s.mean() == pytest.approx(run.expected_s, rel=0.02)
    assert run.breakdown_s["waiting_for_nodes"] == pytest.approx(run.expected_failures * wait, rel=1e-12)


def test_hot_spares_in_train(capsys):
    """--spare-nodes K: a dedicated pool; the spares' idle GPU-hours are billed, a node failure waits when
    none is free; more spares wait less; none at all waits a whole repair per node failure."""
    base = _train_json(capsys)
    none, two, eight = (_train_json(capsys, "--spare-nodes", str(k))["goodput"] for k in (0, 2, 8))
    assert none["spares"]["shortfall_probability"] == 1 and none["spares"]["idle_gpu_hours"] == 0
    assert none["breakdown_hours"]["waiting_for_nodes"] > two["breakdown_hours"]["waiting_for_nodes"] > 0
    assert eight["expected_days"] < two["expected_days"] < none["expected_days"]
    assert two["spares"]["idle_gpu_hours"] == pytest.approx(2 * 8 * two["expected_days"] * 24, rel=1e-12)
    steady_share = base["gpu_hours"] / two["goodput"]
    assert two["expected_gpu_hours"] == pytest.approx(steady_share + two["spares"]["idle_gpu_hours"], rel=1e-12)
    slow = _train_json(capsys, "--spare-nodes", "2", "--repair-h", "72")["goodput"]
    assert slow["goodput"] < two["goodput"]
    from simulator.cli import main

    for argv, message in ((["--repair-h", "3"], "give --spare-nodes"), (["--spare-nodes", "-1"], "spare nodes=-1")):
        assert main(["train", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_drawn_runs_with_spares_and_async_band_the_expected_run(capsys):
    g = _train_json(
        capsys, "--goodput-draws", "80", "--failure-scale", "8", "--spare-nodes", "3", "--checkpointing", "async"
    )["goodput"]
    assert g["draws"]["mean_days"] == pytest.approx(g["expected_days"], rel=0.03)


def test_a_sweep_takes_checkpointing_and_spares_as_axes(capsys):
    """checkpointing, spare_nodes and repair_h are sweep inputs; rows equal `v3sim train`'s to 1e-12; an async
    row with an interval shorter than its write, or an unknown mode, is invalid with the reason."""
    from simulator.explore.sweep import run_sweep
    from simulator.explore.sweepspec import sweep_from_dict

    axes = {
        "checkpointing": ["sync", "async", "bogus"],
        "spare_nodes": [0, 2],
        "repair_h": [48.0],
        "checkpoint_interval_min": [0.01, 30.0],
    }
    frame = run_sweep(sweep_from_dict({"axes": axes}), processes=1)
    bad = frame[~frame["valid"]]
    assert set(bad["checkpointing"]) == {"async", "bogus"} and len(bad) == 4 + 2
    assert bad["reason"].str.contains("asynchronous write|use one of sync, async").all()
    ok = frame[frame["valid"]].set_index(["checkpointing", "spare_nodes", "checkpoint_interval_min"])
    for mode, spares in (("async", 2), ("sync", 0)):
        cli = _train_json(
            capsys, "--checkpointing", mode, "--spare-nodes", str(spares), "--repair-h", "48",
            "--checkpoint-interval-min", "30",
        )["goodput"]  # fmt: skip
        row = ok.loc[(mode, spares, 30.0)]
        for column in ("goodput", "expected_gpu_hours", "expected_cost_usd", "expected_days"):
            assert row[column] == pytest.approx(cli[column], rel=1e-12), column

"""v3sim's speed against the published runs by regime (`simulator.explore.validate.regime_summary`): how far
and which way v3sim has been off on runs like a given one."""

from __future__ import annotations

import pytest

from simulator.cli.train import print_validate
from simulator.explore.validate import published_runs, regime_summary, speed_error, training_run_rows


def row(regime: str, rel: float, ok: bool, time: bool = False) -> dict[str, object]:
    return {"regime": regime, "rel_error": rel, "ok": ok, "time_metric": time}


def test_a_times_error_is_inverted_into_a_speed():
    assert speed_error(row("r", 0.2, False)) == pytest.approx(0.2)  # a rate 20% high: 20% fast
    assert speed_error(row("r", -0.2, False, time=True)) == pytest.approx(0.25)  # GPU-hours 20% short: 25% fast
    assert speed_error(row("r", 0.25, False, time=True)) == pytest.approx(-0.2)


def test_the_summary_counts_each_regime_and_leaves_other_rows_out():
    rows = [
        row("training, Hopper, MoE", 0.1, True),
        row("training, Hopper, MoE", -0.5, False, time=True),  # +100% fast
        row("training, Hopper, MoE", 0.3, False),
        row("serving, Blackwell, dense", -0.05, True),
        {"figure": "V3 total parameters", "rel_error": 0.0, "ok": True},  # no regime: not a run
    ]
    assert regime_summary(rows) == [
        {"regime": "serving, Blackwell, dense", "rows": 1, "within": 1, "median_speed_error": -0.05,
         "min_speed_error": -0.05, "max_speed_error": -0.05},
        {"regime": "training, Hopper, MoE", "rows": 3, "within": 1, "median_speed_error": 0.3,
         "min_speed_error": 0.1, "max_speed_error": 1.0},
    ]  # fmt: skip


def test_every_published_training_run_has_its_regime(capsys):
    rows = training_run_rows()
    assert len(rows) == len(published_runs())
    regimes = {r["figure"]: r["regime"] for r in rows}
    assert regimes["V3 pre-training H800 GPU-hours"] == "training, Hopper, MoE"
    assert all(r["time_metric"] == ("GPU-hours" in r["figure"]) for r in rows)
    summary = regime_summary(rows)
    assert sum(g["rows"] for g in summary) == len(rows)
    assert {g["regime"].split(", ")[1] for g in summary} <= {"Hopper", "Blackwell", "Ampere", "MI300X"}
    print_validate(rows)
    text = capsys.readouterr().out
    assert "v3sim's speed against the published runs" in text and "training, Hopper, MoE" in text

"""Sweeps over a run plan (issue 26): axes that set the plan's run options or a phase's inputs, each point the
whole plan priced; bad sweeps are one-line errors, points the model refuses are kept with the reason."""

from __future__ import annotations

import json

import pytest

from simulator.analytic.runplan import price_plan
from simulator.cli import main
from simulator.explore.plansweep import plan_sweep_from_dict, point_plan, run_plan_sweep
from simulator.runplan import load_plan_data, plan_from_dict


def test_each_point_is_its_plan_priced_whole():
    spec = plan_sweep_from_dict(
        {"plan": "deepseek-v3", "axes": {"context extension 32K.cp": [8, 16], "pre-training.tokens": [10e12]}}
    )
    frame = run_plan_sweep(spec).set_index("context extension 32K.cp")
    data, where = load_plan_data("deepseek-v3")
    edited = json.loads(json.dumps(data))  # by hand, as a person would edit the file
    edited["phase"][1]["options"]["cp"] = 16
    edited["phase"][0]["tokens"] = 10e12
    want = price_plan(plan_from_dict(edited, where))
    row = frame.loc[16]
    assert row["valid"] and row["gpu_hours"] == pytest.approx(want["total"]["gpu_hours"], rel=1e-12)
    assert row["pre-training gpu_hours"] == pytest.approx(want["phases"][0]["gpu_hours"], rel=1e-12)
    base = frame.loc[8]  # the plan's own CP
    assert base["valid"] and base["gpu_hours"] < price_plan(plan_from_dict(data, where))["total"]["gpu_hours"]
    assert spec.plan == data  # points never change the sweep's own plan


def test_a_phase_size_axis_replaces_the_phases_size():
    """Setting a phase's steps drops its tokens; setting gpu_hours makes it given (its shape dropped)."""
    data, _ = load_plan_data("deepseek-v3")
    out = point_plan(data, {"pre-training.steps": 1000, "context extension 32K.gpu_hours": 9e3})
    pre, ext = out["phase"][0], out["phase"][1]
    assert pre["steps"] == 1000 and "tokens" not in pre and "ramp" in pre
    assert ext["gpu_hours"] == 9e3 and not {"seq_len", "batch_sequences", "options", "steps"} & set(ext)
    priced = price_plan(plan_from_dict(out))
    assert priced["phases"][1]["given"] and priced["phases"][1]["gpu_hours"] == 9e3


def test_points_the_model_refuses_are_kept_with_the_reason(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('plan = "deepseek-v3"\n[axes]\n"context extension 128K.ep" = [8, 128]\n')  # EP 8: 297 GB
    assert main(["sweep", str(path), "--json", "--out", str(tmp_path / "r.csv")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "plan" and out["points"] == 2 and out["valid"] == 1
    assert any("GB per GPU" in r for r in out["reasons"]) and (tmp_path / "r.csv").is_file()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('plan = "deepseek-v3"\n[axes]\n"warm-up.cp" = [2]', "the plan has no phase 'warm-up'"),
        ('plan = "deepseek-v3"\n[axes]\n"pre-training.colour" = [2]', "a phase's tokens"),
        ('plan = "deepseek-v3"\n[axes]\nwarp = [2]', "a run option, or PHASE.FIELD"),
        ('plan = "deepseek-v3"\n[axes]\ngpus = 2048', "must be a non-empty list"),
        ('plan = "deepseek-v3"\nengine = "event"\n[axes]\ngpus = [2048]', "unknown key 'engine'"),
        ('plan = "nope"\n[axes]\ngpus = [2048]', "give a .toml file or one of deepseek-v3"),
        ('plan = "deepseek-v3"\n[axes]\ngpus = [' + ", ".join(["2048"] * 101) + ']\ntp = [' + ", ".join(["1"] * 100)
         + "]", "at most 10,000"),
    ],
)  # fmt: skip
def test_bad_plan_sweeps_are_one_line_errors(tmp_path, capsys, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err

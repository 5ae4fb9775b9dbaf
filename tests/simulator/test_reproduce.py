"""Every published run and result of `v3sim validate` is the command `v3sim validate --row ID` prints for it: run
through the CLI, the command gives the row's figure to the last digit."""

from __future__ import annotations

import json

import pytest

from simulator.cli import main
from simulator.explore.reproduce import commands, figure_from_json, serve_argv, shell, train_argv
from simulator.explore.servingvalidate import published_serving, serving_row
from simulator.explore.validate import published_runs, tolerance, training_run_row

RUNS = published_runs()
ANALYTIC = [r for r in published_serving() if "requests" not in r]
OFFLINE = [r for r in published_serving() if "requests" in r]
# one offline run per GPU and model (about a second each through the CLI): the others share their flags' paths
OFFLINE_SAMPLE = list({(r["gpu"], r["model"]): r for r in OFFLINE}.values())


def _answer(argv: list[str], capsys) -> dict:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0, shell(argv)
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("run", RUNS, ids=[r["id"] for r in RUNS])
def test_each_training_run_is_its_train_command(run, capsys):
    got = figure_from_json(run, _answer(train_argv(run["options"]), capsys))
    assert got == pytest.approx(training_run_row(run)["predicted"], rel=1e-9)


@pytest.mark.parametrize("result", ANALYTIC + OFFLINE_SAMPLE, ids=[r["id"] for r in ANALYTIC + OFFLINE_SAMPLE])
def test_each_serving_result_is_its_serve_command(result, capsys):
    got = figure_from_json(result, _answer(serve_argv(result), capsys))
    assert got == pytest.approx(serving_row(result, tolerance("serving_run"))["predicted"], rel=1e-9)


def test_every_row_has_a_command_of_its_kind():
    out = commands()
    assert set(out) == {r["id"] for r in RUNS} | {r["id"] for r in published_serving()}
    assert all(out[r["id"]][0] == "train" for r in RUNS)
    offline = {r["id"] for r in OFFLINE}
    assert all(("--offline" in argv) == (rid in offline) for rid, argv in out.items() if argv[0] == "serve")


def test_validate_row_prints_one_row_and_its_command(capsys):
    assert main(["validate", "--row", "deepseek-profile-prefill-h800"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DeepSeek's prefill profile") and "62,713" in out and "out of sample" in out
    assert "reproduce     v3sim serve --model deepseek-v3 --gpu h800" in out and "--phase prefill" in out
    row = _answer(["validate", "--row", "llama3-405b-8k-h100"], capsys)
    assert row["id"] == "llama3-405b-8k-h100" and row["command"].startswith("v3sim train --model llama-3.1-405b")
    assert row["quote"] and row["argv"][0] == "train"


def test_an_unknown_row_is_one_line_that_says_where_the_ids_are(capsys):
    assert main(["validate", "--row", "no-such-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-run" in err and "--json" in err


def test_validate_json_rows_carry_their_ids(capsys, monkeypatch):
    import simulator.explore.servingvalidate as sv

    monkeypatch.setattr(sv, "offline_figure", lambda result_id: 1.0)  # the event model's runs: not what is tested
    monkeypatch.setattr(sv, "offline_figures", lambda ids: dict.fromkeys(ids, 1.0))
    ids = {r["id"] for r in RUNS} | {r["id"] for r in published_serving()}
    rows = [r for r in _answer(["validate"], capsys) if "id" in r]
    assert sorted(r["id"] for r in rows) == sorted(ids)  # each once
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("v3sim validate --row ID (each row's id is in --json)")

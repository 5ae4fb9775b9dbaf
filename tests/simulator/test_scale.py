"""The goodput scale study (`simulator.explore.scale`): V3's run from 1,024 to 131,072 GPUs on a three-layer fat
tree, its rows `v3sim train`'s figures, failures growing with the GPUs, and one-line input errors."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from simulator.cli import main
from simulator.explore.scale import NETWORK_KEYS, SCALE_GPUS, crossover_words, crossovers, goodput_scale


@pytest.fixture(scope="module")
def rows():
    return goodput_scale()  # V3 on fat-tree-3, radix 128, 150 s and 600 s restarts (README: Goodput, Scale)


@pytest.mark.slow
def test_goodput_falls_and_the_failures_share_rises_with_the_gpus(rows):
    assert [r["gpus"] for r in rows] == list(SCALE_GPUS)
    for restart in (150.0, 600.0):
        goodput = [r["goodput"][restart] for r in rows]
        share = [r["failure_share"][restart] for r in rows]
        assert all(a > b for a, b in pairwise(goodput))
        assert all(a < b for a, b in pairwise(share))
        assert share == [1 - g for g in goodput]
    assert all(r["goodput"][600.0] < r["goodput"][150.0] for r in rows)  # a slower restart always costs
    mtbf = [r["mtbf_hours"] for r in rows]
    assert [a / b for a, b in pairwise(mtbf)] == pytest.approx([2.0] * 7, rel=1e-12)  # 1/N
    days = [r["steady_days"] for r in rows]
    assert all(a > b for a, b in pairwise(days))  # the run shortens


@pytest.mark.slow
def test_failures_overtake_the_network_with_slow_restarts_only(rows):
    """The README's closing figures: with 600 s restarts the failures' time passes the network's exposed time
    between 65,536 and 131,072 GPUs; with 150 s they do not by 131,072."""
    assert crossovers(rows) == {150.0: None, 600.0: (65536, 131072)}
    for r in rows:
        for restart, g in r["goodput"].items():
            assert r["failures_ahead"][restart] == (1 - g > r["exposed_network_share"] * g)
    assert rows[-1]["failures_ahead"] == {150.0: False, 600.0: True}


def _train_json(capsys, *argv: str) -> dict:
    code = main(["train", "--topology", "fat-tree-3", "--json", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_the_row_at_2048_gpus_is_v3sim_trains(capsys):
    """`v3sim train --topology fat-tree-3` builds its fabric at radix 64 (the CLI has no --radix), so the study at
    the same radix, with the same restarts, gives its figures exactly."""
    (row,) = goodput_scale(gpus=(2048,), radix=64, restarts_s=(150.0, 600.0))
    short, slow = _train_json(capsys), _train_json(capsys, "--restart-s", "600")
    assert short["run"]["gpus"] == 2048 and row["steady_days"] == short["days"]
    assert row["step_time_s"] == short["step_time_s"]
    network = sum(short["breakdown"][k] for k in NETWORK_KEYS) / short["step_time_s"]
    assert row["exposed_network_share"] == pytest.approx(network, rel=1e-15)
    assert row["goodput"] == {150.0: short["goodput"]["goodput"], 600.0: slow["goodput"]["goodput"]}
    assert row["mtbf_hours"] == short["goodput"]["mtbf_hours"]
    intervals = {short["goodput"]["checkpoint_interval_min"], slow["goodput"]["checkpoint_interval_min"]}
    assert intervals == {row["interval_min"]}  # the optimum does not depend on the restart time
    (fast,) = goodput_scale(gpus=(2048,))  # radix 128: another fabric, a shorter run (the README's row)
    assert fast["steady_days"] < row["steady_days"]


def test_nothing_failing_never_overtakes():
    rows = goodput_scale(gpus=(1024, 2048), failure_scale=0.0, restarts_s=(600.0,))
    assert all(r["mtbf_hours"] is None and not r["failures_ahead"][600.0] for r in rows)
    assert all(r["goodput"][600.0] > 0.999 for r in rows)  # one checkpoint write at the end, nothing lost
    assert crossovers(rows) == {600.0: None}


def test_crossovers_read_the_first_row_ahead():
    def row(gpus: int, *ahead: bool) -> dict:
        return {"gpus": gpus, "failures_ahead": dict(zip((1.0, 2.0), ahead, strict=True))}

    assert crossovers([row(8, True, False), row(16, True, True)]) == {1.0: (None, 8), 2.0: (8, 16)}
    assert crossovers([row(8, False, False), row(16, False, True), row(32, False, False)]) == {1.0: None, 2.0: (8, 16)}
    assert crossovers([]) == {}
    assert crossover_words((65536, 131072), 131072) == "between 65,536 and 131,072 GPUs"
    assert crossover_words((None, 1024), 131072) == "already at 1,024 GPUs"
    assert crossover_words(None, 131072) == "not at or below 131,072 GPUs"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpus": ()}, "gpus must hold 1 to 64 values"),
        ({"gpus": (2048, 1024)}, "must rise"),
        ({"gpus": (1024, 1024)}, "must rise"),
        ({"gpus": (0,)}, "gpus: 0 is not a positive whole number"),
        ({"gpus": (1024.0,)}, "is not a positive whole number"),
        ({"gpus": (True,)}, "is not a positive whole number"),
        ({"gpus": "1024"}, "gpus must be a sequence of numbers"),
        ({"restarts_s": (-1.0,)}, "restarts_s: -1.0 is not a finite number of seconds >= 0"),
        ({"restarts_s": (float("inf"),)}, "not a finite number"),
        ({"restarts_s": (150.0, 150.0)}, "repeats a restart time"),
        ({"topology": "torus"}, "topology='torus' is not one of"),
        ({"radix": 0}, "radix=0 must be a positive whole number"),
        ({"failure_scale": float("nan")}, "failure_scale=nan must be a finite number >= 0"),
        ({"storage": "tape"}, "no checkpoint storage named 'tape'"),
        ({"oversubscription": 2.0, "gpus": (1024,), "topology": "fat-tree-3", "ecmp": "hash", "tp": 1}, None),
        ({"gpus": (100,)}, "at 100 GPUs: gpus=100 is not a multiple of 8"),
        ({"tp": 3, "gpus": (1024,)}, "at 1,024 GPUs: tp*pp=48 must divide gpus=1024"),
        ({"pp": 8, "gpus": (1024,)}, "at 1,024 GPUs: needs at least"),  # V3 at PP8 does not fit an H800
        ({"gpus": (1024,), "radix": 64, "run_topology": "x"}, "unknown run option(s) run_topology"),
    ],
)
def test_bad_inputs_are_one_line_errors(kwargs, message):
    if message is None:  # a taper on the study's fabric is a run option like any other: accepted
        assert goodput_scale(**kwargs)[0]["gpus"] == 1024
        return
    with pytest.raises(ValueError) as err:
        goodput_scale(**kwargs)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_the_studys_own_axes_are_not_run_options():
    from simulator.explore.scale import ScaleSpec

    with pytest.raises(ValueError, match="run option"):
        ScaleSpec(run_options=(("gpus", 8),))

"""Sweeps with bad input: each point validated on its own, wrongly typed values marking their point invalid,
sizes bounded when the file is read, results never half-written; and a hypothesis fuzz of the parser."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.sweep import run_sweep, write_results
from simulator.sweepspec import MAX_AXIS_VALUES, MAX_POINTS, load_sweep, sweep_from_dict
from tests.hang import no_hang

V3_TOKENS = 14.8e12


@pytest.mark.parametrize("order", [(V3_TOKENS, -1e12), (-1e12, V3_TOKENS)])
def test_every_point_is_validated_not_only_the_first_of_its_group(order):
    """The fast path shares one estimate among points that differ only in tokens; each keeps its own verdict
    (it used to copy the first point's: a negative budget valid, or the good row invalid)."""
    frame = run_sweep(sweep_from_dict({"axes": {"tokens": list(order)}}))
    by_tokens = frame.set_index("tokens")
    good, bad = by_tokens.loc[V3_TOKENS], by_tokens.loc[-1e12]
    assert bool(good["valid"]) and good["gpu_hours"] > 0 and good["reason"] == ""
    assert not bool(bad["valid"]) and "tokens=-1000000000000.0 must be positive" in bad["reason"]
    assert math.isnan(bad["gpu_hours"]) or not bool(bad["valid"])


def test_each_price_is_validated_too():
    frame = run_sweep(sweep_from_dict({"axes": {"price_per_gpu_hour": [2.0, -1.0, 3.0]}}))
    assert frame["valid"].tolist() == [True, False, True]
    assert "price_per_gpu_hour=-1.0 must be >= 0" in frame["reason"].iloc[1]
    assert frame["cost_usd"].iloc[2] == pytest.approx(1.5 * frame["cost_usd"].iloc[0])


@pytest.mark.parametrize(
    ("axis", "values", "bad", "reason"),
    [
        ("pp", [8, "abc", 16], "abc", "pp='abc' must be an integer"),
        ("pp", [8, 16.5, 16], 16.5, "pp=16.5 must be an integer"),
        ("pp", [8, True, 16], True, "pp=True must be an integer"),
        ("oversubscription", [1.0, "x", 2.0], "x", "oversubscription='x' must be a finite number"),
        ("oversubscription", [1.0, math.nan, 2.0], math.nan, "oversubscription=nan must be a finite number"),
        ("tokens", [V3_TOKENS, math.inf], math.inf, "tokens=inf must be a finite number"),
        ("schedule", ["dualpipe", 7], 7, "schedule=7 must be a name"),
        ("gpu", ["h800", ""], "", "gpu='' must be a name"),
        ("stage_layers", [[4] * 15 + [1], "x"], "x", "stage_layers='x' must be a list of integers"),
    ],
)
def test_a_wrongly_typed_value_marks_its_point_invalid_not_the_sweep(axis, values, bad, reason):
    with no_hang():
        frame = run_sweep(sweep_from_dict({"axes": {axis: values}}))
    assert len(frame) == len(values)
    wrong = [i for i, v in enumerate(values) if v is bad]
    assert all(not frame["valid"].iloc[i] and reason in frame["reason"].iloc[i] for i in wrong), frame["reason"]
    assert frame["valid"].sum() >= 1  # the good points still ran


def test_typed_values_in_base_make_every_point_invalid_with_the_reason():
    frame = run_sweep(sweep_from_dict({"base": {"tp": "1"}, "axes": {"pp": [8, 16]}}))
    assert not frame["valid"].any() and set(frame["reason"]) == {"tp='1' must be an integer"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"axes": {"pp": {"start": 0, "stop": 1e12, "step": 1}}}, f"the limit is {MAX_AXIS_VALUES:,}"),
        ({"axes": {"pp": {"start": 0, "stop": math.inf}}}, "stop = inf must be a finite number"),
        ({"axes": {"pp": {"start": math.nan, "stop": 8}}}, "start = nan must be a finite number"),
        ({"axes": {"pp": {"start": 1, "stop": 8, "step": "2"}}}, "step = '2' must be a number"),
        ({"axes": {"pp": {"start": True, "stop": 8}}}, "start = True must be a number"),
        ({"axes": {"pp": list(range(MAX_AXIS_VALUES + 1))}}, f"the limit is {MAX_AXIS_VALUES:,}"),
        ({"axes": {"pp": [[1, 2]]}}, "is not a number, a string or true/false"),
        ({"axes": {"pp": [{"a": 1}]}}, "is not a number, a string or true/false"),
        (
            {"axes": {n: list(range(100)) for n in ("pp", "tp", "ep", "seq_len")}},
            f"the sweep has 100,000,000 points; the limit is {MAX_POINTS:,}",
        ),
        ({"method": "random", "samples": 10**9}, f"the limit is {MAX_POINTS:,}"),
        ({"method": "random", "samples": True}, "samples=True must be a positive integer"),
        ({"seed": True}, "seed=True must be an integer"),
        ({"seed": -1}, "seed=-1 must be an integer"),
        (
            {"method": "random", "axes": {"tokens": {"distribution": "uniform", "low": 1, "high": math.nan}}},
            "high = nan must be a finite number",
        ),
        (
            {"method": "random", "axes": {"tokens": {"distribution": "normal", "mean": "1", "std": 1}}},
            "mean = '1' must be a number",
        ),
        ({"base": {"oversubscription": math.inf}}, "base oversubscription=inf must be a finite number"),
        ({"constraints": ["pp.to_csv('x.csv')"]}, "is not allowed"),
        ({"constraints": [1]}, "constraints must be a list of expressions"),
    ],
)
def test_bad_files_are_refused_when_read_in_one_line(data, message):
    with no_hang(), pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        sweep_from_dict(data)
    assert "\n" not in str(err.value)


def test_the_sweep_file_is_read_with_a_size_cap(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (2 << 20))
    with pytest.raises(ValueError, match="the limit is 1,048,576"):
        load_sweep(big)
    with no_hang(20), pytest.raises(ValueError, match="not a regular file"):
        load_sweep("/dev/zero")


def test_out_is_checked_before_the_work(capsys, tmp_path, monkeypatch):
    sweep = tmp_path / "s.toml"
    sweep.write_text("[axes]\npp = [8, 16]\n")
    ran = []
    monkeypatch.setattr("simulator.sweepcli.run_sweep", lambda *a, **k: ran.append(1))
    for out, message in ((tmp_path / "no" / "r.csv", "does not exist"), (tmp_path / "r.xlsx", "use a .parquet")):
        assert main(["sweep", str(sweep), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert ran == []  # refused before a single point


def test_a_failed_write_leaves_the_old_results(tmp_path, monkeypatch):
    out = tmp_path / "results.csv"
    out.write_text("the old results\n")
    frame = pd.DataFrame({"a": [1, 2]})

    def broken(self, path, **kwargs):
        with open(path, "w") as f:
            f.write("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(ValueError, match="No space left"):
        write_results(frame, out)
    assert out.read_text() == "the old results\n" and list(tmp_path.iterdir()) == [out]


def test_results_are_written_whole(tmp_path):
    frame = run_sweep(sweep_from_dict({"axes": {"pp": [8, 16]}}))
    for name in ("r.parquet", "r.csv"):
        write_results(frame, tmp_path / name)
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == 2 and len(pd.read_csv(tmp_path / "r.csv")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.parquet"]


SCALARS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["dualpipe", "h800", "deepseek-v3", "fp8", "1f1b", "grid", "lhs", "random", "min", "max"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["pp", "tp", "ep", "gpus", "tokens", "oversubscription", "schedule", "gpu", "seed", "warp"])
AXES = st.dictionaries(
    FIELDS,
    st.one_of(
        st.lists(SCALARS, min_size=0, max_size=4),
        st.fixed_dictionaries({"start": SCALARS, "stop": SCALARS}),
        st.fixed_dictionaries(
            {"distribution": st.sampled_from(["uniform", "normal", "x"]), "low": SCALARS, "high": SCALARS}
        ),
        VALUES,
    ),
    max_size=3,
)
SWEEPS = st.fixed_dictionaries(
    {},
    optional={
        "axes": AXES,
        "base": st.dictionaries(FIELDS, SCALARS, max_size=3),
        "method": st.sampled_from(["grid", "random", "lhs", "x"]) | SCALARS,
        "samples": st.integers(-2, 4) | SCALARS,
        "seed": SCALARS,
        "constraints": st.lists(st.sampled_from(["pp * ep <= gpus", "pp > 8", "pp.x", "@a", "1 +", "tp"]), max_size=2)
        | SCALARS,
        "objectives": st.dictionaries(st.sampled_from(["cost_usd", "days", "pp", "nope"]), SCALARS, max_size=2),
        "engine": st.sampled_from(["analytic", "event"]) | SCALARS,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SWEEPS)
def test_fuzz_sweep_descriptions(data):
    """Any structure a TOML file can hold: a SweepSpec or one line of ValueError, never another exception or a
    hang; a small analytic sweep then runs, and every valid row has finite, positive GPU-hours and cost."""
    with no_hang():
        try:
            spec = sweep_from_dict(data)
        except ValueError as err:
            assert "\n" not in str(err)
            return
        if spec.engine != "analytic" or spec.size > 6:
            return
        try:
            frame = run_sweep(spec, processes=1)
        except ValueError as err:  # an objective that is not an output, a constraint over text
            assert "\n" not in str(err)
            return
    valid = frame[frame["valid"]]
    for column in ("gpu_hours", "cost_usd", "days", "step_time_s"):
        assert np.isfinite(valid[column].to_numpy(float)).all() and (valid[column] >= 0).all()
    assert (frame.loc[~frame["valid"], "reason"] != "").all()

"""Sweeps with bad input: each point validated on its own, wrongly typed values marking their point invalid,
sizes bounded when the file is read, results never half-written; and a hypothesis fuzz of the parser."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.explore import sweep as sweep_module
from simulator.explore.sweep import MAX_REASON_CHARS, run_sweep, write_results
from simulator.explore.sweepspec import (
    MAX_AXIS_VALUES,
    MAX_CONSTRAINTS,
    MAX_POINTS,
    SweepSpec,
    load_sweep,
    sweep_from_dict,
)
from tests.hang import answer_or_one_line_error, no_hang

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
    assert "price_per_gpu_hour=-1.0 must be from 0 to 1,000,000" in frame["reason"].iloc[1]
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
        ("stage_layers", [[4] * 15 + [1], 5], 5, "stage_layers=5 must be a list of integers"),
        ("tokens", [V3_TOKENS, "abc"], "abc", "tokens='abc' must be a finite number"),
        ("price_per_gpu_hour", [2.0, "abc"], "abc", "price_per_gpu_hour='abc' must be a finite number"),
        ("gpus", [2048, "abc"], "abc", "gpus='abc' must be an integer"),
        ("node_limit", [4, True], True, "node_limit=True must be an integer"),
    ],
)
def test_a_wrongly_typed_value_marks_its_point_invalid_not_the_sweep(axis, values, bad, reason):
    with no_hang():
        frame = run_sweep(sweep_from_dict({"axes": {axis: values}}))
    assert len(frame) == len(values)
    wrong = [i for i, v in enumerate(values) if v is bad]
    assert all(not frame["valid"].iloc[i] and reason in frame["reason"].iloc[i] for i in wrong), frame["reason"]
    assert frame["valid"].sum() >= 1  # the good points still ran


@pytest.mark.parametrize(
    "constraint", ["pp >= 8", "pp ** pp ** pp > 0", "pp % 0 != 1", "gpus / pp >= 1", "pp in [8, 16]"]
)
def test_a_wrongly_typed_value_under_a_constraint_is_its_points_own_error(constraint):
    """The constraint sees a wrongly typed value as NaN (false), never a Python str or int: no TypeError for the
    whole sweep, no hang raising a Python integer to a power; the point's reason names the field."""
    with no_hang(20):
        frame = run_sweep(sweep_from_dict({"axes": {"pp": [16, "abc", True, 2**70]}, "constraints": [constraint]}))
    assert frame["reason"].tolist()[1:3] == ["pp='abc' must be an integer", "pp=True must be an integer"]
    assert "beyond the model's limit" in frame["reason"].iloc[3] or frame["reason"].iloc[3].startswith("constraint")
    assert frame["valid"].iloc[0] == (constraint != "pp % 0 != 1")  # NaN compares false, != too


def test_a_drawn_value_out_of_range_is_an_invalid_point():
    """A uniform over [-1e308, 1e308] draws inf for an integer field: those points are invalid, the sweep runs."""
    spec = sweep_from_dict(
        {"method": "random", "samples": 3, "axes": {"pp": {"distribution": "uniform", "low": -1e308, "high": 1e308}}}
    )
    frame = run_sweep(spec, processes=1)
    assert not frame["valid"].any() and all("pp=" in r for r in frame["reason"])


@pytest.mark.parametrize(
    ("axes", "reason"),
    [
        ({"price_per_gpu_hour": [2.0, 1e308]}, "price_per_gpu_hour=1e+308 must be from 0 to 1,000,000"),
        ({"expert_imbalance": [1.0, 1e308]}, "expert_imbalance=1e+308 exceeds ep=64: the busiest GPU cannot take"),
    ],
)
def test_a_valid_row_never_holds_a_number_that_is_not_finite(axes, reason):
    frame = run_sweep(sweep_from_dict({"axes": axes}))
    assert frame["valid"].tolist() == [True, False] and frame["reason"].iloc[1].startswith(reason)


@pytest.mark.parametrize(
    "error", [OverflowError("math range error"), TypeError("x"), OSError(36, "File name too long")]
)
def test_any_error_of_the_model_on_one_point_is_that_points_reason(monkeypatch, error):
    """An error the checks do not foresee (an overflow deep in a model, a file that cannot be opened) makes its
    point invalid with the error's name, never the sweep."""
    real = sweep_module.estimate_batches

    def failing_at_pp8(run, profile, batches):
        if run.pp == 8:
            raise error
        return real(run, profile, batches)

    monkeypatch.setattr(sweep_module, "estimate_batches", failing_at_pp8)
    frame = run_sweep(sweep_from_dict({"axes": {"pp": [8, 16]}}), processes=1)
    assert frame["valid"].tolist() == [False, True]
    assert frame["reason"].iloc[0].startswith(f"the model failed on these inputs: {type(error).__name__}")


def test_a_non_finite_output_makes_its_row_invalid(monkeypatch):
    """The last net: a model that returns inf for one point (no input check foresaw it) gives an invalid row
    with the reason, never a valid row holding inf."""
    real = sweep_module.estimate_batches

    def inf_at_pp32(run, profile, batches):
        out = real(run, profile, batches)
        return out | {"step_time_s": np.full(len(batches), math.inf)} if run.pp == 32 else out

    monkeypatch.setattr(sweep_module, "estimate_batches", inf_at_pp32)
    frame = run_sweep(sweep_from_dict({"axes": {"pp": [32, 16]}}), processes=1)
    assert frame["valid"].tolist() == [False, True]
    assert frame["reason"].iloc[0] == "step_time_s=inf: an input is beyond the model's range"


def test_a_reason_is_one_short_line():
    frame = run_sweep(sweep_from_dict({"axes": {"model": ["deepseek-v3", "x" * 5000], "pp": [16, "y" * 5000]}}))
    assert frame["valid"].tolist() == [True, False, False, False]
    assert all(len(r) <= MAX_REASON_CHARS and "\n" not in r for r in frame["reason"])


def test_constraints_are_checked_against_the_engines_inputs_when_read():
    with pytest.raises(ValueError, match="unknown name 'expert_cv'"):
        sweep_from_dict({"constraints": ["expert_cv > 0"]})  # an event-model option, in an analytic sweep
    assert sweep_from_dict({"engine": "event", "constraints": ["expert_cv > 0"]}).constraints == ("expert_cv > 0",)
    with pytest.raises(ValueError, match="text compared with a number"):
        sweep_from_dict({"constraints": ["schedule < 3"]})


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
        ({"axes": {"stage_layers": [[4, [4]]]}}, "is not a list of numbers"),
        ({"axes": {"stage_layers": [[4, {"a": 1}]]}}, "is not a list of numbers"),
        ({"axes": {"pp": {"start": 0, "stop": 1e308, "step": 1e-300}}}, "the range has inf values"),
        ({"axes": {"pp": {"start": -1e308, "stop": 1e308}}}, "the range has inf values"),
        ({"axes": {"pp": {"start": 0, "stop": 10**400}}}, "stop is an integer of 1,329 bits"),
        (
            {"method": "random", "axes": {"tokens": {"distribution": "uniform", "low": 1, "high": 10**400}}},
            "high is an integer of 1,329 bits",
        ),
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
        ({"constraints": ["pp > 1"] * (MAX_CONSTRAINTS + 1)}, f"the limit is {MAX_CONSTRAINTS}"),
        ({"objectives": {1: "min"}}, "objective 1 must be the name of an output"),
    ],
)
def test_bad_files_are_refused_when_read_in_one_line(data, message):
    with no_hang(), pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        sweep_from_dict(data)
    assert "\n" not in str(err.value)


def test_unknown_axes_are_refused_before_any_is_built():
    """40,000 axes of 99,999 values each would be four billion values; the names are checked first."""
    data = {"axes": {f"a{i}": {"start": 0, "stop": MAX_AXIS_VALUES - 1} for i in range(40_000)}}
    with no_hang(20), pytest.raises(ValueError, match="unknown sweep field 'a0'"):
        sweep_from_dict(data)


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
    monkeypatch.setattr("simulator.explore.sweep.run_sweep", lambda *a, **k: ran.append(1))
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


def test_results_with_wrongly_typed_inputs_are_written(tmp_path):
    """A sweep with pp = [16, "abc", 2**70] has a column Parquet cannot hold as is: it is written as text (the
    results used to be lost at the end, after every point had run)."""
    frame = run_sweep(sweep_from_dict({"axes": {"pp": [16, "abc", 2**70, 10**5000]}}))
    for name in ("r.parquet", "r.csv"):
        write_results(frame, tmp_path / name)
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert back["pp"].tolist() == ["16", "abc", str(2**70), "<an integer of 16,610 bits>"]
    assert back["reason"].tolist() == frame["reason"].tolist() and back["valid"].tolist() == [True] + [False] * 3
    assert len(pd.read_csv(tmp_path / "r.csv")) == 4


def test_results_are_written_whole(tmp_path):
    frame = run_sweep(sweep_from_dict({"axes": {"pp": [8, 16]}}))
    for name in ("r.parquet", "r.csv"):
        write_results(frame, tmp_path / name)
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == 2 and len(pd.read_csv(tmp_path / "r.csv")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.parquet"]


SCALARS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, -(10**400), 1e308, -1e308, 5e-324, 0, -0.0, 2**63]),
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
FIELDS = st.sampled_from(
    [
        "pp",
        "tp",
        "ep",
        "gpus",
        "tokens",
        "price_per_gpu_hour",
        "expert_imbalance",
        "oversubscription",
        "schedule",
        "gpu",
        "model",
        "stage_layers",
        "node_limit",
        "seed",
        "warp",
    ]
)
CONSTRAINTS = st.one_of(
    st.sampled_from(["pp * ep <= gpus", "pp > 8", "pp.x", "@a", "1 +", "tp", "schedule == 'dualpipe'", "gpu < 1"]),
    st.text(alphabet="pp ep gpus tokens schedule()[]+-*/%<>=!&|~.,'\"@_:0123456789eandornotin", max_size=40),
)
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
        "constraints": st.lists(CONSTRAINTS, max_size=2) | SCALARS,
        "objectives": st.dictionaries(st.sampled_from(["cost_usd", "days", "pp", "nope"]), SCALARS, max_size=2),
        "engine": st.sampled_from(["analytic", "event"]) | SCALARS,
    },
)


def _check_small_run(spec: SweepSpec) -> None:
    """A small analytic sweep runs, and every valid row has finite, non-negative outputs."""
    if spec.engine != "analytic" or spec.size > 6:
        return
    try:
        frame = run_sweep(spec, processes=1)
    except ValueError as err:  # an objective that is not an output
        assert "\n" not in str(err)
        return
    valid = frame[frame["valid"]]
    for column in ("gpu_hours", "cost_usd", "days", "step_time_s"):
        assert np.isfinite(valid[column].to_numpy(float)).all() and (valid[column] >= 0).all()
    assert (frame.loc[~frame["valid"], "reason"] != "").all()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SWEEPS)
def test_fuzz_sweep_descriptions(data):
    """Any structure a TOML file can hold: a SweepSpec or one line of ValueError, never another exception or a
    hang; a small analytic sweep then runs, and every valid row has finite, positive GPU-hours and cost."""
    spec = answer_or_one_line_error(sweep_from_dict, data)
    if spec is None:
        return
    with no_hang():
        _check_small_run(spec)


TOML_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e400", "9223372036854775807", "-0.0", "true", "'x'", '"\\u0000"']),
    st.sampled_from(["[8, 'a']", "[[1]]", "[]", "{start = 0, stop = 1e12}", "{start = 1, stop = 4, step = 1}"]),
    st.sampled_from(["{distribution = 'uniform', low = 1, high = 2}", "'pp > 8'", "['pp * ep <= gpus']"]),
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats().map(repr),  # nan, inf, 1e+300: TOML spells them so
)
TOML_KEYS = st.sampled_from(["pp", "tp", "gpus", "tokens", "schedule", "method", "samples", "seed", "constraints"])
TOML_LINES = st.one_of(
    st.sampled_from(["[axes]", "[base]", "[objectives]", "method = 'lhs'", "samples = 3", "engine = 'event'"]),
    st.builds(lambda k, v: f"{k} = {v}", TOML_KEYS, TOML_VALUES),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOML_LINES, max_size=8))
def test_fuzz_sweep_files(lines):
    """Sweep files of random lines (valid TOML or not): load_sweep gives a SweepSpec or one line of ValueError."""
    with tempfile.TemporaryDirectory() as folder, no_hang():
        path = Path(folder) / "s.toml"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        spec = answer_or_one_line_error(load_sweep, path)
        if spec is None:
            return
        _check_small_run(spec)


NEAR_V3 = {  # plausible values and hostile ones, per field
    "pp": [8, 16, 32, 0, 2**70, 16.0, True],
    "gpus": [1024, 2048, 4096, -8],
    "tokens": [1e12, V3_TOKENS, 1e18, 5e-324, 1e19, math.nan],
    "price_per_gpu_hour": [0.0, 2.0, 1e308, -1.0, math.inf],
    "expert_imbalance": [1.0, 1.3, 1e308, 0.5],
    "oversubscription": [1.0, 2.0, 1e300],
    "schedule": ["dualpipe", "1f1b", "zb1p", "warp"],
    "gpu": ["h800", "h100", "b200", ""],
    "stage_layers": [[4] * 15 + [1], [1], "x"],
}
SMALL_SWEEPS = st.fixed_dictionaries(
    {
        "axes": st.dictionaries(st.sampled_from(sorted(NEAR_V3)), st.just(None), min_size=1, max_size=2).flatmap(
            lambda keys: st.fixed_dictionaries(
                {k: st.lists(st.sampled_from(NEAR_V3[k]) | SCALARS, min_size=1, max_size=2) for k in keys}
            )
        )
    },
    optional={
        "constraints": st.lists(st.sampled_from(["pp * ep <= gpus", "pp % 0 != 1", "gpus / pp > 1"]), max_size=1)
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SMALL_SWEEPS)
def test_fuzz_small_sweeps_give_finite_valid_rows(data):
    """Small grids around V3 with good and hostile values: they load, run, and no valid row holds a number that
    is not finite (each bad value is its point's reason)."""
    with no_hang():
        _check_small_run(sweep_from_dict(data))


def test_a_front_over_step_time_prints(capsys, tmp_path):
    """The v3-event example's objective is step_time_s, which the front's table also shows: the columns were
    doubled and pandas refused them (a failure reported as bad input)."""
    sweep = tmp_path / "s.toml"
    sweep.write_text('objectives = { step_time_s = "min" }\n[axes]\npp = [8, 16]\n')
    assert main(["sweep", str(sweep), "--json", "--processes", "1"]) == 0
    front = json.loads(capsys.readouterr().out)["pareto"]
    assert front and set(front[0]) == {"pp", "step_time_s"}

"""Sweeps (`simulator.explore.sweepspec`, `.sweep`, `.bestlayout`, `v3sim sweep | best-layout`):
a sweep equals its points run one by one, here, in processes or on Dask; invalid points carry their reason."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.analytic.report import estimate
from simulator.cli import main
from simulator.events.simulate import simulate
from simulator.explore.bestlayout import best_layouts, candidates
from simulator.explore.sweep import evaluate, pareto_front, run_sweep, write_results
from simulator.explore.sweepspec import GOODPUT_DEFAULTS, complete, event_options, parse_axis, points, sweep_from_dict
from simulator.runspec import build_run

# A small, quick grid around V3: valid points, a layout out of memory, an EP that does not divide, a constraint.
GRID = {
    "axes": {
        "pp": [8, 16],
        "ep": [48, 64, 128],
        "tokens": [1e12, 14.8e12],
        "price_per_gpu_hour": [1.5, 2.5],
    },
    "constraints": ["ep <= 64"],
}
# A small model on 64 GPUs: many cheap runs (to exercise the process pool and Dask).
SMALL = {
    "base": {"model": "deepseek-v2-lite", "gpus": 64, "global_batch_tokens": 256 * 4096, "pp": 2, "ep": 8},
    "axes": {
        "pp": [1, 2, 4],
        "ep": [1, 2, 4, 8, 16],
        "schedule": ["1f1b", "zb1p", "dualpipe"],
        "micro_batch": [1, 2],
        "tokens": [1e12, 2e12],
    },
}


def one_by_one(point: dict) -> dict:
    """The point through build_run and estimate, as a user would run it."""
    named = {k: point[k] for k in ("model", "gpu", "node") if point[k] is not None}
    fields = {k: v for k, v in point.items() if k not in ("model", "gpu", "node", "profile")}
    fields = {k: v for k, v in fields.items() if k not in ("network", "expert_cv", "samples", "ecmp", "seed")}
    fields = {k: v for k, v in fields.items() if not k.startswith("straggler") and k not in GOODPUT_DEFAULTS}
    try:
        r = estimate(build_run({**named, **fields}), point["profile"])
    except ValueError as exc:
        return {"reason": str(exc)}
    return {"step_time_s": r.step_time_s, "gpu_hours": r.gpu_hours, "cost_usd": r.cost_usd, "days": r.days}


def test_grid_equals_points_run_one_by_one():
    spec = sweep_from_dict(GRID)
    frame = run_sweep(spec, processes=1)
    assert len(frame) == spec.size == 24
    for point, (_, row) in zip(points(spec), frame.iterrows(), strict=True):
        if point["ep"] > 64:
            assert not row["valid"] and row["reason"] == "constraint: ep <= 64"
            continue
        expected = one_by_one(point)
        if "reason" in expected:
            assert not row["valid"] and row["reason"] == expected["reason"]
            assert np.isnan(row["step_time_s"]) and np.isnan(row["gpu_hours"])
        else:
            assert row["valid"] and row["reason"] == ""
            for key, value in expected.items():
                assert row[key] == value, key  # the array path repeats estimate's arithmetic exactly
    assert frame["valid"].any() and (~frame["valid"]).sum() > 8
    reasons = set(frame["reason"])
    assert any("does not divide" in r or "must divide" in r for r in reasons)  # ep=48
    assert any(r.startswith("needs ") and "GB per GPU" in r for r in reasons)  # pp=8 does not fit
    # the run-length fields share one model evaluation: same step, GPU-hours scale with tokens, $ with price
    ok = frame[frame["valid"]]
    assert ok.groupby(["pp", "ep"])["step_time_s"].nunique().eq(1).all()
    ratio = ok["cost_usd"] / (ok["gpu_hours"] * ok["price_per_gpu_hour"])
    assert np.allclose(ratio, 1.0, rtol=1e-12)


def test_process_pool_equals_serial():
    spec = sweep_from_dict(SMALL)
    serial = run_sweep(spec, processes=1)
    pooled = run_sweep(spec, processes=2)
    assert len(serial) == 180 and serial["valid"].sum() >= 10
    pd.testing.assert_frame_equal(serial, pooled)


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("dask.distributed", reason="pip install 'v3sim[cluster]'")
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    )
    yield cluster
    cluster.close()


def test_dask_equals_local(dask_cluster):
    spec = sweep_from_dict(SMALL)
    local = run_sweep(spec, processes=1)
    remote = run_sweep(spec, scheduler=dask_cluster.scheduler_address)
    pd.testing.assert_frame_equal(local, remote)


def test_clusters_v3sim_starts_run_without_the_worker_profiler():
    pytest.importorskip("dask.distributed", reason="pip install 'v3sim[cluster]'")
    import dask

    from simulator.explore.sweep import _dask_client

    client, cluster = _dask_client(1, None)
    try:
        on = client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
        assert list(on.values()) == [False]
    finally:
        client.close()
        cluster.close()


def test_dask_local_cluster_runs_the_event_model():
    pytest.importorskip("dask.distributed", reason="pip install 'v3sim[cluster]'")
    base = {"network": "analytic", "pp": 4, "global_batch_tokens": 512 * 4096, "gpus": 256, "ep": 32}
    spec = sweep_from_dict(
        {
            "engine": "event",
            "base": base,
            "axes": {"schedule": ["1f1b", "dualpipe", "dualpipev"], "straggler_rate": [0.0, 0.2]},
        }
    )
    local = run_sweep(spec, processes=1)
    dask = run_sweep(spec, workers=2)
    pd.testing.assert_frame_equal(local, dask)
    assert "straggler_rate" in local and "seed" in local  # the event model's inputs are columns
    for point, (_, row) in zip(points(spec), local.iterrows(), strict=True):
        if point["schedule"] == "dualpipev":  # the event model does not run it: reported, not dropped
            assert not row["valid"] and "dualpipev" in row["reason"]
            continue
        network, routing, stragglers = event_options(point)
        run = build_run({k: point[k] for k in ("pp", "global_batch_tokens", "gpus", "ep", "schedule")})
        sim = simulate(run, "published", network, routing, stragglers)
        assert row["valid"] and row["step_time_s"] == sim.step_time_s


def test_random_and_lhs_points_are_seeded_and_inside_their_axes():
    base = {
        "axes": {
            "expert_imbalance": {"distribution": "uniform", "low": 1.0, "high": 1.5},
            "tokens": {"distribution": "loguniform", "low": 1e12, "high": 1e13},
            "gpus": {"distribution": "normal", "mean": 2048, "std": 100},
            "pp": [8, 16],
        },
        "samples": 50,
    }
    for method in ("random", "lhs"):
        spec = sweep_from_dict({**base, "method": method, "seed": 3})
        a, b = points(spec), points(spec)
        assert a == b and len(a) == 50
        assert points(sweep_from_dict({**base, "method": method, "seed": 4})) != a
        assert all(1.0 <= p["expert_imbalance"] < 1.5 and 1e12 <= p["tokens"] < 1e13 for p in a)
        assert all(isinstance(p["gpus"], int) for p in a) and {p["pp"] for p in a} == {8, 16}
    # Latin hypercube: each of the n equal strata of a uniform axis holds exactly one point
    lhs = points(sweep_from_dict({**base, "method": "lhs"}))
    strata = sorted(int((p["expert_imbalance"] - 1.0) / 0.5 * 50) for p in lhs)
    assert strata == list(range(50))


def test_ranges_defaults_and_spec_errors():
    assert parse_axis("oversubscription", {"start": 1, "stop": 2, "step": 0.25}).values == (1, 1.25, 1.5, 1.75, 2)
    assert parse_axis("pp", {"start": 4, "stop": 16, "step": 4}).values == (4, 8, 12, 16)
    point = complete({"model": "llama-3.1-8b"})
    assert point["ep"] == 1 and point["pp"] == 16 and point["node"] == "h800-ib"  # dense: ep 1; else V3's run
    bad = [
        ({"axes": {"tokens": {"distribution": "uniform", "low": 1, "high": 2}}}, "grid needs lists"),
        ({"axes": {"warp_speed": [1]}}, "unknown sweep field 'warp_speed'"),
        ({"axes": {"pp": []}}, "empty list"),
        ({"axes": {"pp": {"start": 8, "stop": 4}}}, "stop >= start"),
        ({"axes": {"tokens": {"distribution": "gamma", "low": 1, "high": 2}}}, "distribution is one of"),
        ({"method": "sobol"}, "method='sobol'"),
        ({"engine": "quantum"}, "engine='quantum'"),
        ({"objectives": {"cost_usd": "lowest"}}, "use 'min' or 'max'"),
        ({"colour": "red"}, "unknown sweep key(s) colour"),
    ]
    for data, message in bad:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            sweep_from_dict(data)
    with pytest.raises(ValueError, match="is not an expression"):  # when the file is read, before any work
        sweep_from_dict({"constraints": ["pp *** 2"]})
    with pytest.raises(ValueError, match="not numeric outputs"):
        pareto_front(run_sweep(sweep_from_dict({})), {"model": "min"})
    with pytest.raises(ValueError, match=r"objective\(s\) warp unknown"):  # before any point is run
        run_sweep(sweep_from_dict({"objectives": {"warp": "min"}}))


@given(
    st.dictionaries(
        st.sampled_from(["base", "axes", "engine", "method", "samples", "seed", "constraints", "objectives", "x"]),
        st.recursive(
            st.none() | st.booleans() | st.integers(-3, 5) | st.floats(-2, 5) | st.text(max_size=4),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["pp", "low", "start"]), inner),
            max_leaves=6,
        ),
        max_size=4,
    )
)
@settings(max_examples=200)
def test_any_sweep_description_loads_or_raises_one_line(data):
    try:
        sweep_from_dict(data)
    except ValueError as exc:
        assert "\n" not in str(exc)


def test_unknown_model_is_an_invalid_point_not_a_crash():
    frame = evaluate([complete({"model": "gpt-17"}), complete({})])
    assert list(frame["valid"]) == [False, True]
    assert "gpt-17" in frame["reason"][0]


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6), st.booleans()), min_size=1, max_size=40
    ),
    st.sampled_from([("min", "min"), ("min", "max"), ("max", "max")]),
)
@settings(max_examples=150)
def test_pareto_front_is_the_non_dominated_set(rows, senses):
    frame = pd.DataFrame(rows, columns=["a", "b", "c", "valid"]).astype({"a": float, "b": float, "c": float})
    objectives = {"a": senses[0], "b": senses[1], "c": "min"}
    on = pareto_front(frame, objectives).to_numpy()
    x = frame[["a", "b", "c"]].to_numpy() * np.array([1 if s == "min" else -1 for s in objectives.values()])
    valid = frame["valid"].to_numpy()
    for i in range(len(frame)):
        dominated = any(_dominates(x[j], x[i]) for j in range(len(frame)) if valid[j])
        assert on[i] == (valid[i] and not dominated)


def test_results_round_trip_parquet_and_csv(tmp_path):
    frame = run_sweep(sweep_from_dict(GRID), processes=1)
    write_results(frame, tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert list(back.columns) == list(frame.columns) and len(back) == len(frame)
    assert np.array_equal(back["gpu_hours"].to_numpy(), frame["gpu_hours"].to_numpy(), equal_nan=True)
    write_results(frame, tmp_path / "r.csv")
    assert len(pd.read_csv(tmp_path / "r.csv")) == len(frame)
    with pytest.raises(ValueError, match=r"use a \.parquet or \.csv"):
        write_results(frame, tmp_path / "r.xlsx")


def test_best_layout_for_v3_on_2048_h800():
    """V3 report section 3.2: PP16, EP64 over 8 nodes, DualPipe, no tensor parallelism (costly, avoided)."""
    frame = best_layouts({}, processes=2)
    valid = frame[frame["valid"]]
    assert len(frame) == len(candidates({})) and len(valid) > 100
    assert valid["step_time_s"].is_monotonic_increasing and list(valid["rank"]) == list(range(1, len(valid) + 1))
    published = valid[valid["is_given"]]
    assert len(published) == 1 and tuple(published[["tp", "pp", "ep", "schedule"]].iloc[0]) == (1, 16, 64, "dualpipe")
    rank, step = published["rank"].iloc[0], published["step_time_s"].iloc[0]
    # within V3's own design choices (no TP, DualPipe) it is within 15% of the best: since the FP8 recipe's
    # element-wise kernels are priced one by one, EP32 over 4 nodes comes out 14% faster (less InfiniBand
    # traffic per token; docs/sweeps.md), where the cheaper pricing had V3's EP64 within 1.1%
    own = valid[(valid["tp"] == 1) & (valid["schedule"] == "dualpipe")]
    assert step <= 1.15 * own["step_time_s"].iloc[0]
    # over every layout: in the best quarter, within 20% of the best (docs/sweeps.md says what beats it, and why)
    assert rank <= len(valid) / 4 and step <= 1.20 * valid["step_time_s"].iloc[0]
    # a whole-run estimate of the published layout gives the same step
    assert published["step_time_s"].iloc[0] == estimate(build_run({}), "published").step_time_s


def test_cli_sweep_and_best_layout(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(
        'constraints = ["ep <= 64"]\nobjectives = { cost_usd = "min", days = "min" }\n'
        "[axes]\npp = [8, 16]\nep = [64, 128]\ngpus = [2048, 4096]\n"
    )
    out_file = tmp_path / "r.csv"
    assert main(["sweep", str(path), "--json", "--out", str(out_file), "--processes", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points"] == 8 and out["valid"] + out["invalid"] == 8
    assert out["reasons"]["constraint: ep <= 64"] == 4
    assert out["pareto"] and all({"pp", "ep", "gpus", "cost_usd", "days"} <= set(r) for r in out["pareto"])
    assert len(pd.read_csv(out_file)) == 8
    assert main(["sweep", str(path)]) == 0
    assert "Pareto front over cost_usd (min), days (min)" in capsys.readouterr().out

    assert main(["best-layout", "--tp", "1", "--schedule", "dualpipe", "--top", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in rows][:3] == [1, 2, 3]  # and the given layout after them when it ranks lower
    assert all(r["is_given"] for r in rows[3:])
    for row in rows:
        assert {"tp", "pp", "ep", "dp", "schedule", "step_time_s", "gpu_hours"} <= set(row)
        assert row["tp"] == 1 and row["schedule"] == "dualpipe"
    assert rows[0]["step_time_s"] <= rows[1]["step_time_s"] <= rows[2]["step_time_s"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "missing.toml"], "cannot read sweep missing.toml"),
        (["best-layout", "--gpus", "64"], "no valid layout among"),
        (["best-layout", "--model", "gpt-17"], "gpt-17"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1

"""The sweep's array pass (issue 22): points built column by column, every batch of a run priced in one pass,
runs shipped to workers as blocks of indices; each must equal the point-by-point path exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate, estimate_batches
from simulator.explore.columns import blocks, columns_of_points, columns_of_spec
from simulator.explore.sweep import ROW_GROUP_ROWS, run_sweep, write_results
from simulator.explore.sweepspec import points, sweep_from_dict
from simulator.runspec import batch_error, v3_pretraining
from tests.simulator.test_sweep import one_by_one


@pytest.mark.parametrize(
    ("changes", "fits"),
    [
        ({}, True),
        ({"schedule": "1f1b"}, True),
        ({"pp": 8, "schedule": "zb1p"}, True),
        ({"gpus": 1024}, True),
        ({"gpus": 1024, "pp": 8}, False),  # every batch refused: memory
    ],
)
def test_every_batch_in_one_pass_equals_an_estimate_each(changes, fits):
    """estimate_batches at many global batches = estimate() at each: step, parts, split, memory, refusals."""
    run = v3_pretraining(**changes)
    rates = rates_for(None, run.node.gpu)
    sequences = run.dp * run.micro_batch * run.seq_len
    batches = [k * sequences for k in range(1, 160, 3)]
    batches = [b for b in batches if not batch_error(b, run.seq_len, run.dp, run.micro_batch, run.schedule, run.pp)]
    out = estimate_batches(run, rates, batches)
    splits = set()
    for i, batch in enumerate(batches):
        try:
            r = estimate(run.with_(global_batch_tokens=batch), rates)
        except ValueError as exc:
            assert out["reason"][i] == str(exc)
            continue
        assert out["reason"][i] == "" and out["step_time_s"][i] == r.step_time_s
        assert out["stage_split"][i] == ",".join(map(str, r.stage_layers))
        assert all(out[f"{k}_s"][i] == v for k, v in r.breakdown.items())
        assert out["mfu_bf16"][i] == r.mfu["bf16"] and out["microbatches"][i] == r.microbatches
        assert out["memory_per_gpu_bytes"][i] == r.memory_per_gpu_bytes["total"]
        splits.add(out["stage_split"][i])
    assert len(batches) > 20 and bool(splits) == fits


def test_v3s_split_depends_on_the_batch():
    """The balanced split wins at the published batch and the even one at small ones: both candidates are
    priced on every batch, not the first batch's choice copied."""
    run = v3_pretraining()
    unit = run.dp * run.seq_len * 2  # dualpipe: an even count of micro-batches
    out = estimate_batches(run, None, [unit * k for k in range(16, 200, 8)])
    assert len(set(out["stage_split"])) == 2


def test_a_batch_axis_equals_points_run_one_by_one():
    """Batches that split, that do not, too few micro-batches for DualPipe, an odd count, beyond the limit."""
    seq = 4096
    spec = sweep_from_dict(
        {
            "axes": {
                "pp": [8, 16],
                "schedule": ["dualpipe", "1f1b"],
                "global_batch_tokens": [15360 * seq, 2048 * seq, 1000 * seq, 128 * 3 * seq, 10**15, 12345],
                "tokens": [1e12, 14.8e12],
            }
        }
    )
    frame = run_sweep(spec, processes=1)
    reasons = set()
    for point, (_, row) in zip(points(spec), frame.iterrows(), strict=True):
        expected = one_by_one(point)
        if "reason" in expected:
            assert not row["valid"] and row["reason"] == expected["reason"], (point, row["reason"])
            reasons.add(expected["reason"].split(" ")[1])
        else:
            assert row["valid"] and all(row[k] == v for k, v in expected.items())
    assert frame["valid"].sum() >= 8 and len(reasons) >= 3


AXES = {
    "model": ["deepseek-v3", "llama-3.1-8b", "nope"],
    "gpus": [1024, 2048, "x"],
    "pp": [8, 16],
    "schedule": ["dualpipe", "interleaved", "1f1b"],
    "gpu": ["h800", "h100"],
    "stage_layers": [[4] * 15 + [1], "x"],
    "expert_imbalance": {"distribution": "uniform", "low": 1.0, "high": 1.5},
    "tokens": {"distribution": "loguniform", "low": 1e12, "high": 2e13},
}


@given(
    st.lists(st.sampled_from(sorted(AXES)), min_size=1, max_size=4, unique=True),
    st.sampled_from(["grid", "random", "lhs"]),
    st.integers(0, 3),
)
@settings(max_examples=40, deadline=None)
def test_columns_hold_the_points_sweepspec_builds(names, method, seed):
    """Column by column (defaults derived per distinct combination: EP, virtual stages, node) = points()."""
    axes = {n: AXES[n] for n in names if method != "grid" or not isinstance(AXES[n], dict)}
    spec = sweep_from_dict({"axes": axes, "method": method, "samples": 30, "seed": seed})
    cols = columns_of_spec(spec)
    expected = points(spec)
    assert cols.size == len(expected)
    assert [cols.point(i) for i in range(cols.size)] == expected
    again = columns_of_points(expected)
    assert [again.point(i) for i in range(again.size)] == expected


def test_workers_build_the_same_points_from_blocks():
    """A block carries shared inputs, distinct values and indices: its runs' points are the sweep's own, with the
    default budget and price, and it is a fraction of the dicts it replaces."""
    import pickle

    spec = sweep_from_dict(
        {"method": "random", "samples": 2000, "axes": {"pp": [8, 16], "tokens": {"distribution": "loguniform",
         "low": 1e12, "high": 2e13}, "expert_imbalance": {"distribution": "uniform", "low": 1.0, "high": 1.5}}}
    )  # fmt: skip
    cols = columns_of_spec(spec)
    firsts = np.arange(0, cols.size, 3)
    fixed = {"tokens": 1.0, "price_per_gpu_hour": None}
    made = blocks(cols, firsts, [(i,) for i in range(len(firsts))], 100, fixed)
    units = [u for b in made for u in b.units()]
    assert [p for p, _ in units] == [cols.point(int(i)) | fixed for i in firsts]
    assert [b for _, b in units] == [(i,) for i in range(len(firsts))]
    dicts = pickle.dumps([cols.point(int(i)) for i in firsts])
    assert sum(len(pickle.dumps(b)) for b in made) < len(dicts) / 4


def test_results_are_written_in_row_groups(tmp_path):
    rows = 2 * ROW_GROUP_ROWS + 5
    frame = pd.DataFrame({"a": np.arange(rows), "b": ["x"] * rows, "valid": [True] * rows})
    write_results(frame, tmp_path / "r.parquet")
    assert pq.ParquetFile(tmp_path / "r.parquet").metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "r.parquet"), frame)
    write_results(frame.iloc[:0], tmp_path / "empty.parquet")
    assert len(pd.read_parquet(tmp_path / "empty.parquet")) == 0

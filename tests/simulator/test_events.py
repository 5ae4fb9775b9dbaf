"""The discrete-event pipeline model: schedules as op lists, agreement with the bubble formulas, traces."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from simulator.analytic.stagetimes import StageTimes
from simulator.events.engine import op_s, simulate_ops, simulate_pipeline, to_chrome_trace
from simulator.events.pipeline_ops import Op, dependencies, num_stages, rank_of, schedule_ops
from simulator.schedules import ChunkTimes, bubble_s

CASES = [("1f1b", 1), ("interleaved", 2), ("interleaved", 3), ("zb1p", 1), ("dualpipe", 1)]


def uniform(f: float, b: float, w: float, ep: float = 0.0, send_f: float = 0.0, send_b: float = 0.0) -> StageTimes:
    """Stage times with the given F, B (full backward) and W, split evenly between attention and MLP."""
    return StageTimes(f / 2, f / 2, b / 2, b / 2, w, ep / 4, ep / 4, ep / 4, ep / 4, send_f, send_b)


def chunk_times(f: float, b: float, w: float) -> ChunkTimes:
    return ChunkTimes(f=f, b=b, w=w, fb=f + b)  # without communication the F&B pair is F + B


# --- agreement with simulator.schedules.bubble_s, uniform stages, no communication ----------------


@pytest.mark.parametrize(("schedule", "v"), CASES)
@pytest.mark.parametrize("pp", [2, 4, 8])
@pytest.mark.parametrize("per_rank", [2, 4])
def test_step_time_is_compute_plus_the_formula_bubble(schedule, v, pp, per_rank):
    # DualPipe's README formula is exact only when F = B - W (see the next test); 1:2:1 satisfies it.
    f, b, w = (1.0, 2.0, 1.0) if schedule == "dualpipe" else (1.0, 2.0, 0.8)
    n = per_rank * pp
    stages = [uniform(f, b, w).scaled(1 / v)] * num_stages(schedule, pp, v)  # interleaved: v chunks per rank
    timeline = simulate_pipeline(schedule, pp, n, stages, virtual_stages=v)
    bubble = bubble_s(schedule, pp, chunk_times(f, b, w), v)
    assert timeline.step_time_s == pytest.approx(n * (f + b) + bubble, rel=0.01)
    assert max(timeline.busy_s) == pytest.approx(n * (f + b))
    assert timeline.idle_s[int(np.argmax(timeline.busy_s))] == pytest.approx(bubble, rel=1e-9)


@pytest.mark.parametrize("pp", [4, 8])
@pytest.mark.parametrize(
    ("f", "b", "w", "per_slot", "sign"),
    [
        (1.0, 2.0, 0.8, 2 * 1.0 + 2.0 - 2 * 0.8, -1),  # input-gradient part B-W = 1.2 > F: formula too high
        (1.0, 2.0, 1.2, 2 * 1.0, +1),  # B-W = 0.8 < F: formula too low
    ],
)
def test_dualpipe_bubble_leaves_the_readme_formula_when_f_is_not_b_minus_w(pp, f, b, w, per_slot, sign):
    # The op order of DualPipe.step() makes each of the PP/2-1 rank hops of the warm-up wait 2F (an F&B
    # pair's backward is out only when the pair ends), and the cool-down wait max(B-2W, 0) (an input-
    # gradient chunk less the W that fills its gap): (PP/2-1)(2F + max(B-2W, 0)). The README's
    # (PP/2-1)(F&B + B - 3W) is linear in W, as if every W filled a gap at least W long; the two agree
    # only on F = B - W. (At PP=16 the zero-bubble warm-up phase adds a little more wait.)
    timeline = simulate_pipeline("dualpipe", pp, 4 * pp, [uniform(f, b, w)] * pp)
    assert max(timeline.idle_s) == pytest.approx((pp / 2 - 1) * per_slot)
    formula = bubble_s("dualpipe", pp, chunk_times(f, b, w))
    assert np.sign(max(timeline.idle_s) - formula) == sign


def test_a_hand_solved_1f1b_with_pipeline_sends():
    # pp=2, one micro-batch, F=1, B=2, sends of 0.25 (activations) and 0.5 (gradients).
    timeline = simulate_pipeline("1f1b", 2, 1, [uniform(1.0, 2.0, 0.0, send_f=0.25, send_b=0.5)] * 2)
    spans = [tuple(r) for r in timeline.events[["rank", "label", "start_s", "end_s"]].itertuples(index=False)]
    assert spans == [
        (0, "F0/s0", 0.0, 1.0),
        (0, "B0/s0", 4.75, 6.75),
        (1, "F0/s1", 1.25, 2.25),
        (1, "B0/s1", 2.25, 4.25),
    ]
    assert timeline.step_time_s == 6.75
    assert timeline.busy_s == (3.0, 3.0)
    assert timeline.idle_s == (3.75, 3.75)


def test_dualpipe_pairs_cost_the_overlapped_pair_and_lone_chunks_expose_ep():
    t = uniform(1.0, 2.0, 0.5, ep=1.6)
    events = simulate_pipeline("dualpipe", 4, 8, [t] * 4).events
    dur = events["end_s"] - events["start_s"]
    assert np.allclose(dur[events["op"] == "FB"], t.overlapped_pair_s())
    assert np.allclose(dur[events["op"] == "F"], t.f + t.ep_f)


# --- every generated schedule is a valid one ------------------------------------------------------

GRID = [(s, v, pp, n) for s, v in CASES for pp in (2, 4, 6) for n in (2 * pp, 3 * pp) if s != "dualpipe" or n % 2 == 0]


@pytest.mark.parametrize(("schedule", "v", "pp", "n"), GRID)
def test_each_unit_of_work_runs_once_on_its_rank(schedule, v, pp, n):
    ranks = schedule_ops(schedule, pp, n, v)
    units = [(r, u) for r, ops in enumerate(ranks) for op in ops for u in op.parts()]
    assert all(r == rank_of(schedule, pp, u.stage, u.direction) for r, u in units)
    counts = Counter((u.kind, u.microbatch, u.stage) for _, u in units)
    split = {(u.microbatch, u.stage) for _, u in units if u.kind == "B" and u.split_w}
    stages = num_stages(schedule, pp, v)
    for m in range(n):
        for s in range(stages):
            assert (counts[("F", m, s)], counts[("B", m, s)]) == (1, 1)
            assert counts[("W", m, s)] == ((m, s) in split)


@pytest.mark.parametrize(("schedule", "v", "pp", "n"), GRID)
def test_every_op_starts_after_its_dependencies_and_sends(schedule, v, pp, n):
    rng = np.random.default_rng(pp * 100 + n)  # uneven stages and real sends: a harder case than uniform
    stages = [
        StageTimes(*rng.uniform(0.2, 1.0, 4), 0.1, *rng.uniform(0.0, 0.3, 6))
        for _ in range(num_stages(schedule, pp, v))
    ]
    ranks = schedule_ops(schedule, pp, n, v)
    timeline = simulate_ops(schedule, pp, ranks, stages)
    start, end = {}, {}
    compute = timeline.events[timeline.events["stream"] == "compute"]
    for ops, (_, rows) in zip(ranks, compute.groupby("rank"), strict=True):
        assert len(ops) == len(rows)
        assert (rows["start_s"].to_numpy()[1:] >= rows["end_s"].to_numpy()[:-1] - 1e-12).all()  # one at a time
        for op, row in zip(ops, rows.itertuples(), strict=True):
            assert row.end_s - row.start_s == pytest.approx(op_s(op, stages))
            for u in op.parts():
                start[u], end[u.key] = row.start_s, row.end_s
    for u, t in start.items():
        for dep in dependencies(u, len(stages)):
            same_rank = rank_of(schedule, pp, dep[2], dep[3]) == rank_of(schedule, pp, u.stage, u.direction)
            send = 0.0 if same_rank else (stages[dep[2]].pp_f if dep[0] == "F" else stages[dep[2]].pp_b)
            assert t >= end[dep] + send - 1e-12


def test_a_missing_unit_is_reported_not_deadlocked():
    ranks = [[Op("F", 0, 0)], [Op("F", 0, 1), Op("B", 0, 1)]]  # stage 0 never runs its backward: fine
    assert simulate_ops("1f1b", 2, ranks, [uniform(1, 2, 0)] * 2).step_time_s == 4.0
    with pytest.raises(ValueError, match="no rank runs"):
        simulate_ops("1f1b", 2, [[Op("B", 0, 0)], []], [uniform(1, 2, 0)] * 2)
    with pytest.raises(ValueError, match="deadlocked"):
        simulate_ops(
            "1f1b", 2, [[Op("B", 0, 0), Op("F", 0, 0)], [Op("F", 0, 1), Op("B", 0, 1)]], [uniform(1, 2, 0)] * 2
        )


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(ValueError, match="divisible by pp"):
        schedule_ops("interleaved", 4, 6, 2)
    with pytest.raises(ValueError, match="2\\*pp=8"):
        schedule_ops("dualpipe", 4, 6)
    with pytest.raises(ValueError, match="needs 8 stage times"):
        simulate_pipeline("interleaved", 4, 8, [uniform(1, 2, 0)] * 4, virtual_stages=2)
    with pytest.raises(ValueError, match="w <= b_attn"):
        simulate_pipeline("zb1p", 2, 2, [uniform(1, 2, 3)] * 2)


# --- output -----------------------------------------------------------------------------------------


def test_chrome_trace_is_json_with_one_complete_event_per_op_in_microseconds():
    timeline = simulate_pipeline("zb1p", 4, 8, [uniform(1.0, 2.0, 0.5)] * 4)
    trace = json.loads(json.dumps(to_chrome_trace(timeline)))
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(spans) == len(timeline.events)
    assert {e["pid"] for e in spans} == {0, 1, 2, 3}
    forward = next(e for e in spans if e["cat"] == "F")
    assert forward["dur"] == pytest.approx(1e6)  # a 1 s forward lasts 1e6 microseconds
    assert max(e["ts"] + e["dur"] for e in spans) == pytest.approx(timeline.step_time_s * 1e6)


@pytest.mark.parametrize(("schedule", "v"), CASES)
def test_the_simulation_is_deterministic(schedule, v):
    rng = np.random.default_rng(7)
    stages = [
        StageTimes(*rng.uniform(0.1, 1.0, 4), 0.05, *rng.uniform(0.0, 0.3, 6))
        for _ in range(num_stages(schedule, 4, v))
    ]
    one, two = (simulate_pipeline(schedule, 4, 8, stages, v) for _ in range(2))
    pd.testing.assert_frame_equal(one.events, two.events)
    assert json.dumps(to_chrome_trace(one)) == json.dumps(to_chrome_trace(two))

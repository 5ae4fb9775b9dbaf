"""The discrete-event pipeline model: each rank walks its op list in SimPy, waiting on dependencies.

A rank is one SimPy process that runs its ops (`simulator.pipeline_ops`) in
order; an op starts once the rank is free and every unit it depends on has
finished, plus the pipeline send (pp_f / pp_b of the sending stage) when that
unit ran on another rank. Durations come from one `StageTimes` per model stage
and, in this first milestone, keep the analytic model's assumptions: expert-
parallel traffic is part of each chunk (F = f + ep_f, B = b + ep_b, W = w, a
split B = b - w + ep_b) except in DualPipe's overlapped pair, which costs
`StageTimes.overlapped_pair_s()`; nothing contends for links.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd
import simpy

from simulator.pipeline_ops import Key, Op, dependencies, num_stages, rank_of, schedule_ops
from simulator.training import StageTimes

EVENT_COLUMNS = ("rank", "op", "microbatch", "stage", "direction", "label", "start_s", "end_s")


@dataclass(frozen=True, slots=True, eq=False)
class Timeline:
    """One simulated step: its length, each rank's busy and idle seconds, and every op's span."""

    step_time_s: float
    busy_s: tuple[float, ...]  # per rank
    idle_s: tuple[float, ...]  # per rank: step_time_s - busy_s
    events: pd.DataFrame = field(repr=False)  # one row per op, EVENT_COLUMNS


def pair_s(fwd: StageTimes, bwd: StageTimes) -> float:
    """Seconds of DualPipe's F&B pair: the forward parts of `fwd` overlapped with the backward parts of `bwd`."""
    mixed = replace(
        fwd,
        b_attn=bwd.b_attn,
        b_mlp=bwd.b_mlp,
        w=bwd.w,
        dispatch_b=bwd.dispatch_b,
        combine_b=bwd.combine_b,
        pp_b=bwd.pp_b,
    )
    return mixed.overlapped_pair_s()


def op_s(op: Op, times: list[StageTimes]) -> float:
    """Seconds one op keeps its rank busy (EP communication exposed, as in the analytic model)."""
    t = times[op.stage]
    if op.kind == "F":
        return t.f + t.ep_f
    if op.kind == "B":
        return t.b - (t.w if op.split_w else 0.0) + t.ep_b
    if op.kind == "W":
        return t.w
    assert op.backward is not None
    return pair_s(t, times[op.backward.stage])


def label(op: Op) -> str:
    """A short name for traces: `F3/s1`, `B0/s2 (in)`, `FB 5/s1 + 2/s6`."""
    if op.backward is not None:
        return f"FB {op.microbatch}/s{op.stage} + {op.backward.microbatch}/s{op.backward.stage}"
    return f"{op.kind}{op.microbatch}/s{op.stage}" + (" (in)" if op.split_w else "")


@dataclass(slots=True)
class _Step:
    """Shared state of one simulation: done events and end times of units, the recorded rows."""

    env: simpy.Environment
    schedule: str
    pp: int
    n_stages: int
    times: list[StageTimes]
    done: dict[Key, simpy.Event]
    end_s: dict[Key, float] = field(default_factory=dict)
    rows: list[tuple] = field(default_factory=list)

    def send_s(self, unit: Op, dep: Key) -> float:
        """Pipeline send delay from the rank that ran `dep` to the one running `unit` (0 on one rank)."""
        kind, _, stage, direction = dep
        if rank_of(self.schedule, self.pp, stage, direction) == rank_of(
            self.schedule, self.pp, unit.stage, unit.direction
        ):
            return 0.0
        t = self.times[stage]
        return t.pp_f if kind == "F" else t.pp_b


def _rank(step: _Step, rank: int, ops: list[Op]):
    """SimPy process: run `ops` in order, each after its dependencies (and their sends) have finished."""
    env = step.env
    for op in ops:
        parts = op.parts()
        deps = [(unit, dep) for unit in parts for dep in dependencies(unit, step.n_stages)]
        if deps:
            yield env.all_of([step.done[dep] for _, dep in deps])
            ready_s = max(step.end_s[dep] + step.send_s(unit, dep) for unit, dep in deps)
            if ready_s > env.now:
                yield env.timeout(ready_s - env.now)
        start_s = env.now
        yield env.timeout(op_s(op, step.times))
        step.rows.append((rank, op.kind, op.microbatch, op.stage, op.direction, label(op), start_s, env.now))
        for unit in parts:
            step.end_s[unit.key] = env.now
            step.done[unit.key].succeed()


def _check_inputs(ranks: list[list[Op]], stage_times: list[StageTimes]) -> None:
    """Raise ValueError for negative times, a unit run twice, or a dependency that no rank runs."""
    for i, t in enumerate(stage_times):
        if min(t.f_attn, t.f_mlp, t.b_attn, t.b_mlp, t.w, t.ep_f, t.ep_b, t.pp_f, t.pp_b) < 0 or t.w > t.b:
            raise ValueError(f"stage {i}: times must be >= 0 and w <= b_attn + b_mlp; got {t}")
    units = [unit for ops in ranks for op in ops for unit in op.parts()]
    keys = {unit.key for unit in units}
    if len(keys) != len(units):
        raise ValueError("the op lists run some unit of work twice")
    for unit in units:
        missing = [d for d in dependencies(unit, len(stage_times)) if d not in keys]
        if missing:
            raise ValueError(f"{unit.key} depends on {missing[0]}, which no rank runs")


def simulate_ops(schedule: str, pp: int, ranks: list[list[Op]], stage_times: list[StageTimes]) -> Timeline:
    """Run given per-rank op lists (one StageTimes per model stage) and return the step's timeline."""
    _check_inputs(ranks, stage_times)
    env = simpy.Environment()
    done = {unit.key: env.event() for ops in ranks for op in ops for unit in op.parts()}
    step = _Step(env, schedule, pp, len(stage_times), stage_times, done)
    for rank, ops in enumerate(ranks):
        env.process(_rank(step, rank, ops))
    env.run()
    if len(step.rows) != sum(len(ops) for ops in ranks):
        raise ValueError(f"schedule deadlocked: {len(step.rows)} of {sum(map(len, ranks))} ops ran")
    events = pd.DataFrame(step.rows, columns=list(EVENT_COLUMNS)).sort_values(["rank", "start_s"], kind="stable")
    step_time_s = float(events["end_s"].max())
    busy = (events["end_s"] - events["start_s"]).groupby(events["rank"]).sum()
    busy_s = tuple(float(busy.get(r, 0.0)) for r in range(len(ranks)))
    idle_s = tuple(step_time_s - b for b in busy_s)
    return Timeline(step_time_s, busy_s, idle_s, events.reset_index(drop=True))


def simulate_pipeline(
    schedule: str, pp: int, n_microbatches: int, stage_times: list[StageTimes], virtual_stages: int = 1
) -> Timeline:
    """Simulate one step of `schedule` (deterministic): `stage_times` has one entry per model stage
    (pp, or pp * virtual_stages chunks for the interleaved schedule), the seconds of one micro-batch."""
    expected = num_stages(schedule, pp, virtual_stages)
    if len(stage_times) != expected:
        raise ValueError(f"{schedule} with pp={pp} needs {expected} stage times; got {len(stage_times)}")
    ranks = schedule_ops(schedule, pp, n_microbatches, virtual_stages)
    return simulate_ops(schedule, pp, ranks, list(stage_times))


def to_chrome_trace(timeline: Timeline) -> dict[str, object]:
    """The timeline as Chrome trace-event JSON (Perfetto opens it): one complete ("X") event per op,
    times in microseconds, one process per rank with its compute stream as thread 0."""
    trace: list[dict[str, object]] = []
    for rank in sorted(set(timeline.events["rank"])):
        trace.append({"name": "process_name", "ph": "M", "pid": int(rank), "tid": 0, "args": {"name": f"rank {rank}"}})
        trace.append({"name": "thread_name", "ph": "M", "pid": int(rank), "tid": 0, "args": {"name": "compute"}})
    for row in timeline.events.itertuples(index=False):
        trace.append(
            {
                "name": row.label,
                "cat": row.op,
                "ph": "X",
                "ts": row.start_s * 1e6,
                "dur": (row.end_s - row.start_s) * 1e6,
                "pid": int(row.rank),
                "tid": 0,
                "args": {"microbatch": int(row.microbatch), "stage": int(row.stage), "direction": int(row.direction)},
            }
        )
    return {"traceEvents": trace, "displayTimeUnit": "ms"}

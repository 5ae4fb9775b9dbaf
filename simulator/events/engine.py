"""The discrete-event pipeline model: each rank walks its op list in SimPy, waiting on dependencies.

A rank is one SimPy process that runs its ops (`simulator.events.pipeline_ops`) in
order; an op starts once the rank is free and every unit it depends on has
finished, plus the pipeline send (pp_f / pp_b of the sending stage) when that
unit ran on another rank. Durations come from one `StageTimes` per model stage,
or per chunk of work (micro-batch, stage, direction) where draws make chunks
differ. Expert-parallel traffic is exposed in F, B (F = f + ep_f, B = b + ep_b,
W = w, a split B = b - w + ep_b) and hidden under the other chunk's compute in
DualPipe's overlapped pair (`StageTimes.overlapped_pair_s()`); the events
record it on each rank's communication stream next to its compute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd
import simpy

from simulator.analytic.stagetimes import StageTimes
from simulator.events.pipeline_ops import Key, Op, dependencies, num_stages, rank_of, schedule_ops

EVENT_COLUMNS = ("rank", "stream", "op", "microbatch", "stage", "direction", "label", "start_s", "end_s")
STREAMS = ("compute", "comm")  # comm rows: op is the phase (dispatch_f, combine_f, dispatch_b, combine_b)
Chunks = dict[tuple[int, int, int], StageTimes]  # (microbatch, stage, direction) -> its times
# (done, total, what): told as work finishes, so a front end can show a bar and the time left; never changes results
Progress = Callable[[int, int, str], None]
PROGRESS_STEPS = 100  # a run calls its Progress about this many times, however many ops it has


@dataclass(frozen=True, slots=True, eq=False)
class Timeline:
    """One simulated step: its length, each rank's busy and idle seconds, and every op's span."""

    step_time_s: float
    busy_s: tuple[float, ...]  # per rank: seconds its compute stream runs ops (exposed communication included)
    idle_s: tuple[float, ...]  # per rank: step_time_s - busy_s
    comm_s: tuple[float, ...]  # per rank: seconds of expert-parallel communication in flight
    events: pd.DataFrame = field(repr=False)  # one row per op and per communication phase, EVENT_COLUMNS


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
        host_b=bwd.host_b,
    )
    return mixed.overlapped_pair_s()


def times_of(unit: Op, times: list[StageTimes], chunks: Chunks | None = None) -> StageTimes:
    """The times of one unit of work: its chunk's, else its stage's."""
    if chunks:
        return chunks.get((unit.microbatch, unit.stage, unit.direction), times[unit.stage])
    return times[unit.stage]


def op_s(op: Op, times: list[StageTimes], chunks: Chunks | None = None) -> float:
    """Seconds one op keeps its rank busy (EP communication exposed, as in the analytic model)."""
    t = times_of(op, times, chunks)
    if op.kind == "F":
        return t.f + t.ep_f
    if op.kind == "B":
        return t.b - (t.w if op.split_w else 0.0) + t.ep_b
    if op.kind == "W":
        return t.w
    assert op.backward is not None
    return pair_s(t, times_of(op.backward, times, chunks))


def comm_spans(op: Op, times: list[StageTimes], chunks: Chunks | None = None) -> list[tuple[str, float, float]]:
    """(phase, start, end) of each EP communication phase of `op`, in seconds from its start, aggregated
    over the chunk's layers: F runs attention, dispatch, MLP, combine; B the gradient's combine, MLP,
    dispatch, attention; an FB pair each phase at the start of its slot of `overlapped_pair_s`."""
    t = times_of(op, times, chunks)
    if op.kind == "F":
        spans = [("dispatch_f", t.f_attn, t.dispatch_f), ("combine_f", t.f + t.dispatch_f, t.combine_f)]
    elif op.kind == "B":
        kept = 1 - (t.w / t.b if op.split_w and t.b else 0.0)  # the weight gradient's share left to W
        spans = [("combine_b", 0.0, t.combine_b), ("dispatch_b", t.combine_b + kept * t.b_mlp, t.dispatch_b)]
    elif op.kind == "FB":
        assert op.backward is not None
        u = times_of(op.backward, times, chunks)
        slot1 = max(t.f_attn, u.combine_b)
        slot2 = max(u.b_mlp, t.dispatch_f + t.pp_f + u.pp_b)
        slot3 = max(t.f_mlp, u.dispatch_b)
        spans = [
            ("combine_b", 0.0, u.combine_b),
            ("dispatch_f", slot1, t.dispatch_f),
            ("dispatch_b", slot1 + slot2, u.dispatch_b),
            ("combine_f", slot1 + slot2 + slot3, t.combine_f),
        ]
    else:
        spans = []
    return [(phase, start, start + length) for phase, start, length in spans if length > 0]


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
    chunks: Chunks | None
    done: dict[Key, simpy.Event]
    end_s: dict[Key, float] = field(default_factory=dict)
    rows: list[tuple] = field(default_factory=list)
    progress: Progress | None = None
    total_ops: int = 0
    ops_done: int = 0

    def op_done(self) -> None:
        """Count one finished op; tell `progress` every 1/PROGRESS_STEPS of the ops and at the last one."""
        self.ops_done += 1
        every = max(1, self.total_ops // PROGRESS_STEPS)
        if self.progress is not None and (self.ops_done % every == 0 or self.ops_done == self.total_ops):
            self.progress(self.ops_done, self.total_ops, "ops")

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
        yield env.timeout(op_s(op, step.times, step.chunks))
        name = label(op)
        step.rows.append((rank, "compute", op.kind, op.microbatch, op.stage, op.direction, name, start_s, env.now))
        for phase, a, b in comm_spans(op, step.times, step.chunks):
            step.rows.append(
                (
                    rank,
                    "comm",
                    phase,
                    op.microbatch,
                    op.stage,
                    op.direction,
                    f"{phase} {name}",
                    start_s + a,
                    start_s + b,
                )
            )
        for unit in parts:
            step.end_s[unit.key] = env.now
            step.done[unit.key].succeed()
        step.op_done()


def _check_times(t: StageTimes) -> None:
    if min(t.f_attn, t.f_mlp, t.b_attn, t.b_mlp, t.w, t.ep_f, t.ep_b, t.pp_f, t.pp_b) < 0 or t.w > t.b * (1 + 1e-12):
        raise ValueError(f"times must be >= 0 and w <= b_attn + b_mlp; got {t}")


def _check_inputs(ranks: list[list[Op]], stage_times: list[StageTimes]) -> None:
    """Raise ValueError for negative times, a unit run twice, or a dependency that no rank runs."""
    for t in stage_times:
        _check_times(t)
    units = [unit for ops in ranks for op in ops for unit in op.parts()]
    keys = {unit.key for unit in units}
    if len(keys) != len(units):
        raise ValueError("the op lists run some unit of work twice")
    for unit in units:
        missing = [d for d in dependencies(unit, len(stage_times)) if d not in keys]
        if missing:
            raise ValueError(f"{unit.key} depends on {missing[0]}, which no rank runs")


def simulate_ops(
    schedule: str,
    pp: int,
    ranks: list[list[Op]],
    stage_times: list[StageTimes],
    chunks: Chunks | None = None,
    progress: Progress | None = None,
) -> Timeline:
    """Run given per-rank op lists (one StageTimes per model stage; `chunks` overrides them per micro-batch,
    stage and direction) and return the step's timeline; `progress(done, total, "ops")` hears of finished ops."""
    _check_inputs(ranks, stage_times)
    for t in (chunks or {}).values():
        _check_times(t)
    env = simpy.Environment()
    done = {unit.key: env.event() for ops in ranks for op in ops for unit in op.parts()}
    step = _Step(env, schedule, pp, len(stage_times), stage_times, chunks, done, progress=progress)
    step.total_ops = sum(len(ops) for ops in ranks)
    for rank, ops in enumerate(ranks):
        env.process(_rank(step, rank, ops))
    env.run()
    events = pd.DataFrame(step.rows, columns=list(EVENT_COLUMNS)).sort_values(["rank", "start_s"], kind="stable")
    compute = events[events["stream"] == "compute"]
    if len(compute) != sum(len(ops) for ops in ranks):
        raise ValueError(f"schedule deadlocked: {len(compute)} of {sum(map(len, ranks))} ops ran")
    step_time_s = float(compute["end_s"].max())
    span = (events["end_s"] - events["start_s"]).groupby([events["stream"], events["rank"]]).sum()
    busy_s = tuple(float(span.get(("compute", r), 0.0)) for r in range(len(ranks)))
    comm_s = tuple(float(span.get(("comm", r), 0.0)) for r in range(len(ranks)))
    idle_s = tuple(step_time_s - b for b in busy_s)
    return Timeline(step_time_s, busy_s, idle_s, comm_s, events.reset_index(drop=True))


def simulate_pipeline(
    schedule: str,
    pp: int,
    n_microbatches: int,
    stage_times: list[StageTimes],
    virtual_stages: int = 1,
    chunks: Chunks | None = None,
) -> Timeline:
    """Simulate one step of `schedule` (deterministic): `stage_times` has one entry per model stage
    (pp, or pp * virtual_stages chunks for the interleaved schedule), the seconds of one micro-batch;
    `chunks` gives some (micro-batch, stage, direction) their own."""
    expected = num_stages(schedule, pp, virtual_stages)
    if len(stage_times) != expected:
        raise ValueError(f"{schedule} with pp={pp} needs {expected} stage times; got {len(stage_times)}")
    ranks = schedule_ops(schedule, pp, n_microbatches, virtual_stages)
    return simulate_ops(schedule, pp, ranks, list(stage_times), chunks)


def to_chrome_trace(timeline: Timeline) -> dict[str, object]:
    """The timeline as Chrome trace-event JSON (Perfetto opens it): one complete ("X") event per op and per
    communication phase, times in microseconds, one process per rank with its compute stream as thread 0 and
    its expert-parallel communication as thread 1."""
    trace: list[dict[str, object]] = []
    for rank in sorted(set(timeline.events["rank"])):
        trace.append({"name": "process_name", "ph": "M", "pid": int(rank), "tid": 0, "args": {"name": f"rank {rank}"}})
        for tid, stream in enumerate(STREAMS):
            trace.append({"name": "thread_name", "ph": "M", "pid": int(rank), "tid": tid, "args": {"name": stream}})
    for row in timeline.events.itertuples(index=False):
        trace.append(
            {
                "name": row.label,
                "cat": row.op,
                "ph": "X",
                "ts": row.start_s * 1e6,
                "dur": (row.end_s - row.start_s) * 1e6,
                "pid": int(row.rank),
                "tid": STREAMS.index(row.stream),
                "args": {"microbatch": int(row.microbatch), "stage": int(row.stage), "direction": int(row.direction)},
            }
        )
    return {"traceEvents": trace, "displayTimeUnit": "ms"}

"""The goodput model's event form: a whole run drawn failure by failure (SimPy, seeded), for the spread of
completion time the closed form (`simulator.analytic.goodput`) cannot give; on the same assumptions
(exponential failures that also strike checkpoints and restarts, work lost back to the last checkpoint) its
mean matches the closed form's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from hwmodels.units import SECONDS_PER_DAY, SECONDS_PER_HOUR
from simulator.analytic.goodput import _check, segments

MAX_RUNS = 10_000  # drawn runs at most: each is a run's every segment in SimPy


@dataclass(frozen=True, slots=True)
class RunDraws:
    """Completion times of `runs` drawn runs, and their failures."""

    wall_s: np.ndarray
    failures: np.ndarray

    def percentile_s(self, q: float) -> float:
        return float(np.percentile(self.wall_s, q))


@dataclass(frozen=True, slots=True)
class NodePool:
    """Hot spares (`simulator.analytic.spares`): a failure takes a node out with probability `node_share`, for
    an exponential repair of mean `repair_s`; the job waits while more nodes are out than `spares`."""

    spares: int
    repair_s: float
    node_share: float


def _run(env: simpy.Environment, rng: np.random.Generator, work_s: float, interval_s: float, checkpoint_s: float,
         restart_s: float, mtbf_s: float, tail_s: float, pool: NodePool | None, out: list[float]):  # fmt: skip
    """One run: segments of work then a checkpoint (the last with the tail); each attempt at a segment, and
    each restart, lasts until it ends or the next failure comes (exponential: a fresh draw per attempt is the
    same process); a failure may take a node out (then the job waits, failure-free, for one), costs a restart
    and the segment again. Appends the finish time and the failures to `out`."""
    failures = 0
    out_until: list[float] = []  # when each node under repair comes back
    draw = (lambda: rng.exponential(mtbf_s)) if math.isfinite(mtbf_s) else (lambda: math.inf)

    def failed():
        nonlocal failures, out_until
        failures += 1
        if pool is None or rng.random() >= pool.node_share:
            return
        out_until = sorted([t for t in out_until if t > env.now] + [env.now + rng.exponential(pool.repair_s)])
        if len(out_until) > pool.spares:  # no spare left: wait for enough repairs
            yield env.timeout(out_until[len(out_until) - pool.spares - 1] - env.now)

    full, rest = segments(work_s, interval_s)
    lengths = [interval_s] * full + ([rest] if rest else [])
    for i, segment in enumerate(lengths):
        span = segment + checkpoint_s + (tail_s if i == len(lengths) - 1 else 0.0)
        while (cut := draw()) < span:  # the segment and its checkpoint, cut by a failure
            yield env.timeout(cut)
            yield from failed()
            while (cut := draw()) < restart_s:  # a restart, cut by a failure: another
                yield env.timeout(cut)
                yield from failed()
            yield env.timeout(restart_s)
        yield env.timeout(span)
    out += [env.now, failures]


def draw_runs(
    work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float, runs: int = 200,
    seed: int = 0, tail_s: float = 0.0, pool: NodePool | None = None,
) -> RunDraws:  # fmt: skip
    """`runs` runs drawn with seeded failures (the same seed, the same draws)."""
    _check(work_s, interval_s, checkpoint_s, restart_s, mtbf_s)
    if runs < 1:
        raise ValueError(f"runs={runs} must be at least 1")
    rng = np.random.default_rng(seed)
    wall, counts = np.empty(runs), np.empty(runs, dtype=np.int64)
    for i in range(runs):
        env = simpy.Environment()
        out: list[float] = []
        env.process(_run(env, rng, work_s, interval_s, checkpoint_s, restart_s, mtbf_s, tail_s, pool, out))
        env.run()
        wall[i], counts[i] = out
    return RunDraws(wall, counts)


def run_bands(
    expected: dict[str, Any], steady_s: float, steady_gpu_hours: float, runs: int, seed: int = 0
) -> dict[str, Any]:
    """P10/P50/P90 of days and GPU-hours over `runs` drawn runs of an expected run (`analytic.goodput.run_goodput`'s
    answer: its interval, checkpoint, restart and MTBF), GPU-hours scaled from the steady state's."""
    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"goodput draws={runs} must be from 1 to {MAX_RUNS:,}")
    mtbf_s = math.inf if expected["mtbf_hours"] is None else expected["mtbf_hours"] * SECONDS_PER_HOUR
    interval_s = expected["checkpoint_interval_min"] * 60
    spares = expected.get("spares")
    pool = None
    if spares is not None:
        pool = NodePool(spares["nodes"], spares["repair_h"] * SECONDS_PER_HOUR, spares["node_share"])
    draws = draw_runs(steady_s, interval_s, expected["checkpoint_s"], expected["restart_s"], mtbf_s, runs, seed,
                      expected.get("tail_s", 0.0), pool)  # fmt: skip
    idle_gpus = spares["idle_gpus"] if spares is not None else 0
    days = {f"p{q}": draws.percentile_s(q) / SECONDS_PER_DAY for q in (10, 50, 90)}
    hours = {
        f"p{q}": draws.percentile_s(q) * (steady_gpu_hours / steady_s + idle_gpus / SECONDS_PER_HOUR)
        for q in (10, 50, 90)
    }
    return {
        "runs": runs,
        "seed": seed,
        "days": days,
        "gpu_hours": hours,
        "mean_days": float(draws.wall_s.mean()) / SECONDS_PER_DAY,
    }

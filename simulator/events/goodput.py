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


def _run(env: simpy.Environment, rng: np.random.Generator, work_s: float, interval_s: float, checkpoint_s: float,
         restart_s: float, mtbf_s: float, out: list[float]):  # fmt: skip
    """One run: segments of work then a checkpoint; each attempt at a segment, and each restart, lasts until it
    ends or the next failure comes (exponential: a fresh draw per attempt is the same process); a failure
    costs a restart and the segment again. Appends the finish time and the failures to `out`."""
    failures = 0
    draw = (lambda: rng.exponential(mtbf_s)) if math.isfinite(mtbf_s) else (lambda: math.inf)
    full, rest = segments(work_s, interval_s)
    for segment in [interval_s] * full + ([rest] if rest else []):
        while (cut := draw()) < segment + checkpoint_s:  # the segment and its checkpoint, cut by a failure
            yield env.timeout(cut)
            failures += 1
            while (cut := draw()) < restart_s:  # a restart, cut by a failure: another
                yield env.timeout(cut)
                failures += 1
            yield env.timeout(restart_s)
        yield env.timeout(segment + checkpoint_s)
    out += [env.now, failures]


def draw_runs(
    work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float, runs: int = 200,
    seed: int = 0,
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
        env.process(_run(env, rng, work_s, interval_s, checkpoint_s, restart_s, mtbf_s, out))
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
    draws = draw_runs(steady_s, interval_s, expected["checkpoint_s"], expected["restart_s"], mtbf_s, runs, seed)
    days = {f"p{q}": draws.percentile_s(q) / SECONDS_PER_DAY for q in (10, 50, 90)}
    hours = {f"p{q}": draws.percentile_s(q) / steady_s * steady_gpu_hours for q in (10, 50, 90)}
    return {
        "runs": runs,
        "seed": seed,
        "days": days,
        "gpu_hours": hours,
        "mean_days": float(draws.wall_s.mean()) / SECONDS_PER_DAY,
    }

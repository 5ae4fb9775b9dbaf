"""Goodput: what a synchronous training run takes with failures, checkpoints and restarts (issue 24).

The run is `work_s` of steady-state training (the analytic model's wall time). Every `interval_s` of work it
writes a checkpoint (`checkpoint_s`, training paused); a failure (exponential, mean `mtbf_s` apart: the
job's interruptions, `hwmodels.reliability`) loses the work since the last checkpoint and costs a restart
(`restart_s`: rescheduling, reading the checkpoint, warm-up), which can fail too. Expected wall time, in
closed form (Daly, "A higher order estimate of the optimum checkpoint interval for restart dumps", FGCS 22,
2006, eq. for exponential failures): each segment of interval + checkpoint takes, failures and restarts
included, M e^{R/M} (e^{(tau + delta)/M} - 1) on average; the last, shorter segment is priced the same way.
The interval that minimises it is found exactly (`optimal_interval_s`); Young's sqrt(2 delta M) and Daly's
higher-order estimate are its small-delta forms. `simulator.events.goodput` draws the same run failure by
failure (SimPy) and agrees on the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwmodels.units import SECONDS_PER_DAY, SECONDS_PER_HOUR
from simulator.analytic.memory import precision_preset
from simulator.runspec import RunSpec
from workloads.params import params_total
from workloads.precision import training_precision


@dataclass(frozen=True, slots=True)
class Goodput:
    """A run's expected wall time with failures, and where the time beyond the steady state goes."""

    work_s: float  # steady-state training time
    expected_s: float  # its expected wall time with checkpoints, failures and restarts
    interval_s: float  # work between checkpoints
    checkpoint_s: float
    restart_s: float
    mtbf_s: float
    expected_failures: float
    breakdown_s: dict[str, float]  # checkpoints, lost_work, restarts: expected_s - work_s in parts

    @property
    def goodput(self) -> float:
        """Steady-state time over expected wall time (1: nothing lost)."""
        return self.work_s / self.expected_s


def expected_wall_s(work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float) -> float:
    """Expected seconds to finish `work_s` of training (see the module docstring): full segments of interval +
    checkpoint, then the remainder with its checkpoint (`expected_wall_array` of one run)."""
    _check(work_s, interval_s, checkpoint_s, restart_s, mtbf_s)
    one = (np.array([v], dtype=float) for v in (work_s, interval_s, checkpoint_s, restart_s, mtbf_s))
    return float(expected_wall_array(*one)[0])


def expected_wall_array(
    work_s: np.ndarray, interval_s: np.ndarray, checkpoint_s: np.ndarray, restart_s: np.ndarray, mtbf_s: np.ndarray
) -> np.ndarray:
    """`expected_wall_s` on arrays (a sweep's rows; inputs already checked, mtbf inf where nothing fails)."""
    full, rest = segments_array(work_s, interval_s)
    m = np.where(np.isinf(mtbf_s), 1.0, mtbf_s)  # nothing fails: priced below, without failures
    with np.errstate(over="ignore", invalid="ignore"):
        attempts = full * np.expm1((interval_s + checkpoint_s) / m)  # expected failures, segment by segment
        attempts += np.where(rest > 0, np.expm1((rest + checkpoint_s) / m), 0.0)
        failing = m * np.exp(restart_s / m) * attempts
    return np.where(np.isinf(mtbf_s), work_s + (full + (rest > 0)) * checkpoint_s, failing)


def segments(work_s: float, interval_s: float) -> tuple[int, float]:
    """Whole intervals in the work and the remainder (a remainder within 1e-9 of nothing or of an interval,
    rounding's, is neither an extra checkpoint nor a missing one)."""
    full, rest = segments_array(np.array([work_s], dtype=float), np.array([interval_s], dtype=float))
    return int(full[0]), float(rest[0])


def segments_array(work_s: np.ndarray, interval_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`segments` on arrays."""
    full, rest = np.divmod(work_s, interval_s)
    none = rest < 1e-9 * interval_s
    whole = ~none & (interval_s - rest < 1e-9 * interval_s)
    return np.where(whole, full + 1, full), np.where(none | whole, 0.0, rest)


def expected_failures(work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float) -> float:
    """Expected failures over the run: each failure is one of expected_wall_s / mtbf_s exponential arrivals."""
    return 0.0 if math.isinf(mtbf_s) else expected_wall_s(work_s, interval_s, checkpoint_s, restart_s, mtbf_s) / mtbf_s


def optimal_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """The interval minimising the expected time per unit of work, (e^{(tau + delta)/M} - 1) / tau: the root u =
    tau / M in (0, 1) of (1 - u) e^u = e^{-delta/M}, found by bisection (the left side falls from 1 to 0)."""
    if checkpoint_s <= 0 or math.isinf(mtbf_s):
        return math.inf  # free checkpoints, or nothing fails: the interval does not matter; never checkpoint
    target = math.exp(-checkpoint_s / mtbf_s)
    low, high = 0.0, 1.0
    for _ in range(200):
        mid = (low + high) / 2
        if (1 - mid) * math.exp(mid) > target:
            low = mid
        else:
            high = mid
        if high - low <= 1e-16:
            break
    return (low + high) / 2 * mtbf_s


def young_daly_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """Daly's higher-order estimate of the optimum: sqrt(2 delta M) (1 + sqrt(delta/2M)/3 + delta/18M) - delta
    when delta < 2M, else M (Young's sqrt(2 delta M) to first order)."""
    d, m = checkpoint_s, mtbf_s
    if d >= 2 * m:
        return m
    return math.sqrt(2 * d * m) * (1 + math.sqrt(d / (2 * m)) / 3 + d / (18 * m)) - d


def goodput(
    work_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float, interval_s: float | None = None
) -> Goodput:
    """The expected run (`interval_s` None: the optimal interval, capped at the whole run)."""
    _check(work_s, interval_s or work_s, checkpoint_s, restart_s, mtbf_s)
    if interval_s is None:
        interval_s = min(optimal_interval_s(checkpoint_s, mtbf_s), work_s)
    expected = expected_wall_s(work_s, interval_s, checkpoint_s, restart_s, mtbf_s)
    failures = expected_failures(work_s, interval_s, checkpoint_s, restart_s, mtbf_s)
    full, rest = segments(work_s, interval_s)
    checkpoints = (full + (rest > 0)) * checkpoint_s
    restarts = failures * restart_s  # first order: a restart that fails is counted with the lost work
    lost = 0.0 if math.isinf(mtbf_s) else max(0.0, expected - work_s - checkpoints - restarts)
    breakdown = {"checkpoints": checkpoints, "lost_work": lost, "restarts": restarts}
    return Goodput(work_s, expected, interval_s, checkpoint_s, restart_s, mtbf_s, failures, breakdown)


def _check(work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float) -> None:
    for name, value in (("work_s", work_s), ("interval_s", interval_s)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name}={value!r} must be a positive finite number of seconds")
    for name, value in (("checkpoint_s", checkpoint_s), ("restart_s", restart_s)):
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{name}={value!r} must be a finite number of seconds >= 0")
    if not mtbf_s > 0:
        raise ValueError(f"mtbf_s={mtbf_s!r} must be positive (inf: nothing fails)")


# A restart besides reading the checkpoint: failure detected, job rescheduled, communicators rebuilt, warmed
# up. FlashRecovery (arXiv 2509.03047) restores a 4,800-device job in 150 s with a restart built for it; a
# stock restart takes longer (set `restart_s`).
RESTART_S = 150.0
RESTART_SOURCE = "FlashRecovery (arXiv 2509.03047): a 4,800-device job restored in 150 s"


@dataclass(frozen=True, slots=True)
class Reliability:
    """The inputs of a run's expected figures: failure statistics (scaled), checkpoint storage, the interval
    (None: the optimum) and the restart time besides reading the checkpoint."""

    failures: str = "llama3-405b"
    failure_scale: float = 1.0
    storage: str = "3fs"
    interval_s: float | None = None
    restart_s: float = RESTART_S


def checkpoint_bytes(run: RunSpec) -> float:
    """A checkpoint of the whole job: every parameter (MTP included) with its weights, master copy and Adam
    moments in the run's training precision (`workloads.precision`)."""
    prec = training_precision(precision_preset(run))
    per_param = prec.weight_bytes + prec.master_bytes + prec.optimizer_bytes
    return params_total(run.model, include_mtp=True) * per_param


def run_goodput(run: RunSpec, steady_wall_s: float, steady_gpu_hours: float, steady_cost_usd: float,
                inputs: Reliability = Reliability()) -> dict[str, Any]:  # fmt: skip
    """A run's expected wall time, GPU-hours and cost with failures, checkpoints and restarts, beside its
    steady state (`report.estimate`), and what they were computed from."""
    from hwmodels.reliability import load_failure_rates, load_storage

    rates = load_failure_rates(inputs.failures).scaled(inputs.failure_scale)
    storage = load_storage(inputs.storage)
    if not (inputs.restart_s >= 0 and math.isfinite(inputs.restart_s)):
        raise ValueError(f"restart_s={inputs.restart_s!r} must be a finite number of seconds >= 0")
    state = checkpoint_bytes(run)
    mtbf = rates.mtbf_s(run.gpus, run.node.gpus_per_node)
    g = goodput(
        steady_wall_s, state / storage.write_bytes_per_s, inputs.restart_s + state / storage.read_bytes_per_s,
        mtbf, inputs.interval_s,
    )  # fmt: skip
    factor = g.expected_s / g.work_s
    return {
        "goodput": g.goodput,
        "expected_days": g.expected_s / SECONDS_PER_DAY,
        "expected_gpu_hours": steady_gpu_hours * factor,
        "expected_cost_usd": steady_cost_usd * factor,
        "mtbf_hours": mtbf / SECONDS_PER_HOUR if math.isfinite(mtbf) else None,  # None: nothing fails
        "expected_failures": g.expected_failures,
        "checkpoint_interval_min": g.interval_s / 60,
        "checkpoint_bytes": state,
        "checkpoint_s": g.checkpoint_s,
        "restart_s": g.restart_s,
        "breakdown_hours": {k: v / SECONDS_PER_HOUR for k, v in g.breakdown_s.items()},
        "sources": {"failures": rates.source, "storage": storage.source, "restart": RESTART_SOURCE},
    }

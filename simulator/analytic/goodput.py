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
from simulator.analytic.memory import memory_per_gpu, precision_preset
from simulator.analytic.spares import (
    NODE_CLASSES,
    REPAIR_H,
    REPAIR_SOURCE,
    check_spares,
    nodes_out_mean,
    shortfall_probability,
    spares_for,
    wait_per_failure_s,
)
from simulator.runspec import RunSpec
from workloads.params import params_total
from workloads.precision import training_precision


@dataclass(frozen=True, slots=True)
class Goodput:
    """A run's expected wall time with failures, and where the time beyond the steady state goes."""

    work_s: float  # steady-state training time
    expected_s: float  # its expected wall time with checkpoints, failures and restarts
    interval_s: float  # work between checkpoints
    checkpoint_s: float  # training paused per checkpoint
    restart_s: float
    mtbf_s: float
    expected_failures: float
    breakdown_s: dict[str, float]  # checkpoints, lost_work, restarts, waiting_for_nodes: expected_s - work_s

    @property
    def goodput(self) -> float:
        """Steady-state time over expected wall time (1: nothing lost)."""
        return self.work_s / self.expected_s


def expected_wall_s(
    work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float, tail_s: float = 0.0,
    wait_s: float = 0.0,
) -> float:  # fmt: skip
    """Expected seconds to finish `work_s` of training (see the module docstring): full segments of interval +
    checkpoint, then the last with its checkpoint and `tail_s` (an asynchronous checkpoint's final write),
    plus `wait_s` for each failure spent waiting for a node, which nothing interrupts (`expected_wall_array`
    of one run)."""
    _check(work_s, interval_s, checkpoint_s, restart_s, mtbf_s)
    for name, value in (("tail_s", tail_s), ("wait_s", wait_s)):
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{name}={value!r} must be a finite number of seconds >= 0")
    one = (np.array([v], dtype=float) for v in (work_s, interval_s, checkpoint_s, restart_s, mtbf_s, tail_s, wait_s))
    return float(expected_wall_array(*one)[0])


def expected_wall_array(
    work_s: np.ndarray, interval_s: np.ndarray, checkpoint_s: np.ndarray, restart_s: np.ndarray, mtbf_s: np.ndarray,
    tail_s: np.ndarray | float = 0.0, wait_s: np.ndarray | float = 0.0,
) -> np.ndarray:  # fmt: skip
    """`expected_wall_s` on arrays (a sweep's rows; inputs already checked, mtbf inf where nothing fails)."""
    running = _running_array(work_s, interval_s, checkpoint_s, restart_s, mtbf_s, tail_s)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(mtbf_s), running, running * (1 + wait_s / np.where(np.isinf(mtbf_s), 1.0, mtbf_s)))


def _running_array(
    work_s: np.ndarray, interval_s: np.ndarray, checkpoint_s: np.ndarray, restart_s: np.ndarray, mtbf_s: np.ndarray,
    tail_s: np.ndarray | float,
) -> np.ndarray:  # fmt: skip
    """Daly's expected time with the job running (training, checkpointing or restarting; failures strike it all):
    every segment but the last, then the last with the tail."""
    full, rest = segments_array(work_s, interval_s)
    last = np.where(rest > 0, rest, interval_s)
    others = full - (rest == 0)
    m = np.where(np.isinf(mtbf_s), 1.0, mtbf_s)  # nothing fails: priced below, without failures
    with np.errstate(over="ignore", invalid="ignore"):
        # expected failures, segment by segment (no full segment: none, even where one would overflow)
        attempts = np.where(others > 0, others * np.expm1((interval_s + checkpoint_s) / m), 0.0)
        attempts += np.expm1((last + checkpoint_s + tail_s) / m)
        failing = m * np.exp(restart_s / m) * attempts
    return np.where(np.isinf(mtbf_s), work_s + (full + (rest > 0)) * checkpoint_s + tail_s, failing)


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


def expected_failures(
    work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float, tail_s: float = 0.0
) -> float:
    """Expected failures over the run: exponential arrivals, mtbf_s apart, over the time the job runs (waits
    for a node excluded)."""
    if math.isinf(mtbf_s):
        return 0.0
    one = (np.array([v], dtype=float) for v in (work_s, interval_s, checkpoint_s, restart_s, mtbf_s, tail_s))
    return float(_running_array(*one)[0]) / mtbf_s


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
    work_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float, interval_s: float | None = None,
    tail_s: float = 0.0, wait_s: float = 0.0, min_interval_s: float = 0.0,
) -> Goodput:  # fmt: skip
    """The expected run (`interval_s` None: the optimal interval, no shorter than `min_interval_s` and capped at
    the whole run). `tail_s` and `wait_s`: `expected_wall_s`'s."""
    _check(work_s, interval_s or work_s, checkpoint_s, restart_s, mtbf_s)
    if interval_s is None:
        interval_s = min(max(optimal_interval_s(checkpoint_s, mtbf_s), min_interval_s), work_s)
    expected = expected_wall_s(work_s, interval_s, checkpoint_s, restart_s, mtbf_s, tail_s, wait_s)
    failures = expected_failures(work_s, interval_s, checkpoint_s, restart_s, mtbf_s, tail_s)
    full, rest = segments(work_s, interval_s)
    checkpoints = (full + (rest > 0)) * checkpoint_s + tail_s
    restarts = failures * restart_s  # first order: a restart that fails is counted with the lost work
    waits = failures * wait_s
    lost = 0.0 if math.isinf(mtbf_s) else max(0.0, expected - work_s - checkpoints - restarts - waits)
    breakdown = {"checkpoints": checkpoints, "lost_work": lost, "restarts": restarts, "waiting_for_nodes": waits}
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


CHECKPOINTING = ("sync", "async")
ASYNC_SOURCE = (
    "asynchronous checkpointing as PyTorch DCP's async_save and Megatron's async save run it: each rank copies "
    "its states to host memory over PCIe (training paused), the write goes on in the background"
)


@dataclass(frozen=True, slots=True)
class Reliability:
    """The inputs of a run's expected figures: failure statistics (scaled), checkpoint storage and mode, the
    interval (None: the optimum), the restart time besides reading the checkpoint, and hot spares (None: a
    healthy node is always at hand, the cluster's pool; a number: a dedicated pool of the job's nodes and
    that many idle spares, failed nodes back after `repair_h`)."""

    failures: str = "llama3-405b"
    failure_scale: float = 1.0
    storage: str = "3fs"
    interval_s: float | None = None
    restart_s: float = RESTART_S
    checkpointing: str = "sync"
    spare_nodes: int | None = None
    repair_h: float = REPAIR_H


def checkpoint_bytes(run: RunSpec) -> float:
    """A checkpoint of the whole job: every parameter (MTP included) with its weights, master copy and Adam
    moments in the run's training precision (`workloads.precision`)."""
    prec = training_precision(precision_preset(run))
    per_param = prec.weight_bytes + prec.master_bytes + prec.optimizer_bytes
    return params_total(run.model, include_mtp=True) * per_param


def snapshot_bytes(run: RunSpec) -> float:
    """What the fullest GPU copies to host memory for an asynchronous checkpoint: its weights and optimizer
    states (master copy and moments), gradients not (`analytic.memory.memory_per_gpu`)."""
    held = memory_per_gpu(run)
    return held["weights"] + held["optimizer_states"]


def checkpoint_times(write_s: Any, read_s: Any, snapshot_s: Any, is_async: Any, restart_s: Any) -> tuple[Any, ...]:
    """(pause, tail, floor, restart) seconds of a checkpoint scheme, on scalars or a sweep's arrays: sync pauses
    for the write; async for the snapshot, with the write as the run's tail and as part of every restart (a
    failure loses it), and no interval shorter than the write less the snapshot (`run_goodput`'s docstring).
    The restart is the given one, reading the checkpoint back and, async, the lost write."""
    pause = np.where(is_async, snapshot_s, write_s)
    tail = np.where(is_async, write_s, 0.0)
    floor = np.where(is_async, np.maximum(write_s - pause, 0.0), 0.0)
    return pause, tail, floor, restart_s + read_s + tail


def run_goodput(run: RunSpec, steady_wall_s: float, steady_gpu_hours: float, steady_cost_usd: float,
                inputs: Reliability = Reliability()) -> dict[str, Any]:  # fmt: skip
    """A run's expected wall time, GPU-hours and cost with failures, checkpoints and restarts, beside its
    steady state (`report.estimate`), and what they were computed from.

    Synchronous checkpoints pause training for the write to storage. Asynchronous ones pause it for the
    snapshot to host memory and write in the background: a checkpoint counts once written, so a failure loses
    the work back to the last one written, one write longer than the last one taken; under exponential
    failures that is Daly's form with the write added to every restart (and to the run's end, the last
    write), exactly. The next snapshot waits for the write, so the interval is at least the write less
    the snapshot."""
    from hwmodels.reliability import load_failure_rates, load_storage

    rates = load_failure_rates(inputs.failures).scaled(inputs.failure_scale)
    storage = load_storage(inputs.storage)
    if not (inputs.restart_s >= 0 and math.isfinite(inputs.restart_s)):
        raise ValueError(f"restart_s={inputs.restart_s!r} must be a finite number of seconds >= 0")
    if inputs.checkpointing not in CHECKPOINTING:
        raise ValueError(f"checkpointing={inputs.checkpointing!r}; use one of {', '.join(CHECKPOINTING)}")
    check_spares(inputs.spare_nodes, inputs.repair_h)
    state = checkpoint_bytes(run)
    write_s, read_s = state / storage.write_bytes_per_s, state / storage.read_bytes_per_s
    mtbf = rates.mtbf_s(run.gpus, run.node.gpus_per_node)
    is_async = inputs.checkpointing == "async"
    snapshot_s = snapshot_bytes(run) / run.node.pcie_bw_bytes_per_s if is_async else 0.0
    times = checkpoint_times(write_s, read_s, snapshot_s, is_async, inputs.restart_s)
    pause_s, tail_s, floor_s, restart_s = (float(t) for t in times)
    if inputs.interval_s is not None and inputs.interval_s < floor_s:
        raise ValueError(
            f"a checkpoint every {inputs.interval_s / 60:g} min is sooner than an asynchronous write "
            f"({write_s:.1f} s) ends: the writes would queue; set a longer interval or sync checkpoints"
        )
    node_rate = rates.job_rate_per_s(run.gpus, run.node.gpus_per_node, classes=NODE_CLASSES)
    total_rate = rates.job_rate_per_s(run.gpus, run.node.gpus_per_node)
    spares, repair_s = inputs.spare_nodes, inputs.repair_h * SECONDS_PER_HOUR
    wait_s = 0.0 if spares is None else wait_per_failure_s(spares, node_rate, total_rate, repair_s)
    g = goodput(steady_wall_s, pause_s, restart_s, mtbf, inputs.interval_s, tail_s, wait_s, floor_s)
    factor = g.expected_s / g.work_s
    price = steady_cost_usd / steady_gpu_hours if steady_gpu_hours > 0 else 0.0
    spare_gpu_hours = (spares or 0) * run.node.gpus_per_node * g.expected_s / SECONDS_PER_HOUR
    out: dict[str, Any] = {
        "goodput": g.goodput,
        "expected_days": g.expected_s / SECONDS_PER_DAY,
        "expected_gpu_hours": steady_gpu_hours * factor + spare_gpu_hours,
        "expected_cost_usd": steady_cost_usd * factor + spare_gpu_hours * price,
        "mtbf_hours": mtbf / SECONDS_PER_HOUR if math.isfinite(mtbf) else None,  # None: nothing fails
        "expected_failures": g.expected_failures,
        "checkpointing": inputs.checkpointing,
        "checkpoint_interval_min": g.interval_s / 60,
        "checkpoint_bytes": state,
        "checkpoint_s": g.checkpoint_s,  # training paused per checkpoint
        "checkpoint_write_s": write_s,
        "restart_s": g.restart_s,  # the restart, the read and (async) the write a failure loses
        "tail_s": tail_s,
        "wait_s": wait_s,  # per failure, waiting for a healthy node (hot spares)
        "breakdown_hours": {k: v / SECONDS_PER_HOUR for k, v in g.breakdown_s.items()},
        "spares": None,
        "sources": {"failures": rates.source, "storage": storage.source, "restart": RESTART_SOURCE},
    }
    if inputs.checkpointing == "async":
        out["sources"]["checkpointing"] = ASYNC_SOURCE
    if spares is not None:
        out["spares"] = {
            "nodes": spares,
            "idle_gpus": spares * run.node.gpus_per_node,
            "repair_h": inputs.repair_h,
            "node_share": node_rate / total_rate if total_rate > 0 else 0.0,  # failures that take a node out
            "idle_gpu_hours": spare_gpu_hours,
            "nodes_out_mean": nodes_out_mean(node_rate, repair_s),
            "shortfall_probability": shortfall_probability(spares, node_rate, repair_s),
            "spares_for_99pct": spares_for(0.01, node_rate, repair_s),
        }
        out["sources"]["repair"] = REPAIR_SOURCE
    return out


def gpu_hours_by_interval(expected: dict[str, Any], steady_s: float, steady_gpu_hours: float,
                          intervals_s: np.ndarray) -> np.ndarray:  # fmt: skip
    """Expected GPU-hours of a `run_goodput` answer at other checkpoint intervals, all else equal (NaN where an
    asynchronous write would not end before the next checkpoint)."""
    n = len(intervals_s)
    mtbf = math.inf if expected["mtbf_hours"] is None else expected["mtbf_hours"] * SECONDS_PER_HOUR
    full = (np.full(n, v, dtype=float) for v in (steady_s, expected["checkpoint_s"], expected["restart_s"], mtbf))
    work, pause, restart, mtbf_s = full
    wall = expected_wall_array(work, intervals_s, pause, restart, mtbf_s, expected["tail_s"], expected["wait_s"])
    idle = (expected["spares"] or {}).get("idle_gpus", 0)
    hours = wall * (steady_gpu_hours / steady_s + idle / SECONDS_PER_HOUR)
    floor = expected["checkpoint_write_s"] - expected["checkpoint_s"] if expected["checkpointing"] == "async" else 0
    return np.where(intervals_s < floor, np.nan, hours)

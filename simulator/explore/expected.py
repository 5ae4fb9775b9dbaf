"""A sweep's expected-run columns: `simulator.analytic.goodput`'s figures for every row at once, on arrays,
after the model has run (the goodput inputs never change a model run)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwmodels.reliability import load_storage
from hwmodels.units import SECONDS_PER_DAY, SECONDS_PER_HOUR
from simulator.analytic.goodput import checkpoint_times, expected_wall_array, optimal_interval_s
from simulator.analytic.spares import wait_per_failure_s
from simulator.explore import expr

# what the expected run needs of each model run (dropped after use): interruptions per second at failure_scale
# 1, those that take a node out, an asynchronous snapshot's pause, GPUs per node
GOODPUT_INPUTS = ("_interrupts_per_s", "_node_interrupts_per_s", "_snapshot_s", "_gpus_per_node")
GOODPUT_OUTPUTS = ("goodput", "expected_days", "expected_gpu_hours", "expected_cost_usd", "mtbf_hours")


def expected_columns(out: pd.DataFrame, steady_s: np.ndarray) -> None:
    """The goodput columns (`analytic.goodput.run_goodput`'s figures, row by row on arrays): checkpoint and
    restart from the row's storage and checkpointing, MTBF from its interruptions x failure_scale, the optimal
    interval once per distinct (pause, MTBF, floor) and the wait for a node once per distinct (spares, rate,
    repair) unless the row has none. NaN where the row is invalid; an asynchronous row whose interval is
    shorter than its write is made invalid, as `v3sim train` refuses it."""
    rows = len(out)
    state = out["checkpoint_bytes"].to_numpy(float)
    storage = out["storage"].to_numpy(object)
    valid = out["valid"].to_numpy(bool, copy=True)
    specs = {name: load_storage(name) for name in set(storage[valid])}
    write = np.array([specs[x].write_bytes_per_s if ok else np.nan for x, ok in zip(storage, valid, strict=True)])
    read = np.array([specs[x].read_bytes_per_s if ok else np.nan for x, ok in zip(storage, valid, strict=True)])
    scale = expr.floats(out["failure_scale"].to_numpy())
    is_async = out["checkpointing"].to_numpy(object) == "async"
    with np.errstate(divide="ignore", invalid="ignore"):
        mtbf_s = 1 / (scale * out["_interrupts_per_s"].to_numpy(float))
        write_s = state / write
        given_restart = expr.floats(out["restart_s"].to_numpy())
        pause_s, tail_s, floor_s, restart_s = checkpoint_times(
            write_s, state / read, out["_snapshot_s"].to_numpy(float), is_async, given_restart
        )
    given = expr.floats(out["checkpoint_interval_min"].to_numpy()) * 60
    queued = np.flatnonzero(valid & np.isfinite(given) & (given < floor_s))
    for i in queued:
        out.loc[out.index[i], "reason"] = (
            f"checkpoint_interval_min={given[i] / 60:g} is sooner than an asynchronous write ({write_s[i]:.1f} s) ends"
        )
    out.loc[out.index[queued], "valid"] = False
    valid[queued] = False
    interval = np.full(rows, np.nan)
    free = np.flatnonzero(valid & ~np.isfinite(given))  # rows taking the optimum: once per distinct triple
    triples = np.stack([pause_s[free], mtbf_s[free], floor_s[free]], axis=1)
    distinct, back = np.unique(triples, axis=0, return_inverse=True)
    best = np.array([max(optimal_interval_s(float(c), float(m)), float(f)) for c, m, f in distinct])
    interval[free] = np.minimum(best[back.ravel()] if len(free) else best, steady_s[free])
    interval = np.where(valid & np.isfinite(given), given, interval)
    wait_s, spares = _node_waits(out, valid, scale)
    expected = np.full(rows, np.nan)
    ok = valid & np.isfinite(interval)
    expected[ok] = expected_wall_array(
        steady_s[ok], interval[ok], pause_s[ok], restart_s[ok], mtbf_s[ok], tail_s[ok], wait_s[ok]
    )
    factor = expected / steady_s
    idle_gpu_hours = spares * out["_gpus_per_node"].to_numpy(float) * expected / SECONDS_PER_HOUR
    out["goodput"] = 1 / factor
    out["expected_days"] = expected / SECONDS_PER_DAY
    out["expected_gpu_hours"] = out["gpu_hours"].to_numpy(float) * factor + idle_gpu_hours
    out["expected_cost_usd"] = out["cost_usd"].to_numpy(float) * factor + idle_gpu_hours * out["usd_per_gpu_hour"]
    out["mtbf_hours"] = np.where(np.isinf(mtbf_s), np.nan, mtbf_s / SECONDS_PER_HOUR)


def _node_waits(out: pd.DataFrame, valid: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's expected wait for a healthy node per failure (0 without hot spares) and its spares (0 without),
    once per distinct (spares, node-failure rate, repair hours) (`analytic.spares`)."""
    spares = expr.floats(out["spare_nodes"].to_numpy())
    pooled = valid & np.isfinite(spares)
    node_rate = scale * out["_node_interrupts_per_s"].to_numpy(float)
    total_rate = scale * out["_interrupts_per_s"].to_numpy(float)
    repair_s = expr.floats(out["repair_h"].to_numpy()) * SECONDS_PER_HOUR
    wait_s = np.zeros(len(out))
    at = np.flatnonzero(pooled)
    keys = np.stack([spares[at], node_rate[at], total_rate[at], repair_s[at]], axis=1)
    distinct, back = np.unique(keys, axis=0, return_inverse=True)
    waits = np.array([wait_per_failure_s(int(k), n, t, r) for k, n, t, r in distinct])
    if len(at):
        wait_s[at] = waits[back.ravel()]
    return wait_s, np.where(pooled, spares, 0.0)

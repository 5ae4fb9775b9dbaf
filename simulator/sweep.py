"""Running a sweep: every point through the analytic or the event model, here or on a Dask cluster.

The fast path: the token budget and the price only set GPU-hours, dollars and days, so the points that
differ in nothing else share one model evaluation (step time, throughput, memory), and those three follow
on whole numpy arrays. A sweep of layouts x budgets x prices costs one `report.estimate` per layout; a
sweep whose every point is a different run costs one per point (about 5 ms each, analytic).

Evaluation is deterministic (the event model's draws are seeded by the point's `seed`), so a point gives
the same row whichever process, machine or Dask worker runs it.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from hwmodels.files import check_output, write_atomic
from simulator.report import estimate
from simulator.runspec import RUN_FIELDS, RunSpec, build_run, check_run_length
from simulator.simulate import simulate
from simulator.sweepspec import (
    EVENT_DEFAULTS,
    NAMED,
    RUN_DEFAULTS,
    SweepSpec,
    constraint_failures,
    event_options,
    point_error,
    points,
)
from simulator.training import BREAKDOWN_KEYS, SECONDS_PER_HOUR

RESULT_SUFFIXES = (".parquet", ".csv")
RUN_LENGTH = ("tokens", "price_per_gpu_hour")  # set only GPU-hours, $ and days: evaluated on arrays
MALLOC_TRIM_BYTES = 2**30  # for the Dask workers started here (see _dask_client)
# Fewer units than this run in this process: starting workers would cost more than they save.
SERIAL_BELOW = {"analytic": 32, "event": 2}


def inputs(engine: str) -> tuple[str, ...]:
    """The input columns of a sweep on `engine` (the event model's options only where they matter)."""
    return (*NAMED, *RUN_FIELDS, *(EVENT_DEFAULTS if engine == "event" else ()))


def run_of(point: Mapping[str, Any]) -> RunSpec:
    """The RunSpec of a (completed) point."""
    named = {k: point[k] for k in ("model", "gpu", "node") if point.get(k) is not None}
    return build_run({**named, **{k: point[k] for k in RUN_FIELDS}})


def _common(run: RunSpec, tokens_per_s: float, stage_layers: Iterable[int]) -> dict[str, Any]:
    return {
        "dp": run.dp,
        "microbatches": run.microbatches,
        "stage_split": ",".join(map(str, stage_layers)),
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_gpu": tokens_per_s / run.gpus,
        "catalog_usd_per_gpu_hour": run.node.gpu.price_usd_per_gpu_hour,
    }


def _analytic(point: Mapping[str, Any]) -> dict[str, Any]:
    run = run_of(point)
    r = estimate(run, point["profile"])
    return {
        "step_time_s": r.step_time_s,
        **_common(run, r.tokens_per_s, r.stage_layers),
        **{f"{part}_s": v for part, v in r.breakdown.items()},
        "mfu_bf16": r.mfu["bf16"],
        "mfu_fp8": r.mfu.get("fp8", math.nan),
        "memory_per_gpu_bytes": r.memory_per_gpu_bytes["total"],
    }


def _event(point: Mapping[str, Any]) -> dict[str, Any]:
    run = run_of(point)
    network, routing, stragglers = event_options(point)
    sim = simulate(run, point["profile"], network, routing, stragglers)
    return {
        "step_time_s": sim.step_time_s,
        **_common(run, run.global_batch_tokens / sim.step_time_s, sim.stage_layers),
        "analytic_step_time_s": sim.analytic_step_time_s,
        "pipeline_s": sim.pipeline_s,
        "dp_and_optimizer_s": sim.dp_and_optimizer_s,
        "max_idle_s": max(sim.idle_s),
    }


_COMMON = ("dp", "microbatches", "stage_split", "tokens_per_s", "tokens_per_s_per_gpu", "catalog_usd_per_gpu_hour")
OUTPUTS = {  # each engine's output columns, before GPU-hours, usd_per_gpu_hour, cost_usd and days
    "analytic": (
        "step_time_s",
        *_COMMON,
        *(f"{part}_s" for part in BREAKDOWN_KEYS),
        "mfu_bf16",
        "mfu_fp8",
        "memory_per_gpu_bytes",
    ),
    "event": ("step_time_s", *_COMMON, "analytic_step_time_s", "pipeline_s", "dp_and_optimizer_s", "max_idle_s"),
}
DERIVED = ("usd_per_gpu_hour", "gpu_hours", "cost_usd", "days")  # from the outputs, on arrays
TEXT_COLUMNS = frozenset(
    {"model", "gpu", "node", "profile", "topology", "stage_layers", "precision", "schedule", "recompute"}
    | {"network", "ecmp", "stage_split", "catalog_usd_per_gpu_hour"}
)
ENGINE_FUNCTIONS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {"analytic": _analytic, "event": _event}


def evaluate_units(units: Sequence[Mapping[str, Any]], engine: str) -> list[dict[str, Any]]:
    """Each unit's outputs, or {'reason': why it is invalid} (a run the model rejects: the ValueError's text)."""
    out = []
    for point in units:
        try:
            out.append(ENGINE_FUNCTIONS[engine](point))
        except (ValueError, TypeError) as exc:  # TypeError: a value of a type point_error does not foresee
            out.append({"reason": " ".join(str(exc).split())})
    return out


def _chunks(units: list[Any], parts: int) -> list[list[Any]]:
    size = max(1, math.ceil(len(units) / parts))
    return [units[i : i + size] for i in range(0, len(units), size)]


def _dask_client(workers: int | None, scheduler: str | None):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--workers and --scheduler need Dask: pip install 'v3sim[cluster]'") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    import dask

    # Dask's workers return freed memory to the OS above 64 KiB (MALLOC_TRIM_THRESHOLD_): that halves the
    # event model's speed (measured: 12.3 s vs 6.3 s for two V3 steps), so the workers started here trim at 1 GiB.
    trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": MALLOC_TRIM_BYTES}
    with warnings.catch_warnings(), dask.config.set(trim):
        warnings.filterwarnings("ignore", message="Port .* is already in use")  # another cluster here: fine
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        )
    return Client(cluster), cluster


def run_units(
    units: list[Mapping[str, Any]],
    engine: str,
    processes: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """`evaluate_units` over all units, results in order: on a Dask cluster (`workers` started here, or the
    `scheduler` at an address), else in `processes` local processes (default: one per core; few units: here)."""
    if workers is not None and workers <= 0:
        raise ValueError(f"workers={workers} must be a positive integer")
    if processes is not None and processes <= 0:
        raise ValueError(f"processes={processes} must be a positive integer")
    bar = tqdm(total=len(units), unit="run", disable=None if progress else True, file=sys.stderr)
    results: list[list[dict[str, Any]]] = []
    try:
        if workers or scheduler:
            from dask.distributed import as_completed

            client, cluster = _dask_client(workers, scheduler)
            try:
                parallel = sum(client.nthreads().values()) or 1
                chunks = _chunks(units, 4 * parallel)
                futures = client.map(evaluate_units, chunks, engine=engine, pure=False)
                order = {f.key: i for i, f in enumerate(futures)}
                results = [[] for _ in chunks]
                for future in as_completed(futures):
                    results[order[future.key]] = future.result()
                    bar.update(len(results[order[future.key]]))
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
        else:
            parallel = processes or os.cpu_count() or 1
            if parallel == 1 or len(units) < SERIAL_BELOW[engine]:
                for chunk in _chunks(units, max(1, len(units) // 50)):
                    results.append(evaluate_units(chunk, engine))
                    bar.update(len(chunk))
            else:
                chunks = _chunks(units, 4 * parallel)
                with ProcessPoolExecutor(max_workers=parallel) as pool:
                    for part in pool.map(evaluate_units, chunks, [engine] * len(chunks)):
                        results.append(part)
                        bar.update(len(part))
    finally:
        bar.close()
    return [row for part in results for row in part]


def _key(point: Mapping[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(repr(point[c]) for c in columns if c not in RUN_LENGTH)  # repr: 1 and 1.0 and True differ


def _run_length_error(point: Mapping[str, Any]) -> str:
    """Why a point's own token budget or price is not valid ('' when they are)."""
    try:
        check_run_length(point["tokens"], point["price_per_gpu_hour"])
    except ValueError as exc:
        return str(exc)
    return ""


def _shared(point: Mapping[str, Any]) -> dict[str, Any]:
    """The run a group of points that differ only in tokens and price evaluates once: theirs, with the
    default budget and price (which cannot fail and change nothing but GPU-hours, $ and days)."""
    return {**point, "tokens": RUN_DEFAULTS["tokens"], "price_per_gpu_hour": None}


def evaluate(
    pts: list[dict[str, Any]],
    engine: str = "analytic",
    constraints: tuple[str, ...] = (),
    processes: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per point: every input, `valid`, `reason` (why not valid: a constraint or the model's error)
    and the outputs (NaN where invalid)."""
    columns = inputs(engine)
    frame = pd.DataFrame([{c: p[c] for c in columns} for p in pts], columns=list(columns))
    frame["stage_layers"] = [",".join(map(str, s)) if s else "" for s in frame["stage_layers"]]
    reason = constraint_failures(frame, constraints) if len(frame) else pd.Series([], dtype=object)
    for i, point in enumerate(pts):  # each point's own values: types, then its budget and price
        if not reason.iloc[i]:
            reason.iloc[i] = point_error(point) or _run_length_error(point)
    keys = [_key(p, columns) for p in pts]
    units: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for point, key, why in zip(pts, keys, reason, strict=True):
        if not why:
            units.setdefault(key, _shared(point))
    done = dict(
        zip(units, run_units(list(units.values()), engine, processes, workers, scheduler, progress), strict=True)
    )
    outputs = pd.DataFrame(
        [done.get(k, {}) if not why else {} for k, why in zip(keys, reason, strict=True)],
        columns=[*OUTPUTS[engine], "reason"],
        index=frame.index,
    )
    model_reason = np.array([r if isinstance(r, str) else "" for r in outputs.pop("reason")], dtype=object)
    frame["valid"] = (reason == "") & (model_reason == "")
    frame["reason"] = np.where(reason != "", reason, model_reason)
    out = pd.concat([frame, outputs], axis=1)
    for name in ("dp", "microbatches"):
        out[name] = out[name].astype("Int64")
    # the run-length outputs, on arrays (report.estimate's formulas, operation for operation)
    wall_s = out["tokens"].to_numpy(float) / out["tokens_per_s"].to_numpy(float)
    price = out["price_per_gpu_hour"].to_numpy(float)
    out["usd_per_gpu_hour"] = np.where(np.isnan(price), out["catalog_usd_per_gpu_hour"].to_numpy(float), price)
    out["gpu_hours"] = wall_s * out["gpus"].to_numpy(float) / SECONDS_PER_HOUR
    out["cost_usd"] = out["gpu_hours"] * out["usd_per_gpu_hour"]
    out["days"] = wall_s / 86400
    return out.drop(columns="catalog_usd_per_gpu_hour")


def run_sweep(
    spec: SweepSpec,
    processes: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Every point of `spec`, evaluated (see `evaluate`)."""
    numeric = [c for c in (*inputs(spec.engine), *OUTPUTS[spec.engine], *DERIVED) if c not in TEXT_COLUMNS]
    unknown = [name for name in spec.objectives if name not in numeric]
    if unknown or not spec.objectives:
        raise ValueError(f"objective(s) {', '.join(unknown) or '(none)'} unknown; use {', '.join(numeric)}")
    return evaluate(points(spec), spec.engine, spec.constraints, processes, workers, scheduler, progress)


def pareto_front(frame: pd.DataFrame, objectives: Mapping[str, str]) -> pd.Series:
    """Whether each point is on the Pareto front of `objectives` ({column: 'min' | 'max'}) among the valid
    points: no other valid point is at least as good in every objective and better in one."""
    names = list(objectives)
    unknown = [n for n in names if n not in frame or not pd.api.types.is_numeric_dtype(frame[n])]
    if not names or unknown:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        raise ValueError(f"objective(s) {', '.join(unknown) or '(none)'} not numeric outputs; use {', '.join(numeric)}")
    ok = frame["valid"].to_numpy(bool) & frame[names].notna().all(axis=1).to_numpy()
    sign = np.array([1.0 if objectives[n] == "min" else -1.0 for n in names])
    x = frame.loc[ok, names].to_numpy(float) * sign
    on = np.zeros(len(x), dtype=bool)
    front = np.empty((0, len(names)))
    # Lexicographic order: a point can only be dominated by one before it, so one pass settles each point.
    for i in np.lexsort(x.T[::-1]):
        p = x[i]
        if len(front) and np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1)):
            continue
        on[i] = True
        front = np.vstack([front, p])
    result = np.zeros(len(frame), dtype=bool)
    result[np.flatnonzero(ok)] = on
    return pd.Series(result, index=frame.index, name="pareto")


def write_results(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the results as Parquet (.parquet) or CSV (.csv), whole or not at all (a temporary file beside
    `path`, renamed over it)."""
    path = check_output(path, RESULT_SUFFIXES, "sweep results")
    try:
        if path.suffix == ".parquet":
            write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
        else:
            write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror}") from None

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
from hwmodels.units import GIB, SECONDS_PER_DAY, SECONDS_PER_HOUR
from simulator.analytic.report import estimate
from simulator.analytic.training import BREAKDOWN_KEYS
from simulator.events.simulate import simulate
from simulator.explore import expr
from simulator.explore.sweepspec import (
    SweepSpec,
    constraint_failures,
    event_options,
    inputs,
    point_error,
    points,
    shown,
)
from simulator.runspec import RUN_DEFAULTS, RUN_FIELDS, RunSpec, build_run, check_run_length

RESULT_SUFFIXES = (".parquet", ".csv")
RUN_LENGTH = ("tokens", "price_per_gpu_hour")  # set only GPU-hours, $ and days: evaluated on arrays
MALLOC_TRIM_BYTES = int(GIB)  # for the Dask workers started here (see _dask_client)
# Fewer units than this run in this process: starting workers would cost more than they save.
SERIAL_BELOW = {"analytic": 32, "event": 2}


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
    """Each unit's outputs, or {'reason': why it is invalid} (a run the model rejects: the ValueError's text;
    any other error of the model on one point's values makes that point invalid too, never the sweep)."""
    out = []
    for point in units:
        try:
            out.append(ENGINE_FUNCTIONS[engine](point))
        except ValueError as exc:
            out.append({"reason": _reason(str(exc))})
        except (TypeError, ArithmeticError, OSError) as exc:  # a value the checks do not foresee
            out.append({"reason": _reason(f"the model failed on these inputs: {type(exc).__name__}: {exc}")})
    return out


MAX_REASON_CHARS = 300


def _reason(text: str) -> str:
    """An error as a point's reason: one line, at most MAX_REASON_CHARS."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


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
    # and run without the statistical profiler, which samples every worker thread every 10 ms for a
    # dashboard these clusters do not serve
    quiet = {"distributed.worker.profile.enabled": False}
    with warnings.catch_warnings(), dask.config.set({**trim, **quiet}):
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
    """What a point's model run depends on (all but tokens and price)."""
    return tuple(_part(point[c]) for c in columns if c not in RUN_LENGTH)


def _part(value: Any) -> Any:
    """A value as a key holds it: 1, 1.0 and True differ (repr; an integer by type and value, as repr cannot
    show one beyond 4,300 digits)."""
    return (type(value), value) if isinstance(value, int) else repr(value)


def _units(pts: list[dict[str, Any]], columns: Sequence[str], reasons: list[str]) -> tuple[list[int], list[Any]]:
    """The model runs to do (one per group of valid points that differ only in tokens and price) and each
    point's index into them (-1: invalid, not run)."""
    index: dict[tuple[Any, ...], int] = {}
    units: list[Any] = []
    unit_of: list[int] = []
    for point, why in zip(pts, reasons, strict=True):
        if why:
            unit_of.append(-1)
            continue
        i = index.setdefault(_key(point, columns), len(units))
        if i == len(units):
            units.append(_shared(point))
        unit_of.append(i)
    return unit_of, units


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
    frame = pd.DataFrame({c: [p[c] for p in pts] for c in columns}, columns=list(columns))
    frame["stage_layers"] = [_stage_text(s) for s in frame["stage_layers"]]
    reasons = [point_error(p) for p in pts]  # each point's own values: types, constraints, budget and price
    if constraints and pts:
        reasons = [r or c for r, c in zip(reasons, constraint_failures(frame, constraints), strict=True)]
    reasons = [r or _run_length_error(p) for r, p in zip(reasons, pts, strict=True)]
    unit_of, units = _units(pts, columns, reasons)
    done = run_units(units, engine, processes, workers, scheduler, progress)
    outputs = pd.DataFrame(
        [done[i] if i >= 0 else {} for i in unit_of], columns=[*OUTPUTS[engine], "reason"], index=frame.index
    )
    model_reason = [r if isinstance(r, str) else "" for r in outputs.pop("reason")]
    frame["reason"] = [r or m for r, m in zip(reasons, model_reason, strict=True)]
    frame["valid"] = frame["reason"] == ""
    frame = frame[[*columns, "valid", "reason"]]
    out = pd.concat([frame, outputs], axis=1)
    for name in ("dp", "microbatches"):
        out[name] = out[name].astype("Int64")
    # the run-length outputs, on arrays (report.estimate's formulas, operation for operation); a value that
    # is not a number (an invalid point's) is NaN
    tokens, price, gpus = (expr.floats(out[c].to_numpy()) for c in ("tokens", "price_per_gpu_hour", "gpus"))
    wall_s = tokens / out["tokens_per_s"].to_numpy(float)
    out["usd_per_gpu_hour"] = np.where(np.isnan(price), out["catalog_usd_per_gpu_hour"].to_numpy(float), price)
    out["gpu_hours"] = wall_s * gpus / SECONDS_PER_HOUR
    out["cost_usd"] = out["gpu_hours"] * out["usd_per_gpu_hour"]
    out["days"] = wall_s / SECONDS_PER_DAY
    _invalidate_non_finite(out)
    return out.drop(columns="catalog_usd_per_gpu_hour")


def _stage_text(stage_layers: Any) -> str:
    """stage_layers as its column shows it: "4,4,...", "" for None (a wrong type: as given; invalid)."""
    if isinstance(stage_layers, tuple | list):
        return ",".join(map(str, stage_layers))
    return "" if stage_layers is None else str(stage_layers)


CHECKED = ("step_time_s", *DERIVED)  # never NaN or infinite in a valid row


def _invalidate_non_finite(out: pd.DataFrame) -> None:
    """Mark invalid the valid rows with an output that is not finite (a price of 1e308 makes the cost inf):
    a valid row's numbers are always usable."""
    values = out[list(CHECKED)].to_numpy(float)
    broken = np.flatnonzero(out["valid"].to_numpy(bool) & ~np.isfinite(values).all(axis=1))
    for i in broken:
        j = int(np.argmin(np.isfinite(values[i])))  # the first output that is not finite
        out.loc[out.index[i], "reason"] = f"{CHECKED[j]}={values[i][j]}: an input is beyond the model's range"
    out.loc[out.index[broken], "valid"] = False


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
    frame = _writable(frame)
    try:
        if path.suffix == ".parquet":
            write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
        else:
            write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:  # a column the format cannot hold (pyarrow's errors)
        raise ValueError(f"cannot write {path}: {' '.join(str(exc).split())[:300]}") from None


def _writable(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as Parquet and CSV can hold it: a column mixing types (an invalid point's wrongly typed input:
    pp = [8, "abc"]) or holding an integer beyond int64 is written as text; its row's reason says why."""
    mixed = {}
    for name in [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c])]:
        types = {type(v) for v in frame[name] if v is not None}
        if len(types) > 1 or any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in frame[name]):
            mixed[name] = [None if v is None else _text(v) for v in frame[name]]
    return frame.assign(**mixed) if mixed else frame


def _text(value: Any) -> str:
    try:
        return str(value)
    except ValueError:  # an integer beyond Python's 4,300 digits: its size
        return shown(value)

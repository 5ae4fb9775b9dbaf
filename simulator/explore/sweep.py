"""Running a sweep: every point through the analytic or the event model, here or on a Dask cluster.

The array pass: a sweep's points are columns (`simulator.explore.columns`): each distinct value is
type-checked once, and the points that differ only in their token budget, price and (analytic model) global
batch share one model run, which prices all their batches at once (`report.estimate_batches`); GPU-hours,
dollars and days follow on whole numpy arrays. A sweep of layouts x batches x budgets x prices costs one
model run per layout; a sweep whose every point is a different layout, one per point (1-4 ms, analytic).

Evaluation is deterministic (the event model's draws are seeded by the point's `seed`), so a point gives
the same row whichever process, machine or Dask worker runs it; workers receive blocks of runs
(`columns.Block`) and build their points themselves.
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
from hwmodels.reliability import load_failure_rates, storage_catalog
from hwmodels.units import GIB, SECONDS_PER_DAY, SECONDS_PER_HOUR
from simulator.analytic.goodput import (
    CHECKPOINTING,
    checkpoint_bytes,
    snapshot_bytes,
)
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate_batches
from simulator.analytic.spares import NODE_CLASSES
from simulator.analytic.training import BREAKDOWN_KEYS
from simulator.events.simulate import simulate
from simulator.explore import expr
from simulator.explore.columns import Block, Columns, blocks, columns_of_points, columns_of_spec
from simulator.explore.expected import GOODPUT_INPUTS, GOODPUT_OUTPUTS, expected_columns
from simulator.explore.sweepspec import (
    GOODPUT_DEFAULTS,
    INPUTS,
    SweepSpec,
    constraint_failures,
    event_options,
    field_error,
    inputs,
    shown,
)
from simulator.runspec import RUN_DEFAULTS, RUN_FIELDS, RunSpec, batch_error, build_run, check_run_length
from simulator.schedules import BIDIRECTIONAL

RESULT_SUFFIXES = (".parquet", ".csv")
RUN_LENGTH = ("tokens", "price_per_gpu_hour")  # set only GPU-hours, $ and days: evaluated on arrays
MALLOC_TRIM_BYTES = int(GIB)  # for the Dask workers started here (see _dask_client)
# Fewer units than this run in this process: starting workers would cost more than they save.
SERIAL_BELOW = {"analytic": 32, "event": 2}


def run_of(point: Mapping[str, Any]) -> RunSpec:
    """The RunSpec of a (completed) point."""
    named = {k: point[k] for k in ("model", "gpu", "node") if point.get(k) is not None}
    return build_run({**named, **{k: point[k] for k in RUN_FIELDS}})


def _analytic(point: Mapping[str, Any], batches: Sequence[int], rates: dict[Any, Any]) -> dict[str, np.ndarray]:
    """The analytic outputs of one run at each global batch of `batches` (its rows), in one pass
    (`report.estimate_batches`); a row that cannot run has its reason. `rates` keeps each profile's kernel
    rates per GPU for the runs of one block (a profile is read once, not once per run)."""
    rows = _Rows(len(batches), OUTPUTS["analytic"])
    try:
        run = _unit_run(point, batches)
    except _BatchesOnly:  # the run is fine but for its batches, each refused for its own reason
        return rows.refuse(range(len(batches)), [_batch_error(point, b) for b in batches])
    reasons = [batch_error(b, run.seq_len, run.dp, run.micro_batch, run.schedule, run.pp) for b in batches]
    rows.refuse([i for i, r in enumerate(reasons) if r], [r for r in reasons if r])
    ok = [i for i, r in enumerate(reasons) if not r]
    if ok:
        key = (point["profile"], run.node.gpu)
        if key not in rates:
            rates[key] = rates_for(point["profile"], run.node.gpu)
        out = estimate_batches(run, rates[key], [batches[i] for i in ok])
        out |= {"dp": np.full(len(ok), run.dp), "catalog_usd_per_gpu_hour": np.full(len(ok), run.usd_per_gpu_hour)}
        failures = load_failure_rates()  # at failure_scale 1
        per_run = {
            "checkpoint_bytes": checkpoint_bytes(run),
            "_interrupts_per_s": failures.job_rate_per_s(run.gpus, run.node.gpus_per_node),
            "_node_interrupts_per_s": failures.job_rate_per_s(run.gpus, run.node.gpus_per_node, NODE_CLASSES),
            "_snapshot_s": snapshot_bytes(run) / run.node.pcie_bw_bytes_per_s,
            "_gpus_per_node": run.node.gpus_per_node,
        }
        out |= {k: np.full(len(ok), v) for k, v in per_run.items()}
        fits = out["reason"] == ""  # else memory refuses it
        rows.fill([i for i, f in zip(ok, fits, strict=True) if f], {k: v[fits] for k, v in out.items()})
        rows.refuse([i for i, f in zip(ok, fits, strict=True) if not f], list(out["reason"][~fits]))
    return rows.arrays


def _event(point: Mapping[str, Any], batches: Sequence[int], rates: dict[Any, Any]) -> dict[str, np.ndarray]:
    """The event model's outputs of one point (its batch is part of what groups it: one row)."""
    rows = _Rows(1, OUTPUTS["event"])
    run = run_of(point)
    network, routing, stragglers = event_options(point)
    sim = simulate(run, point["profile"], network, routing, stragglers)
    tokens_per_s = run.global_batch_tokens / sim.step_time_s
    values = {
        "step_time_s": sim.step_time_s,
        "dp": run.dp,
        "microbatches": run.microbatches,
        "stage_split": ",".join(map(str, sim.stage_layers)),
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_gpu": tokens_per_s / run.gpus,
        "catalog_usd_per_gpu_hour": run.node.gpu.price_usd_per_gpu_hour,
        "analytic_step_time_s": sim.analytic_step_time_s,
        "pipeline_s": sim.pipeline_s,
        "dp_and_optimizer_s": sim.dp_and_optimizer_s,
        "max_idle_s": max(sim.idle_s),
    }
    rows.fill([0], {k: np.array([v], dtype=object if isinstance(v, str) else None) for k, v in values.items()})
    return rows.arrays


class _BatchesOnly(Exception):
    """A unit's run is refused for its batch alone."""


def _pipeline(point: Mapping[str, Any]) -> tuple[int, int, int, str, int]:
    """seq_len, dp, micro_batch, schedule and pp of a point whose run is valid but for its batch."""
    dp = point["gpus"] // (point["tp"] * point["pp"])
    return point["seq_len"], dp, point["micro_batch"], point["schedule"], point["pp"]


def _batch_error(point: Mapping[str, Any], batch: int) -> str:
    return batch_error(batch, *_pipeline(point))


def _unit_run(point: Mapping[str, Any], batches: Sequence[int]) -> RunSpec:
    """The RunSpec of a unit of points that differ only in their batch (and budget and price): built at the
    smallest batch its pipeline can run, so that what RunSpec refuses is the run itself (each batch is then
    checked with `runspec.batch_error`, which RunSpec checks last). Raises _BatchesOnly when that batch is
    already beyond the model's limits."""
    try:
        seq_len, dp, micro_batch, schedule, pp = _pipeline(point)
        smallest = seq_len * dp * micro_batch * (2 * pp if schedule in BIDIRECTIONAL else pp)
    except (TypeError, ArithmeticError):  # tp * pp = 0: RunSpec names the fault
        smallest = batches[0]
    try:
        return run_of({**point, "global_batch_tokens": smallest})
    except ValueError as exc:
        if smallest > 0 and str(exc) == _batch_error(point, smallest):
            raise _BatchesOnly from None
        raise


class _Rows:
    """The outputs of a unit's rows: NaN (or None) and no reason until filled or refused."""

    def __init__(self, n: int, columns: Sequence[str]) -> None:
        self.arrays: dict[str, np.ndarray] = {
            c: np.full(n, None, dtype=object) if c in TEXT_COLUMNS else np.full(n, np.nan) for c in columns
        }
        self.arrays["reason"] = np.full(n, "", dtype=object)

    def fill(self, at: Sequence[int], values: Mapping[str, np.ndarray]) -> None:
        for name, column in self.arrays.items():
            if name in values:
                column[list(at)] = values[name]

    def refuse(self, at: Iterable[int], reasons: Sequence[str]) -> dict[str, np.ndarray]:
        for i, why in zip(at, reasons, strict=True):
            self.arrays["reason"][i] = _reason(why)
        return self.arrays


_COMMON = ("dp", "microbatches", "stage_split", "tokens_per_s", "tokens_per_s_per_gpu", "catalog_usd_per_gpu_hour")
OUTPUTS = {  # each engine's output columns, before GPU-hours, usd_per_gpu_hour, cost_usd and days
    "analytic": (
        "step_time_s",
        *_COMMON,
        *(f"{part}_s" for part in BREAKDOWN_KEYS),
        "mfu_bf16",
        "mfu_fp8",
        "memory_per_gpu_bytes",
        "checkpoint_bytes",
        *GOODPUT_INPUTS,
    ),
    "event": ("step_time_s", *_COMMON, "analytic_step_time_s", "pipeline_s", "dp_and_optimizer_s", "max_idle_s"),
}
DERIVED = ("usd_per_gpu_hour", "gpu_hours", "cost_usd", "days")  # from the outputs, on arrays
TEXT_COLUMNS = frozenset(
    {"model", "gpu", "node", "profile", "topology", "stage_layers", "precision", "schedule", "recompute"}
    | {"network", "ecmp", "stage_split", "catalog_usd_per_gpu_hour", "storage", "checkpointing"}
)
ENGINE_FUNCTIONS: dict[str, Callable[[Mapping[str, Any], Sequence[int], dict[Any, Any]], dict[str, np.ndarray]]] = {
    "analytic": _analytic,
    "event": _event,
}
# Each engine's unit: the analytic model prices every batch of a run in one pass, the event model one point.
BATCHED = {"analytic": True, "event": False}


def evaluate_units(
    units: Sequence[tuple[Mapping[str, Any], Sequence[int]]], engine: str
) -> list[dict[str, np.ndarray]]:
    """Each unit's rows (a run and its batches): outputs, or the reason it is invalid (a run the model rejects:
    the ValueError's text; any other error of the model on one unit's values makes its rows invalid too,
    never the sweep)."""
    out: list[dict[str, np.ndarray]] = []
    rates: dict[Any, Any] = {}  # each profile's rates per GPU, read once for these units
    for point, batches in units:
        try:
            out.append(ENGINE_FUNCTIONS[engine](point, batches, rates))
        except ValueError as exc:
            out.append(_Rows(len(batches), OUTPUTS[engine]).refuse(range(len(batches)), [str(exc)] * len(batches)))
        except (TypeError, ArithmeticError, OSError) as exc:  # a value the checks do not foresee
            why = f"the model failed on these inputs: {type(exc).__name__}: {exc}"
            out.append(_Rows(len(batches), OUTPUTS[engine]).refuse(range(len(batches)), [why] * len(batches)))
    return out


MAX_REASON_CHARS = 300


def _reason(text: str) -> str:
    """An error as a point's reason: one line, at most MAX_REASON_CHARS."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


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


def evaluate_block(block: Block, engine: str) -> list[dict[str, np.ndarray]]:
    """`evaluate_units` of a block's runs, their points built here (in the worker) from the block."""
    return evaluate_units(block.units(), engine)


def run_units(
    cols: Columns,
    firsts: np.ndarray,
    batches: Sequence[tuple[Any, ...]],
    engine: str,
    processes: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> list[dict[str, np.ndarray]]:
    """`evaluate_units` of the runs whose points are `firsts` (each with its budget and price set to the
    defaults, and its `batches`), results in order: on a Dask cluster (`workers` started here, or the
    `scheduler` at an address), else in `processes` local processes (default: one per core; few runs: here).
    Each process or worker receives blocks of runs (`columns.Block`), never a dict per point."""
    if workers is not None and workers <= 0:
        raise ValueError(f"workers={workers} must be a positive integer")
    if processes is not None and processes <= 0:
        raise ValueError(f"processes={processes} must be a positive integer")
    n = len(firsts)
    # a run's budget and price: the defaults (they cannot fail and change nothing but GPU-hours, $ and days,
    # which follow on arrays for each point's own)
    fixed = {"tokens": RUN_DEFAULTS["tokens"], "price_per_gpu_hour": None, **GOODPUT_DEFAULTS}

    def split(parts: int) -> list[Block]:
        return blocks(cols, firsts, batches, math.ceil(n / max(1, parts)), fixed)

    bar = tqdm(total=n, unit="run", disable=None if progress else True, file=sys.stderr)
    results: list[list[dict[str, np.ndarray]]] = []
    try:
        if workers or scheduler:
            from dask.distributed import as_completed

            client, cluster = _dask_client(workers, scheduler)
            try:
                parallel = sum(client.nthreads().values()) or 1
                chunks = split(4 * parallel)
                futures = client.map(evaluate_block, chunks, engine=engine, pure=False)
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
            if parallel == 1 or n < SERIAL_BELOW[engine]:
                for block in split(max(1, n // 50)):
                    results.append(evaluate_block(block, engine))
                    bar.update(len(block))
            else:
                chunks = split(4 * parallel)
                with ProcessPoolExecutor(max_workers=parallel) as pool:
                    for part in pool.map(evaluate_block, chunks, [engine] * len(chunks)):
                        results.append(part)
                        bar.update(len(part))
    finally:
        bar.close()
    return [row for part in results for row in part]


def _value_reasons(cols: Columns, names: Sequence[str], error: Callable[[str, Any], str]) -> np.ndarray:
    """Each point's first reason among `names` (`error` of each distinct value, once), '' when none."""
    reasons = np.full(cols.size, "", dtype=object)
    for name in names:
        errors = np.array([error(name, v) for v in cols.values[name]], dtype=object)
        if (errors != "").any():
            mine = errors[cols.codes[name]]
            reasons = np.where(reasons == "", mine, reasons)
    return reasons


def _run_length_error(name: str, value: Any) -> str:
    """Why a point's own token budget or price is not valid ('' when they are, or when their type is not:
    `field_error` says so first)."""
    if field_error(name, value):
        return ""
    try:
        if name == "tokens":
            check_run_length(value, None)
        else:
            check_run_length(RUN_DEFAULTS["tokens"], value)
    except ValueError as exc:
        return str(exc)
    return ""


def _goodput_error(name: str, value: Any) -> str:
    """Why a point's goodput input is not valid ('' when it is, or when its type is not: `field_error` says so)."""
    if field_error(name, value) or value is None:
        return ""
    if name == "storage":
        return (
            "" if value in storage_catalog() else f"storage={shown(value)}; use one of {', '.join(storage_catalog())}"
        )
    if name == "checkpointing":
        return "" if value in CHECKPOINTING else f"checkpointing={shown(value)}; use one of {', '.join(CHECKPOINTING)}"
    if name in ("checkpoint_interval_min", "repair_h"):
        return "" if value > 0 else f"{name}={value} must be positive ({'minutes' if name[0] == 'c' else 'hours'})"
    return "" if value >= 0 else f"{name}={value} must be >= 0"


def evaluate(
    pts: list[dict[str, Any]] | Columns,
    engine: str = "analytic",
    constraints: tuple[str, ...] = (),
    processes: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per point (completed dicts, or a sweep's `Columns`): every input, `valid`, `reason` (why not
    valid: a constraint or the model's error) and the outputs (NaN where invalid).

    Each distinct value is type-checked once (`point_error`'s rules); the points that differ only in their
    budget and price (and, for the analytic model, their global batch) share one model run, which prices
    all their batches in one pass; GPU-hours, dollars and days follow on arrays."""
    cols = pts if isinstance(pts, Columns) else columns_of_points(pts)
    columns = inputs(engine)
    shown = {"stage_layers": _stage_text}
    frame = pd.DataFrame({c: cols.column(c, shown.get(c)) for c in columns}, columns=list(columns))
    reasons = _value_reasons(cols, INPUTS, field_error)  # each point's own values: types, constraints, budget, price
    if constraints and cols.size:
        failed = constraint_failures(frame, constraints).to_numpy(object)
        reasons = np.where(reasons == "", failed, reasons)
    reasons = np.where(reasons == "", _value_reasons(cols, RUN_LENGTH, _run_length_error), reasons)
    reasons = np.where(reasons == "", _value_reasons(cols, tuple(GOODPUT_DEFAULTS), _goodput_error), reasons)
    valid = reasons == ""
    batched = BATCHED[engine]
    after = (*RUN_LENGTH, *GOODPUT_DEFAULTS)  # evaluated on arrays after the model runs
    key = [c for c in columns if c not in after and not (batched and c == "global_batch_tokens")]
    firsts, unit_of = cols.distinct(key, valid)
    batch = cols.codes["global_batch_tokens"][valid] if batched else np.zeros(int(valid.sum()), dtype=np.int64)
    width = len(cols.values["global_batch_tokens"])
    rows, row_of = np.unique(unit_of * width + batch, return_inverse=True)
    row_unit, row_batch = rows // width, rows % width
    batch_values = cols.values["global_batch_tokens"]
    if batched:
        per_unit = np.split(row_batch, np.flatnonzero(np.diff(row_unit)) + 1) if len(rows) else []
        batches = [tuple(batch_values[b] for b in codes) for codes in per_unit]
    else:  # the event model's point carries its own batch
        batches = [(batch_values[int(cols.codes["global_batch_tokens"][i])],) for i in firsts]
    done = run_units(cols, firsts, batches, engine, processes, workers, scheduler, progress)
    names = [*OUTPUTS[engine], "reason"]
    merged = {n: np.concatenate([d[n] for d in done]) if done else np.empty(0, dtype=object) for n in names}
    point_row = np.full(cols.size, -1, dtype=np.int64)
    point_row[valid] = row_of.ravel()
    outputs = pd.DataFrame(
        {n: _taken(merged[n], point_row, n in TEXT_COLUMNS or n == "reason") for n in names}, index=frame.index
    )
    model_reason = outputs.pop("reason").to_numpy(object)
    frame["reason"] = np.where(reasons == "", np.where(pd.isna(model_reason), "", model_reason), reasons)
    frame["valid"] = frame["reason"] == ""
    frame = frame[[*columns, "valid", "reason"]]
    out = pd.concat([frame, outputs], axis=1)
    for name in ("dp", "microbatches"):
        out[name] = out[name].astype("Float64").astype("Int64")
    # the run-length outputs, on arrays (report.estimate's formulas, operation for operation); a value that
    # is not a number (an invalid point's) is NaN
    tokens, price, gpus = (expr.floats(out[c].to_numpy()) for c in ("tokens", "price_per_gpu_hour", "gpus"))
    wall_s = tokens / out["tokens_per_s"].to_numpy(float)
    out["usd_per_gpu_hour"] = np.where(np.isnan(price), out["catalog_usd_per_gpu_hour"].to_numpy(float), price)
    out["gpu_hours"] = wall_s * gpus / SECONDS_PER_HOUR
    out["cost_usd"] = out["gpu_hours"] * out["usd_per_gpu_hour"]
    out["days"] = wall_s / SECONDS_PER_DAY
    if engine == "analytic":
        expected_columns(out, wall_s)
    _invalidate_non_finite(out)
    return out.drop(columns=["catalog_usd_per_gpu_hour", *(GOODPUT_INPUTS if engine == "analytic" else [])])


def _taken(values: np.ndarray, at: np.ndarray, text: bool) -> np.ndarray:
    """values[at], with NaN (None for text) where `at` is -1."""
    missing = None if text else np.nan
    if not len(values):
        return np.full(len(at), missing, dtype=object if text else float)
    picked = values[np.maximum(at, 0)]
    if text:
        picked = picked.astype(object)
        picked[at < 0] = missing
        return picked
    return np.where(at < 0, np.nan, picked.astype(float))


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
    goodput = GOODPUT_OUTPUTS if spec.engine == "analytic" else ()
    numeric = [c for c in (*inputs(spec.engine), *OUTPUTS[spec.engine], *DERIVED, *goodput) if c not in TEXT_COLUMNS]
    unknown = [name for name in spec.objectives if name not in numeric]
    if unknown or not spec.objectives:
        raise ValueError(f"objective(s) {', '.join(unknown) or '(none)'} unknown; use {', '.join(numeric)}")
    return evaluate(columns_of_spec(spec), spec.engine, spec.constraints, processes, workers, scheduler, progress)


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


ROW_GROUP_ROWS = 65_536  # rows per Parquet row group (and per CSV write): the copy made for writing is one group


def write_results(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the results as Parquet (.parquet) or CSV (.csv), whole or not at all (a temporary file beside
    `path`, renamed over it), ROW_GROUP_ROWS rows at a time: writing a million rows copies 65,536 of them at
    once, never the whole frame."""
    path = check_output(path, RESULT_SUFFIXES, "sweep results")
    frame = _writable(frame)
    try:
        write_atomic(path, lambda tmp: (_write_parquet if path.suffix == ".parquet" else _write_csv)(frame, tmp))
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:  # a column the format cannot hold (pyarrow's errors)
        raise ValueError(f"cannot write {path}: {' '.join(str(exc).split())[:300]}") from None


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(len(frame), 1), ROW_GROUP_ROWS):
            part = frame.iloc[start : start + ROW_GROUP_ROWS]
            writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, chunksize=ROW_GROUP_ROWS)


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

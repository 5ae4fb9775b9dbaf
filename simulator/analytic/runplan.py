"""A whole run priced phase by phase (`simulator.runplan`): each phase's run is `build_run` of the plan's
options, the phase's own and its shape; a constant batch is `report.estimate`'s run; a ramp is priced step
by step (each step's batch from the tokens trained so far, every distinct batch priced once with
`report.estimate_batches`), then the rest at the full batch. Phases run one after another: days add up.
With a `Reliability`, each predicted phase also gets its expected run with failures, checkpoints and restarts
(`goodput.run_goodput` on the phase's run and steady wall time: a phase boundary is a checkpoint, so each
phase is its own Daly run); a phase given as GPU-hours is taken as it is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwmodels.units import SECONDS_PER_DAY, SECONDS_PER_HOUR
from simulator.analytic.goodput import Reliability, run_goodput
from simulator.analytic.profile import DEFAULT_PROFILE, KernelRates, rates_for
from simulator.analytic.report import estimate_batches
from simulator.runplan import Phase, Plan
from simulator.runspec import RunSpec, build_run, least_microbatches
from simulator.schedules import BIDIRECTIONAL

MAX_RAMP_STEPS = 1_000_000


def phase_run(plan: Plan, phase: Phase) -> RunSpec:
    """The run of a priced phase: the plan's options, the phase's, its sequence length, batch and tokens."""
    assert phase.seq_len is not None and phase.batch_sequences is not None
    batch_tokens = phase.batch_sequences * phase.seq_len
    tokens = phase.tokens if phase.tokens is not None else float(phase.steps or 0) * batch_tokens
    shape = {"seq_len": phase.seq_len, "global_batch_tokens": batch_tokens, "tokens": tokens}
    try:
        return build_run({**dict(plan.run), **dict(phase.options), **shape})
    except ValueError as exc:
        raise ValueError(f"plan {plan.name}, phase {phase.name!r}: {exc}") from None


def batch_unit(run: RunSpec) -> tuple[int, int]:
    """Sequences a batch of this run comes in (dp x micro-batch, x 2 for a bidirectional pipeline) and the
    fewest it runs (the schedule's least micro-batches)."""
    unit = run.dp * run.micro_batch * (2 if run.schedule in BIDIRECTIONAL else 1)
    least = run.dp * run.micro_batch * least_microbatches(run.schedule, run.pp)
    return unit, max(unit, -(-least // unit) * unit)


def ramp_batches(run: RunSpec, from_sequences: int, over_tokens: float) -> tuple[np.ndarray, int]:
    """Each ramp step's batch in sequences: linear in the tokens trained so far from `from_sequences` to the
    run's batch, rounded down to whole units, never below the fewest the run takes (the clamp is said in the
    answer); and how many steps the clamp raised."""
    unit, least = batch_unit(run)
    full = run.global_batch_tokens // run.seq_len
    steps, done, clamped = [], 0.0, 0
    while done < over_tokens:
        want = from_sequences + (full - from_sequences) * done / over_tokens
        b = max(least, min(full, int(want // unit) * unit))
        clamped += b > want
        steps.append(b)
        done += b * run.seq_len
        if len(steps) > MAX_RAMP_STEPS:
            raise ValueError(f"a ramp of over {MAX_RAMP_STEPS:,} steps; shorten over_tokens or raise from_sequences")
    return np.array(steps, dtype=np.int64), clamped


def price_phase(
    plan: Plan, phase: Phase, profile: KernelRates | str | None = None, reliability: Reliability | None = None
) -> dict[str, Any]:
    """One phase's steps, tokens, wall seconds, GPU-hours, cost and run (given GPU-hours: as they are), and
    with `reliability`, its expected run (`expected`)."""
    row = _steady_phase(plan, phase, profile)
    run = row.pop("_run")
    if reliability is not None:
        row["expected"] = _expected(phase, run, row, reliability)
    return row


def _expected(phase: Phase, run: RunSpec, row: dict[str, Any], reliability: Reliability) -> dict[str, Any]:
    """A phase's expected GPU-hours, cost, days and goodput: given GPU-hours are what a run took, as they are."""
    if phase.given:
        keys = ("gpu_hours", "cost_usd", "days")
        return {**{f"expected_{k}": row[k] for k in keys}, "goodput": 1.0, "expected_failures": None}
    g = run_goodput(run, row["days"] * SECONDS_PER_DAY, row["gpu_hours"], row["cost_usd"], reliability)
    keep = ("expected_gpu_hours", "expected_cost_usd", "expected_days", "goodput", "expected_failures")
    return {k: g[k] for k in keep} | {"checkpoint_interval_min": g["checkpoint_interval_min"]}


def _steady_phase(plan: Plan, phase: Phase, profile: KernelRates | str | None) -> dict[str, Any]:
    if phase.given:
        base = build_run(dict(plan.run))  # days and price of given GPU-hours: the plan's own run
        hours = float(phase.gpu_hours or 0.0)
        wall = hours / base.gpus * SECONDS_PER_HOUR
        return _row(phase, base, hours, wall, steps=None, tokens=None, step_time_s=None, note="given, not predicted")
    run = phase_run(plan, phase)
    rates = rates_for(profile, run.node.gpu)
    batch_tokens = run.global_batch_tokens
    full = estimate_batches(run, rates, [batch_tokens])
    if full["reason"][0]:
        raise ValueError(f"plan {plan.name}, phase {phase.name!r}: {full['reason'][0]}")
    step_s = float(full["step_time_s"][0])
    note = ""
    ramp_s, ramp_tokens, ramp_steps = 0.0, 0.0, 0
    if phase.ramp is not None:
        batches, clamped = ramp_batches(run, phase.ramp.from_sequences, phase.ramp.over_tokens)
        distinct, back = np.unique(batches * run.seq_len, return_inverse=True)
        priced = estimate_batches(run, rates, list(distinct))
        bad = [r for r in priced["reason"] if r]
        if bad:
            raise ValueError(f"plan {plan.name}, phase {phase.name!r}, its ramp: {bad[0]}")
        ramp_s = float(priced["step_time_s"][back.ravel()].sum())
        ramp_tokens, ramp_steps = float(batches.sum() * run.seq_len), len(batches)
        if clamped:
            note = f"ramp: {clamped:,} steps raised to {batch_unit(run)[1]:,} sequences, the fewest this layout runs"
    tokens = phase.tokens if phase.tokens is not None else float(phase.steps or 0) * batch_tokens
    rest = max(0.0, tokens - ramp_tokens)
    wall = ramp_s + rest / batch_tokens * step_s
    steps = ramp_steps + rest / batch_tokens
    hours = wall * run.gpus / SECONDS_PER_HOUR
    return _row(phase, run, hours, wall, steps, tokens, step_s, note)


def _row(phase: Phase, run: RunSpec, hours: float, wall_s: float, steps: float | None, tokens: float | None,
         step_time_s: float | None, note: str) -> dict[str, Any]:  # fmt: skip
    keys = ("gpus", "tp", "cp", "cp_comm", "pp", "ep", "dp", "schedule", "seq_len", "precision")
    layout = {k: getattr(run, k) for k in keys}
    r = phase.ramp
    return {
        "_run": run,
        "name": phase.name,
        "given": phase.given,
        "steps": steps,
        "tokens": tokens,
        "step_time_s": step_time_s,
        "gpu_hours": hours,
        "cost_usd": hours * run.usd_per_gpu_hour,
        "days": wall_s / SECONDS_PER_DAY,
        "run": None if phase.given else layout,
        "ramp": None if r is None else {"from_sequences": r.from_sequences, "over_tokens": r.over_tokens},
        "published_gpu_hours": phase.published_gpu_hours,
        "published_group": phase.published_group,
        "note": note,
    }


def price_plan(
    plan: Plan, profile: KernelRates | str | None = None, reliability: Reliability | None = None
) -> dict[str, Any]:
    """Every phase priced, the total, and each published figure beside what v3sim puts against it (a group's
    phases summed: the steady state, as the published figures are, e.g. V3's 180K GPU-hours per trillion
    tokens); with `reliability`, each phase's and the total's expected run. `profile` None: the plan's own."""
    profile = plan.profile if profile is None else profile
    phases = [price_phase(plan, p, profile, reliability) for p in plan.phases]
    total = {k: sum(p[k] for p in phases) for k in ("gpu_hours", "cost_usd", "days")}
    if reliability is not None:
        for k in ("gpu_hours", "cost_usd", "days"):
            total[f"expected_{k}"] = sum(p["expected"][f"expected_{k}"] for p in phases)
        total["goodput"] = total["gpu_hours"] / total["expected_gpu_hours"] if total["expected_gpu_hours"] else 1.0
    published: dict[str, dict[str, float]] = {}
    for p in phases:
        if p["published_gpu_hours"] is None:
            continue
        key = p["published_group"] or p["name"]
        entry = published.setdefault(key, {"published_gpu_hours": p["published_gpu_hours"], "gpu_hours": 0.0})
        if entry["published_gpu_hours"] != p["published_gpu_hours"]:
            raise ValueError(f"plan {plan.name}: the phases of group {key!r} give different published GPU-hours")
        entry["gpu_hours"] += p["gpu_hours"]
    for entry in published.values():
        entry["error"] = entry["gpu_hours"] / entry["published_gpu_hours"] - 1
    if all(p["published_gpu_hours"] is not None for p in phases):
        sums = sum(e["published_gpu_hours"] for e in published.values())
        total["published_gpu_hours"] = sums
        total["error"] = total["gpu_hours"] / sums - 1 if sums else math.nan
    name = profile.name if isinstance(profile, KernelRates) else (profile or DEFAULT_PROFILE)
    return {"plan": plan.name, "source": plan.source, "profile": name, "phases": phases, "total": total,
            "published": published}  # fmt: skip

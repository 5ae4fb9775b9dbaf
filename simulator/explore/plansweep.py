"""Sweeps over a run plan (`simulator.runplan`): axes that set the plan's run options (`gpus`, `tp`, ...) or a
phase's inputs (`"context extension 128K.cp"`, `"pre-training.tokens"`), every point the plan priced whole
(`simulator.analytic.runplan.price_plan`): its total and each phase's GPU-hours. Each point's plan is built
from data and checked as a plan file is; a point the model refuses is kept, invalid, with the reason.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hwmodels.files import clean_text
from simulator.analytic.runplan import price_plan
from simulator.runplan import load_plan_data, plan_from_dict
from simulator.runspec import RUN_FIELDS

MAX_PLAN_POINTS = 10_000  # each point prices every phase of its plan (milliseconds each)
RUN_OPTIONS = frozenset({"model", "gpu", "node", *RUN_FIELDS})
SIZE_FIELDS = ("tokens", "steps", "gpu_hours")  # a phase's size: setting one drops the others
SHAPE_FIELDS = ("seq_len", "batch_sequences")
PRICED_ONLY = ("seq_len", "batch_sequences", "ramp", "options")  # what a phase given as GPU-hours has none of


@dataclass(frozen=True, slots=True)
class PlanSweep:
    """A plan (its TOML data), axes (name -> values) and objectives ({column: 'min' | 'max'})."""

    plan: dict[str, Any]
    where: str
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    objectives: dict[str, str]

    @property
    def points(self) -> int:
        n = 1
        for _, values in self.axes:
            n *= len(values)
        return n


def plan_sweep_from_dict(data: Mapping[str, Any]) -> PlanSweep:
    """A plan sweep from a sweep file's data: `plan` (a built-in name or a .toml file), [axes], [objectives]."""
    unknown = sorted(set(data) - {"plan", "axes", "objectives"})
    if unknown:
        raise ValueError(f"a plan sweep takes plan, axes and objectives; unknown key {clean_text(unknown[0], 80)!r}")
    if not isinstance(data["plan"], str):
        raise ValueError("plan must be a built-in plan's name or a .toml file")
    plan, where = load_plan_data(data["plan"])
    phases = {str(p.get("name")) for p in plan.get("phase", []) if isinstance(p, dict)}
    plan_from_dict(plan, where)  # the plan itself is sound before any point changes it
    axes = data.get("axes", {})
    if not isinstance(axes, Mapping) or not axes:
        raise ValueError("give [axes]: run options (gpus = [2048, 4096]) or phase inputs ('PHASE.cp' = [2, 4])")
    parsed = []
    for name, values in axes.items():
        _check_axis(name, phases)
        if not isinstance(values, list) or not values:
            raise ValueError(f"axis {clean_text(name, 80)!r} must be a non-empty list of values")
        parsed.append((name, tuple(values)))
    objectives = dict(data.get("objectives", {"gpu_hours": "min", "days": "min"}))
    if any(v not in ("min", "max") for v in objectives.values()):
        raise ValueError("objectives: each must be 'min' or 'max'")
    spec = PlanSweep(plan, where, tuple(parsed), objectives)
    if spec.points > MAX_PLAN_POINTS:
        raise ValueError(f"{spec.points:,} plan points; at most {MAX_PLAN_POINTS:,}")
    return spec


def _check_axis(name: Any, phases: set[str]) -> None:
    if not isinstance(name, str):
        raise ValueError("axis names must be text")
    if name in RUN_OPTIONS:
        return
    phase, _, field = name.rpartition(".")
    if not phase:
        raise ValueError(f"axis {clean_text(name, 80)!r}: a run option, or PHASE.FIELD for a phase of the plan")
    if phase not in phases:
        raise ValueError(f"axis {clean_text(name, 80)!r}: the plan has no phase {clean_text(phase, 80)!r}")
    if field not in (*SIZE_FIELDS, *SHAPE_FIELDS) and field not in RUN_FIELDS:
        raise ValueError(
            f"axis {clean_text(name, 80)!r}: a phase's {', '.join((*SIZE_FIELDS, *SHAPE_FIELDS))} or a run option"
        )


def point_plan(plan: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """The plan's data with one point's values set (the caller's data is left alone)."""
    out = copy.deepcopy(dict(plan))
    for name, value in point.items():
        if name in RUN_OPTIONS:
            out.setdefault("run", {})[name] = value
            continue
        phase_name, _, field = name.rpartition(".")
        phase = next(p for p in out["phase"] if p.get("name") == phase_name)
        if field in SIZE_FIELDS:
            for other in SIZE_FIELDS:
                phase.pop(other, None)
            if field == "gpu_hours":
                for other in PRICED_ONLY:
                    phase.pop(other, None)
            phase[field] = value
        elif field in SHAPE_FIELDS:
            phase[field] = value
        else:
            phase.setdefault("options", {})[field] = value
    return out


def run_plan_sweep(spec: PlanSweep) -> pd.DataFrame:
    """One row per point: its axis values, valid and reason, the plan's total GPU-hours, cost and days (and the
    error against the published total where the plan has one), and each phase's GPU-hours."""
    names = [n for n, _ in spec.axes]
    rows = []
    for values in itertools.product(*(v for _, v in spec.axes)):
        point = dict(zip(names, values, strict=True))
        row: dict[str, Any] = {**point, "valid": True, "reason": ""}
        try:
            out = price_plan(plan_from_dict(point_plan(spec.plan, point), spec.where))
        except ValueError as exc:
            rows.append({**row, "valid": False, "reason": clean_text(exc, 300)})
            continue
        total = out["total"]
        row |= {"gpu_hours": total["gpu_hours"], "cost_usd": total["cost_usd"], "days": total["days"]}
        if "error" in total:
            row["error_vs_published"] = total["error"]
        row |= {f"{p['name']} gpu_hours": p["gpu_hours"] for p in out["phases"]}
        rows.append(row)
    return pd.DataFrame(rows)

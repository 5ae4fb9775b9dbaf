"""A sweep description: a base run and, per field, a list, a range or a distribution; and its points.

A sweep is a TOML file (or the same as a dict):

    engine = "analytic"            # or "event" (the discrete-event model, one point per step simulated)
    method = "grid"                # grid: every combination; random or lhs (Latin hypercube): `samples` draws
    samples = 1000
    seed = 0
    constraints = ["pp * ep <= gpus"]           # expressions over the inputs (simulator/expr.py; never run as
    objectives = { cost_usd = "min", days = "min" }  # Python); failing points are kept, marked invalid

    [base]                         # what every point starts from; left out: V3's published run
    model = "deepseek-v3"
    gpu = "h800"

    [axes]
    pp = [8, 16, 32]                                    # a list
    oversubscription = { start = 1, stop = 3, step = 0.5 }  # a range: start, start + step, ... <= stop
    tokens = { distribution = "loguniform", low = 1e12, high = 2e13 }  # random / lhs only

Distributions: uniform (low, high), loguniform (low, high), normal (mean, std). Random and Latin-hypercube
sweeps draw one number in [0, 1) per axis and point and map it onto the axis (a list or range: one of its
values, evenly); integer fields are rounded. Every point carries every input: the base, the axes, and the
defaults of the fields left out. Sizes are bounded when the file is read (MAX_POINTS points, MAX_AXIS_VALUES
values per axis), and each point's values are type-checked on their own (`point_error`): one bad value
makes its point invalid, not the sweep.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc

from hwmodels.files import check_finite, read_text
from hwmodels.routing import ECMP_MODES
from simulator import expr
from simulator.ep_comm import Routing
from simulator.profile import DEFAULT_PROFILE
from simulator.runspec import RUN_FIELDS, RunSpec
from simulator.simulate import NETWORKS, Stragglers
from workloads.registry import load_model

ENGINES = ("analytic", "event")
METHODS = ("grid", "random", "lhs")
DISTRIBUTIONS = ("uniform", "loguniform", "normal")
SENSES = ("min", "max")

# Options of the event engine (simulator.simulate), with their defaults; the analytic engine ignores them.
EVENT_DEFAULTS: dict[str, Any] = {
    "network": "flow",
    "expert_cv": 0.0,
    "samples": 8,
    "ecmp": "hash",
    "seed": 0,
    "straggler_rate": 0.0,
    "straggler_slowdown": 1.0,
}
NAMED = ("model", "gpu", "node", "profile")  # chosen by name
RUN_DEFAULTS = {f.name: f.default for f in fields(RunSpec) if f.name in RUN_FIELDS}
INT_FIELDS = frozenset(
    [name for name, v in RUN_DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)] + ["samples", "seed"]
)
INPUTS = (*NAMED, *RUN_FIELDS, *EVENT_DEFAULTS)
FLOAT_FIELDS = frozenset(
    [name for name, v in {**RUN_DEFAULTS, **EVENT_DEFAULTS}.items() if isinstance(v, float)]
    + ["price_per_gpu_hour", "expert_cv"]
)
OPTIONAL = frozenset(["gpu", "node", "node_limit", "price_per_gpu_hour", "stage_layers", "expert_cv"])  # may be None
MAX_POINTS = 2_000_000  # about 2 KB each as dicts and rows: a few GB at most
MAX_AXIS_VALUES = 100_000


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept field: a list of values, or a distribution (`kind`, its parameters)."""

    name: str
    values: tuple[Any, ...] = ()
    distribution: str | None = None
    params: tuple[float, float] = (0.0, 1.0)  # (low, high) or (mean, std)

    def at(self, u: np.ndarray) -> list[Any]:
        """The axis's values at quantiles `u` in [0, 1)."""
        if self.distribution is None:
            picks = np.minimum((u * len(self.values)).astype(int), len(self.values) - 1)
            return [self.values[i] for i in picks]
        a, b = self.params
        if self.distribution == "uniform":
            x = a + u * (b - a)
        elif self.distribution == "loguniform":
            x = np.exp(np.log(a) + u * (np.log(b) - np.log(a)))
        else:
            x = stats.norm.ppf(u, loc=a, scale=b)
        return [round(float(v)) for v in x] if self.name in INT_FIELDS else [float(v) for v in x]


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A design-space sweep: base options, axes, how to pick points, constraints and objectives."""

    base: Mapping[str, Any] = field(default_factory=dict)
    axes: tuple[Axis, ...] = ()
    engine: str = "analytic"
    method: str = "grid"
    samples: int = 100
    seed: int = 0
    constraints: tuple[str, ...] = ()
    objectives: Mapping[str, str] = field(default_factory=lambda: {"cost_usd": "min", "days": "min"})

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine={self.engine!r}; use one of {', '.join(ENGINES)}")
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; use one of {', '.join(METHODS)}")
        if not isinstance(self.samples, int) or isinstance(self.samples, bool) or self.samples <= 0:
            raise ValueError(f"samples={self.samples!r} must be a positive integer")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed={self.seed!r} must be an integer from 0 to 2**63 - 1")
        for name in [*self.base, *(a.name for a in self.axes)]:
            if name not in INPUTS:
                raise ValueError(f"unknown sweep field {name!r}; use one of {', '.join(INPUTS)}")
        names = [a.name for a in self.axes]
        if len(set(names)) < len(names):
            raise ValueError(f"an axis is given twice: {', '.join(names)}")
        if self.method == "grid":
            for a in self.axes:
                if a.distribution:
                    raise ValueError(
                        f"axis {a.name} is a distribution; a grid needs lists or ranges (use method = random or lhs)"
                    )
        for name, sense in self.objectives.items():
            if sense not in SENSES:
                raise ValueError(f"objective {name} = {sense!r}; use 'min' or 'max'")
        if self.size > MAX_POINTS:
            raise ValueError(
                f"the sweep has {self.size:,} points; the limit is {MAX_POINTS:,} (split it, or sample it)"
            )
        for text in self.constraints:
            expr.parse(text, INPUTS)  # refused here, before any work

    @property
    def size(self) -> int:
        """How many points the sweep has."""
        return math.prod(len(a.values) for a in self.axes) if self.method == "grid" else self.samples


def _finite(what: str, value: Any) -> float | int:
    """`value` if it is a finite number (not a bool, not a string), else a one-line ValueError."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{what} = {value!r} must be a number")
    if not math.isfinite(value):
        raise ValueError(f"{what} = {value} must be a finite number")
    return value


def parse_axis(name: str, raw: Any) -> Axis:
    """An axis from its TOML / dict form: a list, {start, stop, step}, or {distribution, ...}."""
    if isinstance(raw, list | tuple):
        if not raw:
            raise ValueError(f"axis {name} is an empty list")
        if len(raw) > MAX_AXIS_VALUES:
            raise ValueError(f"axis {name} has {len(raw):,} values; the limit is {MAX_AXIS_VALUES:,}")
        for v in raw:
            if not isinstance(v, str | int | float | bool) and not (name == "stage_layers" and isinstance(v, list)):
                raise ValueError(f"axis {name}: {v!r} is not a number, a string or true/false")
        return Axis(name, tuple(raw))
    if not isinstance(raw, Mapping):
        raise ValueError(f"axis {name} = {raw!r}; give a list, a range {{start, stop, step}} or a distribution")
    raw = dict(raw)
    if "distribution" in raw:
        kind = raw.pop("distribution")
        keys = ("mean", "std") if kind == "normal" else ("low", "high")
        if kind not in DISTRIBUTIONS or set(raw) != set(keys):
            raise ValueError(
                f"axis {name}: distribution is one of {', '.join(DISTRIBUTIONS)} with {' and '.join(keys)}"
            )
        a, b = (_finite(f"axis {name}: {k}", raw[k]) for k in keys)
        bad = (b <= 0) if kind == "normal" else (b <= a or (kind == "loguniform" and a <= 0))
        if bad:
            what = "std > 0" if kind == "normal" else ("0 < low < high" if kind == "loguniform" else "low < high")
            raise ValueError(f"axis {name}: a {kind} distribution needs {what}")
        return Axis(name, distribution=kind, params=(a, b))
    if set(raw) not in ({"start", "stop", "step"}, {"start", "stop"}):
        raise ValueError(f"axis {name}: a range is {{start, stop, step}} (step default 1)")
    start, stop, step = (_finite(f"axis {name}: {k}", raw.get(k, 1)) for k in ("start", "stop", "step"))
    if step <= 0 or stop < start:
        raise ValueError(f"axis {name}: a range needs step > 0 and stop >= start")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_AXIS_VALUES:
        raise ValueError(f"axis {name}: the range has {count:,} values; the limit is {MAX_AXIS_VALUES:,}")
    values = [start + i * step for i in range(count)]
    if name in INT_FIELDS or all(isinstance(v, int) for v in (start, stop, step)):
        values = [round(float(v)) for v in values]
    else:
        values = [round(float(v), 12) for v in values]
    return Axis(name, tuple(values))


def sweep_from_dict(data: Mapping[str, Any]) -> SweepSpec:
    """A SweepSpec from the TOML file's structure."""
    known = {"base", "axes", "engine", "method", "samples", "seed", "constraints", "objectives"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown sweep key(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
    for key in ("base", "axes", "objectives"):
        if not isinstance(data.get(key, {}), Mapping):
            raise ValueError(f"{key} must be a table ([{key}] in TOML), not {data[key]!r}")
    axes = tuple(parse_axis(name, raw) for name, raw in data.get("axes", {}).items())
    options = {k: data[k] for k in ("engine", "method", "samples", "seed") if k in data}
    constraints = data.get("constraints", ())
    if isinstance(constraints, str):
        constraints = (constraints,)
    if not isinstance(constraints, list | tuple) or not all(isinstance(c, str) for c in constraints):
        raise ValueError(f"constraints must be a list of expressions (strings), not {constraints!r}")
    objectives = data.get("objectives", {"cost_usd": "min", "days": "min"})
    for key, value in dict(data.get("base", {})).items():
        if isinstance(value, float):
            check_finite(value, f"base {key}")
    return SweepSpec(
        base=dict(data.get("base", {})),
        axes=axes,
        constraints=tuple(constraints),
        objectives=dict(objectives),
        **options,
    )


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep TOML file."""
    text = read_text(path, "sweep")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply") from None
    return sweep_from_dict(data)


def _quantiles(spec: SweepSpec) -> np.ndarray:
    d = len(spec.axes)
    if spec.method == "lhs":
        return qmc.LatinHypercube(d=d, seed=spec.seed).random(spec.samples)
    return np.random.default_rng(spec.seed).random((spec.samples, d))


def complete(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every input of a point: the options given, then the defaults (V3's published run, the event model's)."""
    point = {"model": "deepseek-v3", "gpu": None, "node": None, "profile": DEFAULT_PROFILE}
    point |= RUN_DEFAULTS | EVENT_DEFAULTS
    point |= dict(options)
    if "ep" not in options:
        try:
            if not load_model(str(point["model"])).is_moe:
                point["ep"] = 1  # as build_run: a dense model has no experts to spread
        except ValueError:
            pass  # an unknown model: the point is reported invalid when it is built
    if point["gpu"] is None and point["node"] is None:
        point["node"] = "h800-ib"
    if isinstance(point["stage_layers"], list | tuple):
        point["stage_layers"] = tuple(point["stage_layers"])
    return point


def points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The sweep's points, each with every input (see `complete`)."""
    if not spec.axes:
        rows: list[dict[str, Any]] = [{}]
    elif spec.method == "grid":
        names = [a.name for a in spec.axes]
        rows = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(a.values for a in spec.axes))]
    else:
        u = _quantiles(spec)
        columns = {a.name: a.at(u[:, i]) for i, a in enumerate(spec.axes)}
        rows = [{name: values[i] for name, values in columns.items()} for i in range(spec.samples)]
    return [complete({**spec.base, **row}) for row in rows]


def constraint_failures(frame: pd.DataFrame, constraints: tuple[str, ...]) -> pd.Series:
    """Per point, the first constraint it fails ('' when none); see simulator/expr.py for the language."""
    reason = pd.Series("", index=frame.index, dtype=object)
    columns = expr.columns_of(frame)
    for text in constraints:
        ok = expr.evaluate(expr.parse(text, frame.columns), columns, len(frame), text)
        reason[(~ok) & (reason == "").to_numpy()] = f"constraint: {text}"
    return reason


def point_error(point: Mapping[str, Any]) -> str:
    """Why a point's values cannot be a run ('' when their types are right): each field's type checked on
    its own, so one wrongly typed value makes its point invalid, not the sweep."""
    for name in INPUTS:
        value = point.get(name)
        if value is None and name in OPTIONAL:
            continue
        if name in INT_FIELDS or name in ("node_limit", "comm_sms"):
            ok = isinstance(value, int) and not isinstance(value, bool)
            kind = "an integer"
        elif name in FLOAT_FIELDS:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            kind = "a finite number"
        elif name == "stage_layers":
            ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            kind = "a list of integers"
        else:
            ok = isinstance(value, str) and bool(value.strip())
            kind = "a name"
        if not ok:
            return f"{name}={value!r} must be {kind}"
    return ""


def event_options(point: Mapping[str, Any]) -> tuple[str, Routing, Stragglers]:
    """The event engine's network, routing and stragglers of a point."""
    if point["network"] not in NETWORKS:
        raise ValueError(f"network={point['network']!r}; use one of {', '.join(NETWORKS)}")
    if point["ecmp"] not in ECMP_MODES:
        raise ValueError(f"ecmp={point['ecmp']!r}; use one of {', '.join(ECMP_MODES)}")
    routing = Routing(float(point["expert_cv"]), int(point["samples"]), int(point["seed"]), str(point["ecmp"]))
    return point["network"], routing, Stragglers(float(point["straggler_rate"]), float(point["straggler_slowdown"]))

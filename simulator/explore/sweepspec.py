"""A sweep description: a base run and, per field, a list, a range or a distribution; and its points.

A sweep is a TOML file (or the same as a dict):

    engine = "analytic"            # or "event" (the discrete-event model, one point per step simulated)
    method = "grid"                # grid: every combination; random or lhs (Latin hypercube): `samples` draws
    samples = 1000
    seed = 0
    constraints = ["pp * ep <= gpus"]           # expressions over the inputs (simulator/explore/expr.py; never run as
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
values per axis, MAX_CONSTRAINTS constraints), and each point's values are type-checked on their own
(`point_error`): one bad value makes its point invalid, not the sweep.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc

from hwmodels.files import check_finite, is_finite_number, read_text
from hwmodels.routing import ECMP_MODES
from simulator.analytic.goodput import RESTART_S
from simulator.analytic.profile import DEFAULT_PROFILE
from simulator.analytic.spares import REPAIR_H
from simulator.events.ep_comm import Routing
from simulator.events.simulate import NETWORKS, Stragglers
from simulator.explore import expr
from simulator.names import SWEEP_ENGINES as ENGINES
from simulator.names import SWEEP_METHODS as METHODS
from simulator.presets import EVENT_DEFAULTS
from simulator.runspec import RUN_DEFAULTS, RUN_FIELDS, default_ep, default_virtual_stages
from workloads.registry import load_model

DISTRIBUTIONS = ("uniform", "loguniform", "normal")
SENSES = ("min", "max")

NAMED = ("model", "gpu", "node", "profile")  # chosen by name
INT_FIELDS = frozenset(
    [name for name, v in RUN_DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)]
    + ["samples", "seed", "spare_nodes", "mtp_layers"]
)
# The expected run's inputs (analytic sweeps; `simulator.analytic.goodput`): like the budget and the price they
# never change the model run, so they are evaluated on arrays after it.
GOODPUT_DEFAULTS: dict[str, Any] = {
    "failure_scale": 1.0,
    "storage": "3fs",
    "restart_s": RESTART_S,
    "checkpoint_interval_min": None,  # None: the optimum
    "checkpointing": "sync",
    "spare_nodes": None,  # None: a healthy node always at hand; a number: a dedicated pool with that many spares
    "repair_h": REPAIR_H,
}
INPUTS = (*NAMED, *RUN_FIELDS, *EVENT_DEFAULTS, *GOODPUT_DEFAULTS)
FLOAT_FIELDS = frozenset(
    [name for name, v in {**RUN_DEFAULTS, **EVENT_DEFAULTS, **GOODPUT_DEFAULTS}.items() if isinstance(v, float)]
    + ["price_per_gpu_hour", "expert_cv", "checkpoint_interval_min"]
)
OPTIONAL = frozenset(
    {"gpu", "node", "node_limit", "price_per_gpu_hour", "stage_layers", "expert_cv", "mtp_layers"}
    | {"checkpoint_interval_min", "spare_nodes"}
)  # may be None
# Text inputs: names, modes, and stage_layers (a constraint sees it as "4,4,..."); the rest are numbers.
TEXT_FIELDS = frozenset(INPUTS) - INT_FIELDS - FLOAT_FIELDS
MAX_POINTS = 1_000_000  # measured: 1.8 GB at the peak for a 1,036,800-point grid (a dict and a row each)
MAX_AXIS_VALUES = 100_000
MAX_CONSTRAINTS = 100  # each at most expr.MAX_CHARS characters


def inputs(engine: str) -> tuple[str, ...]:
    """The inputs of a sweep on `engine` (the event model's options only where they matter): its columns,
    and the names its constraints may use."""
    return (*NAMED, *RUN_FIELDS, *(EVENT_DEFAULTS if engine == "event" else GOODPUT_DEFAULTS))


def check_fields(names: Any) -> None:
    """Refuse a field that is not an input (before an axis of it is built)."""
    for name in names:
        if name not in INPUTS:
            raise ValueError(f"unknown sweep field {name!r}; use one of {', '.join(INPUTS)}")


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept field: a list of values, or a distribution (`kind`, its parameters)."""

    name: str
    values: tuple[Any, ...] = ()
    distribution: str | None = None
    params: tuple[float, float] = (0.0, 1.0)  # (low, high) or (mean, std)

    def picks(self, u: np.ndarray) -> np.ndarray:
        """A list axis's value indices at quantiles `u` in [0, 1) (each value an equal share)."""
        return np.minimum((u * len(self.values)).astype(np.int64), len(self.values) - 1)

    def at(self, u: np.ndarray) -> list[Any]:
        """The axis's values at quantiles `u` in [0, 1)."""
        if self.distribution is None:
            return [self.values[i] for i in self.picks(u)]
        a, b = self.params
        if self.distribution == "uniform":
            x = a + u * (b - a)
        elif self.distribution == "loguniform":
            x = np.exp(np.log(a) + u * (np.log(b) - np.log(a)))
        else:
            x = stats.norm.ppf(u, loc=a, scale=b)
        if self.name in INT_FIELDS:  # rounded; inf or NaN (a far tail) left as is: that point is invalid
            return [round(v) if math.isfinite(v) else v for v in map(float, x)]
        return [float(v) for v in x]


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
        check_fields([*self.base, *(a.name for a in self.axes)])
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
            if not isinstance(name, str):
                raise ValueError(f"objective {name!r} must be the name of an output, e.g. cost_usd")
            if sense not in SENSES:
                raise ValueError(f"objective {name} = {sense!r}; use 'min' or 'max'")
        if self.size > MAX_POINTS:
            raise ValueError(
                f"the sweep has {self.size:,} points; the limit is {MAX_POINTS:,} (split it, or sample it)"
            )
        if len(self.constraints) > MAX_CONSTRAINTS:
            raise ValueError(
                f"{len(self.constraints)} constraints; the limit is {MAX_CONSTRAINTS} (join them with and)"
            )
        for text in self.constraints:
            expr.parse(text, inputs(self.engine), TEXT_FIELDS)  # refused here, before any work

    @property
    def size(self) -> int:
        """How many points the sweep has."""
        return math.prod(len(a.values) for a in self.axes) if self.method == "grid" else self.samples


def _finite(what: str, value: Any) -> float | int:
    """`value` if it is a finite number a float can hold (not a bool, not a string), else a one-line
    ValueError."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{what} = {value!r} must be a number")
    if isinstance(value, int) and value.bit_length() > 1000:  # beyond float64 (and its decimal digits)
        raise ValueError(f"{what} is an integer of {value.bit_length():,} bits; use a finite number below 1e308")
    if not is_finite_number(value):
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
            if not _scalar(v) and not (name == "stage_layers" and isinstance(v, list | tuple) and all(map(_scalar, v))):
                what = "a list of numbers" if name == "stage_layers" else "a number, a string or true/false"
                raise ValueError(f"axis {name}: {str(v)[:60]} is not {what}")
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
    steps = (float(stop) - float(start)) / float(step)  # counted before a value is built (inf: too many)
    if not steps < MAX_AXIS_VALUES:
        raise ValueError(f"axis {name}: the range has {steps + 1:,.0f} values; the limit is {MAX_AXIS_VALUES:,}")
    count = math.floor(steps + 1e-9) + 1
    values = [start + i * step for i in range(count)]
    if name in INT_FIELDS or all(isinstance(v, int) for v in (start, stop, step)):
        values = [round(float(v)) for v in values]
    else:
        values = [round(float(v), 12) for v in values]
    return Axis(name, tuple(values))


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def sweep_from_dict(data: Mapping[str, Any]) -> SweepSpec:
    """A SweepSpec from the TOML file's structure."""
    known = {"base", "axes", "engine", "method", "samples", "seed", "constraints", "objectives"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown sweep key(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
    for key in ("base", "axes", "objectives"):
        if not isinstance(data.get(key, {}), Mapping):
            raise ValueError(f"{key} must be a table ([{key}] in TOML), not {str(data[key])[:60]}")
    check_fields([*data.get("base", {}), *data.get("axes", {})])  # before any axis is built
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
    return sweep_from_dict(load_sweep_data(path))


def load_sweep_data(path: str | Path) -> dict[str, Any]:
    """A sweep TOML file's data, unchecked (`sweep_from_dict` or, with a `plan` key, the plan sweep checks it)."""
    text = read_text(path, "sweep")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply") from None


def quantiles(spec: SweepSpec) -> np.ndarray:
    """One draw in [0, 1) per point and axis of a random or Latin-hypercube sweep (seeded)."""
    d = len(spec.axes)
    if spec.method == "lhs":
        return qmc.LatinHypercube(d=d, seed=spec.seed).random(spec.samples)
    return np.random.default_rng(spec.seed).random((spec.samples, d))


def complete(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every input of a point: the options given, then the defaults (V3's published run, the event model's)."""
    point: dict[str, Any] = {"model": "deepseek-v3", "gpu": None, "node": None, "profile": DEFAULT_PROFILE}
    point |= RUN_DEFAULTS | EVENT_DEFAULTS | GOODPUT_DEFAULTS
    point |= dict(options)
    if "ep" not in options:
        # an unknown or unreadable model, or gpus / pp of a wrong type (inf): the point is reported invalid later
        with contextlib.suppress(ValueError, TypeError, ArithmeticError, OSError):
            point["ep"] = default_ep(load_model(str(point["model"])), point)  # as build_run
    if "virtual_stages" not in options:
        with contextlib.suppress(ValueError, TypeError, ArithmeticError, OSError):
            point["virtual_stages"] = default_virtual_stages(load_model(str(point["model"])), point)
    if point["gpu"] is None and point["node"] is None:
        point["node"] = "h800-ib"
    if isinstance(point["stage_layers"], list | tuple):
        point["stage_layers"] = tuple(point["stage_layers"])
    return point


def points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The sweep's points, each with every input (see `complete`); each built from its axis values as it is
    drawn (no second list of rows held beside them)."""
    names = [a.name for a in spec.axes]
    if not spec.axes:
        combos: Any = [()]
    elif spec.method == "grid":
        combos = itertools.product(*(a.values for a in spec.axes))
    else:
        u = quantiles(spec)
        combos = zip(*(a.at(u[:, i]) for i, a in enumerate(spec.axes)), strict=True)
    return [complete({**spec.base, **dict(zip(names, combo, strict=True))}) for combo in combos]


def constraint_failures(frame: pd.DataFrame, constraints: tuple[str, ...]) -> pd.Series:
    """Per point, the first constraint it fails ('' when none); see simulator/explore/expr.py for the language."""
    reason = pd.Series("", index=frame.index, dtype=object)
    trees = [expr.parse(text, frame.columns, TEXT_FIELDS) for text in constraints]
    columns = expr.columns_of(frame[sorted(set().union(*map(expr.names, trees)))], TEXT_FIELDS)  # those used
    for text, tree in zip(constraints, trees, strict=True):
        ok = expr.evaluate(tree, columns, len(frame), text)
        reason[(~ok) & (reason == "").to_numpy()] = f"constraint: {text}"
    return reason


def point_error(point: Mapping[str, Any]) -> str:
    """Why a point's values cannot be a run ('' when their types are right): each field's type checked on
    its own, so one wrongly typed value makes its point invalid, not the sweep."""
    for name in INPUTS:
        why = field_error(name, point.get(name))
        if why:
            return why
    return ""


def field_error(name: str, value: Any) -> str:
    """Why `value` cannot be the input `name` ('' when its type is right)."""
    if value is None and name in OPTIONAL:
        return ""
    if name in INT_FIELDS or name in ("node_limit", "comm_sms"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        kind = "an integer"
    elif name in FLOAT_FIELDS:
        ok = is_finite_number(value)
        kind = "a finite number"
    elif name == "stage_layers":
        ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        kind = "a list of integers"
    else:
        ok = isinstance(value, str) and bool(value.strip())
        kind = "a name"
    return "" if ok else f"{name}={shown(value)} must be {kind}"


def shown(value: Any) -> str:
    """A value as a reason quotes it: short (an integer beyond 64 bits by its size, long text cut)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"<an integer of {value.bit_length():,} bits>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def event_options(point: Mapping[str, Any]) -> tuple[str, Routing, Stragglers]:
    """The event engine's network, routing and stragglers of a point."""
    if point["network"] not in NETWORKS:
        raise ValueError(f"network={point['network']!r}; use one of {', '.join(NETWORKS)}")
    if point["ecmp"] not in ECMP_MODES:  # a run field: checked here too, before the RunSpec is built
        raise ValueError(f"ecmp={point['ecmp']!r}; use one of {', '.join(ECMP_MODES)}")
    routing = Routing(float(point["expert_cv"]), int(point["samples"]), int(point["seed"]), str(point["ecmp"]))
    return point["network"], routing, Stragglers(float(point["straggler_rate"]), float(point["straggler_slowdown"]))

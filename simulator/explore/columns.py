"""A sweep's points column by column: per input, its distinct values and each point's index into them.

A million points are a few integer arrays, not a million dicts: each value is type-checked once however
many points hold it, points are grouped into model runs by their indices, and the input columns of the
results are taken from the value tables in one numpy call each (see simulator/explore/sweep.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simulator.explore.sweepspec import INPUTS, SweepSpec, complete, quantiles

# The inputs `complete` derives from others when they are not given, and the inputs it reads to do so.
DERIVED_INPUTS = ("ep", "virtual_stages", "node")
DERIVED_FROM = ("model", "gpus", "pp", "schedule", "gpu", "node")


def key_of(value: Any) -> Any:
    """A value as a key holds it: 1, 1.0 and True differ (repr; an integer by type and value, as repr cannot
    show one beyond 4,300 digits)."""
    return (type(value), value) if isinstance(value, int) else repr(value)


@dataclass(frozen=True, slots=True)
class Columns:
    """Every input of `size` points: `values[name]` its distinct values, `codes[name]` each point's index."""

    values: dict[str, list[Any]]
    codes: dict[str, np.ndarray]
    size: int

    def point(self, i: int) -> dict[str, Any]:
        """Point `i` as a dict of every input."""
        return {name: self.values[name][int(self.codes[name][i])] for name in self.values}

    def column(self, name: str, shown=None) -> np.ndarray:
        """The column of `name` (each value passed through `shown` first), typed as pandas types a list of
        those values (int64, float64, bool, or object)."""
        values = self.values[name] if shown is None else [shown(v) for v in self.values[name]]
        used = np.unique(self.codes[name])  # pandas types what the column holds, not what it could
        typed = pd.Series([values[i] for i in used]).to_numpy()
        where = np.zeros(len(values), dtype=np.int64)
        where[used] = np.arange(len(used))
        return typed[where[self.codes[name]]]

    def distinct(self, names: Sequence[str], mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The points of `mask` grouped by their values of `names`: each group's first point, and each masked
        point's group (groups in order of their first point)."""
        rows = np.flatnonzero(mask)
        names = [n for n in names if len(self.values[n]) > 1]
        if not names or not len(rows):
            return rows[:1], np.zeros(len(rows), dtype=np.int64)
        sizes = [len(self.values[n]) for n in names]
        if math.prod(sizes) < 2**62:
            keys = np.ravel_multi_index(tuple(self.codes[n][rows] for n in names), sizes)
            _, first, group = np.unique(keys, return_index=True, return_inverse=True)
        else:
            matrix = np.stack([self.codes[n][rows] for n in names], axis=1)
            _, first, group = np.unique(matrix, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # groups numbered by first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rows[first[order]], rank[group.ravel()]


def _factorized(values: Iterable[Any]) -> tuple[list[Any], np.ndarray]:
    """Distinct values (by `key_of`) and each value's index."""
    index: dict[Any, int] = {}
    distinct: list[Any] = []
    codes = []
    for v in values:
        i = index.setdefault(key_of(v), len(distinct))
        if i == len(distinct):
            distinct.append(v)
        codes.append(i)
    return distinct, np.asarray(codes, dtype=np.int64)


def columns_of_points(pts: Sequence[Mapping[str, Any]]) -> Columns:
    """The columns of completed points (dicts holding every input)."""
    values, codes = {}, {}
    for name in INPUTS:
        values[name], codes[name] = _factorized(p[name] for p in pts)
    return Columns(values, codes, len(pts))


def columns_of_spec(spec: SweepSpec) -> Columns:
    """The columns of a sweep's points, in `sweepspec.points`'s order, built per axis: a grid's indices by
    arithmetic on the point number, a random or Latin-hypercube sweep's from its draws."""
    n = spec.size
    values: dict[str, list[Any]] = {}
    codes: dict[str, np.ndarray] = {}
    if spec.method == "grid":
        stride = n
        for a in spec.axes:
            stride //= len(a.values)
            values[a.name] = [tuple(v) if isinstance(v, list) else v for v in a.values]
            codes[a.name] = (np.arange(n, dtype=np.int64) // stride) % len(a.values)
    else:
        u = quantiles(spec)
        for i, a in enumerate(spec.axes):
            if a.distribution is None:
                values[a.name] = [tuple(v) if isinstance(v, list) else v for v in a.values]
                codes[a.name] = a.picks(u[:, i])
            else:
                values[a.name], codes[a.name] = _factorized(a.at(u[:, i]))
    given = {**{k: v for k, v in spec.base.items() if k not in values}}
    for name, value in given.items():
        values[name], codes[name] = [tuple(value) if isinstance(value, list) else value], np.zeros(n, dtype=np.int64)
    _complete(values, codes, n)
    return Columns({name: values[name] for name in INPUTS}, {name: codes[name] for name in INPUTS}, n)


def _complete(values: dict[str, list[Any]], codes: dict[str, np.ndarray], n: int) -> None:
    """Add the inputs the points leave out, as `sweepspec.complete` fills them: defaults as constants, and
    the derived ones (default EP, virtual stages, node) once per distinct combination of what they read."""
    given = set(values)
    base = complete({})
    for name in INPUTS:
        if name not in given and name not in DERIVED_INPUTS:
            values[name], codes[name] = [base[name]], np.zeros(n, dtype=np.int64)
    derived = [name for name in DERIVED_INPUTS if name not in given]
    if not derived:
        return
    reads = [name for name in DERIVED_FROM if name in given]
    table = Columns({k: values[k] for k in reads}, {k: codes[k] for k in reads}, n)
    firsts, group = table.distinct(reads, np.ones(n, dtype=bool))
    options_given = {k: values[k][0] for k in given if len(values[k]) == 1}
    for name in derived:
        found = [complete({**options_given, **table.point(int(i))})[name] for i in firsts]
        values[name], at = _factorized(found)
        codes[name] = at[group]


@dataclass(frozen=True, slots=True)
class Block:
    """Model runs as a worker receives them: the inputs they share, and for the others the distinct values
    these runs hold, each run's indices into them and its batches. A worker builds its runs' points from
    these (a few integers each): no dict per point crosses to a process or a Dask worker."""

    shared: dict[str, Any]
    values: dict[str, list[Any]]
    codes: np.ndarray  # runs x len(values)
    batches: tuple[tuple[Any, ...], ...]

    def __len__(self) -> int:
        return len(self.batches)

    def units(self) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
        """Each run's point (every input) and batches."""
        names = list(self.values)
        return [
            (self.shared | {name: self.values[name][int(i)] for name, i in zip(names, row, strict=True)}, batches)
            for row, batches in zip(self.codes, self.batches, strict=True)
        ]


def blocks(
    cols: Columns, firsts: np.ndarray, batches: Sequence[tuple[Any, ...]], size: int, fixed: Mapping[str, Any]
) -> list[Block]:
    """The runs whose points are `firsts` (with their `batches`), `size` to a block, each input `fixed` to a
    value where given (a run's budget and price: see sweep.run_units)."""
    out = []
    for start in range(0, len(firsts), max(1, size)):
        at = firsts[start : start + size]
        shared, values, codes = dict(fixed), {}, []
        for name in cols.values:
            if name in fixed:
                continue
            used, column = np.unique(cols.codes[name][at], return_inverse=True)
            if len(used) == 1:
                shared[name] = cols.values[name][int(used[0])]
                continue
            values[name] = [cols.values[name][i] for i in used]
            codes.append(column.astype(np.int32).ravel())
        matrix = np.stack(codes, axis=1) if codes else np.zeros((len(at), 0), dtype=np.int32)
        out.append(Block(shared, values, matrix, tuple(batches[start : start + size])))
    return out

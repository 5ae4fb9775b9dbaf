"""Human-readable formatting of counts, at the edge: decimal units, as vendors quote them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hwmodels.units import GIB

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """`value` with a decimal prefix: si(70272, 'B') -> '70.3 kB'."""
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def gib(value_bytes: float) -> str:
    """Bytes as GiB, the unit GPU memory is sold in."""
    return f"{value_bytes / GIB:.2f} GiB"


def table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A plain aligned text table of `rows` (dicts) over `columns`."""
    cells = [[str(c) for c in columns]] + [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

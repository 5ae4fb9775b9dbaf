"""Kernel classes beyond the fitted profile: element-wise kernels at a measured share of the HBM datasheet.

Read from hwmodels/data/kernels/elementwise.toml (its sources are in the file). A share carries across dies of
one family (H100, H800, H200) as a share, to another die times that die's factor (the same benchmark's kernels
on both dies); the fixed cost is per kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from hwmodels.files import loads_toml, read_text

ELEMENTWISE_PATH = Path(__file__).parent / "data" / "kernels" / "elementwise.toml"


@dataclass(frozen=True, slots=True)
class ElementwiseRates:
    """Each element-wise class's share of the HBM datasheet, and the fixed seconds every kernel pays; on a die
    of `die_factor` the shares times its factor (the same kernels reach less of another die's datasheet)."""

    share: dict[str, float]
    overhead_s: float
    source: str
    die_factor: dict[str, float] = field(default_factory=dict)

    def time_s(self, kernel_class: str, nbytes: float, hbm_bytes_per_s: float, die: str = "") -> float:
        """Seconds of one kernel of `kernel_class` moving `nbytes` on a GPU of `hbm_bytes_per_s` (datasheet) whose
        die is `die`."""
        if kernel_class not in self.share:
            raise ValueError(f"no element-wise class {kernel_class!r}; known: {', '.join(self.share)}")
        share = self.share[kernel_class] * self.die_factor.get(die, 1.0)
        return nbytes / (share * hbm_bytes_per_s) + self.overhead_s


@cache
def elementwise_rates() -> ElementwiseRates:
    """The shipped element-wise table."""
    data = loads_toml(read_text(ELEMENTWISE_PATH, "element-wise kernel table"), str(ELEMENTWISE_PATH))
    share = {str(k): float(v) for k, v in data["share"].items()}
    factor = {str(k): float(v) for k, v in data.get("die_factor", {}).items()}
    if not all(0 < v <= 1 for v in (*share.values(), *factor.values())):
        raise ValueError(
            f"{ELEMENTWISE_PATH.name}: every share and die factor must be in (0, 1]: no rate above the datasheet"
        )
    return ElementwiseRates(share, float(data["overhead_s"]), str(data["source"]), factor)

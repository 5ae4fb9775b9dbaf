"""MLA's absorbed decode BMMs as timed on one GPU: what TensorRT-LLM's serving prices the two batched GEMMs of its
MLA generation with (q_nope by W_UK, the latent output by W_UV, one per local head).

Read from hwmodels/data/kernels/mla_bmm/<gpu>.csv (AIConfigurator's timings, reduced by calibration/aicmlabmm.py;
the source is in each file's header), a column per BMM and weight dtype (`uk_fp8_us`, ...). A timing on Hopper's FP8
path includes its activation's quantize, which v3sim's list names no kernel for in that decode. Per timed head
count, log-linear in tokens through the least-squares non-decreasing fit of its timings (a few tokens are never
slower than more); below the fewest tokens, the fewest's time; past the most, in proportion. A GPU without a file
takes the one of a GPU with the same die and peaks (`hwmodels.gemmtables.kin_path`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hwmodels.files import read_text
from hwmodels.gemmtables import kin_path
from hwmodels.kernels import interpolated, non_decreasing
from hwmodels.specs import GPUSpec

BMM_DIR = Path(__file__).parent / "data" / "kernels" / "mla_bmm"
BMMS = ("uk", "uv")  # q_nope x W_UK (128 -> the latent's 512), the latent output x W_UV (512 -> 128)


@dataclass(frozen=True, slots=True, eq=False)
class BmmTable:
    """Seconds of one BMM over `heads` local heads at each timed token count (logs of both)."""

    name: str
    by_heads: dict[int, tuple[tuple[float, ...], tuple[float, ...]]]

    def time_s(self, tokens: float, heads: float) -> float | None:
        """Seconds at `tokens` over `heads` heads; None where that head count was not timed."""
        h = round(heads)
        if h != heads or h not in self.by_heads or tokens <= 0:
            return None
        log_t, log_s = self.by_heads[h]
        x = math.log(tokens)
        if x >= log_t[-1]:  # past the most timed: in proportion
            return math.exp(log_s[-1] + x - log_t[-1])
        return math.exp(interpolated(x, log_t, log_s))  # held below the fewest

    def scaled(self, k: float) -> BmmTable:
        """Every BMM `k` times as fast (a sensitivity probe)."""
        shift = math.log(k)
        return BmmTable(f"{self.name} x{k:g}", {h: (t, tuple(s - shift for s in ls)) for h, (t, ls) in
                                                 self.by_heads.items()})  # fmt: skip


def timed_gpus() -> dict[str, list[str]]:
    """Each GPU with an MLA-BMM table and the columns it times (what `v3sim calibrate show` lists)."""
    out = {}
    for path in sorted(BMM_DIR.glob("*.csv")):
        header = next(line for line in read_text(path, "MLA BMM table").splitlines() if not line.startswith("#"))
        out[path.stem] = [c for c in header.split(",") if c.endswith("_us")]
    return out


@cache
def bmm_tables(gpu: GPUSpec) -> dict[str, BmmTable]:
    """`gpu`'s MLA decode BMM tables by column (`uk_fp8_us`, `uv_bf16_us`, ...), empty without one."""
    path = kin_path(gpu, BMM_DIR)
    if path is None:
        return {}
    lines = [line for line in read_text(path, "MLA BMM table").splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    out = {}
    for column in rows[0]:
        if not column.endswith("_us"):
            continue
        points: dict[int, list[tuple[float, float]]] = {}
        for r in rows:
            if r[column]:
                us = float(r[column])
                if not us > 0:
                    raise ValueError(f"{path.name}: {column} at {r['tokens']} tokens must be positive")
                points.setdefault(int(r["heads"]), []).append((float(r["tokens"]), us * 1e-6))
        by_heads = {}
        for heads, pts in points.items():
            pts.sort()
            rising = non_decreasing([math.log(s) for _, s in pts])
            by_heads[heads] = (tuple(math.log(t) for t, _ in pts), tuple(rising))
        out[column] = BmmTable(f"{path.stem} {column}", by_heads)
    return out

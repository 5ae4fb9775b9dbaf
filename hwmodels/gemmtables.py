"""Dense GEMMs as timed by shape on one GPU: the lookup v3sim prices training's dense GEMMs with, and a serving
engine's where it runs the library timed (TensorRT-LLM: `Op.library`).

Read from hwmodels/data/kernels/gemm/<gpu>.csv (AIConfigurator's timings of TensorRT-LLM's Linear, reduced by
calibration/aicgemm.py; the source is in each file's header): bf16 (cuBLAS), per-tensor FP8 (cuBLAS's scaled GEMM), on
Blackwell DeepGEMM's 1x128-scaled FP8 and on Hopper TensorRT-LLM's own 1x128-scaled FP8 kernel. The FP8 timings include
the input's quantization, a kernel v3sim prices apart (the FP8 recipe's casts): its price here (`quantize_s`) is taken
off each timing, never below the datasheet's peak. A GPU without a file takes the one of a GPU with the same die and the
same peaks (the H800 the H100's). Between the timed shapes log-linear in each of m, n and k; past the largest, in
proportion; below the smallest, the smallest's time (a smaller GEMM is never slower).
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from itertools import product
from pathlib import Path

from hwmodels.files import read_text
from hwmodels.kernels import elementwise_rates
from hwmodels.specs import GPUSpec

GEMM_DIR = Path(__file__).parent / "data" / "kernels" / "gemm"
# column -> (the GEMM's dtype, the quantization kernels its timing includes: bytes per input element each)
# fp8_block_trtllm_us: Hopper's TensorRT-LLM kernel (its own 1x128 quantize + block-scaled GEMM), which only
# TensorRT-LLM's serving looks up (DeepGEMM's published rates price block FP8 on Hopper elsewhere)
BLOCK_PASSES = (3.0 + 4 / 128,)  # a 1x128-group quantization: bf16 read, fp8 and one fp32 scale per 128 written
VARIANTS = {
    "bf16_us": ("bf16", ()),
    "fp8_tensor_us": ("fp8", (2.0, 3.0)),
    "fp8_block_us": ("fp8", BLOCK_PASSES),
    "fp8_block_trtllm_us": ("fp8", BLOCK_PASSES),
}


Grid = list[list[list[float]]]  # [m][n][k]


@dataclass(frozen=True, slots=True, eq=False)
class GemmTable:
    """Seconds of one dense GEMM (m x k) @ (k x n) on a grid of timed shapes (logs of m, n, k and of seconds)."""

    name: str
    axes: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]
    log_s: tuple[tuple[tuple[float, ...], ...], ...]

    def time_s(self, m: float, n: float, k: float) -> float:
        """Seconds of one GEMM of that shape (see the module's docstring for between and beyond the grid)."""
        return _looked_up(self, m, n, k)

    def scaled(self, k: float) -> GemmTable:
        """Every GEMM `k` times as fast (a sensitivity probe)."""
        shift = math.log(k)
        log_s = tuple(tuple(tuple(v - shift for v in row) for row in plane) for plane in self.log_s)
        return GemmTable(f"{self.name} x{k:g}", self.axes, log_s)


def _corner(axis: tuple[float, ...], x: float) -> tuple[int, float, float]:
    """Index of the lower grid point, the weight of the upper one, and the log-excess past the grid's end."""
    lx = math.log(x)
    if lx <= axis[0]:
        return 0, 0.0, 0.0
    if lx >= axis[-1]:
        return len(axis) - 2, 1.0, lx - axis[-1]
    i = bisect_right(axis, lx) - 1
    return i, (lx - axis[i]) / (axis[i + 1] - axis[i]), 0.0


@cache
def _looked_up(table: GemmTable, m: float, n: float, k: float) -> float:
    (i, wi, ei), (j, wj, ej), (q, wq, eq) = (_corner(a, x) for a, x in zip(table.axes, (m, n, k), strict=True))
    total = 0.0
    for a, wa in ((i, 1 - wi), (i + 1, wi)):
        for b, wb in ((j, 1 - wj), (j + 1, wj)):
            for c, wc in ((q, 1 - wq), (q + 1, wq)):
                total += wa * wb * wc * table.log_s[a][b][c]
    return math.exp(total + ei + ej + eq)


def quantize_s(gpu: GPUSpec, m: float, k: float, passes: tuple[float, ...]) -> float:
    """v3sim's price of quantizing an m x k bf16 input: one cast kernel per pass of `passes` bytes an element."""
    rates = elementwise_rates()
    return sum(rates.time_s("cast", b * m * k, gpu.hbm_bw_bytes_per_s, gpu.die) for b in passes)


def _filled(grid: Grid, axes: tuple[tuple[float, ...], ...]) -> Grid:
    """Blank (untimed) shapes from the next smaller timed m, else n, else k, in proportion to it."""
    sizes = [len(a) for a in axes]
    for dim, axis in enumerate(axes):
        for i, j, q in product(*(range(s) for s in sizes)):
            at = (i, j, q)
            if at[dim] == 0 or not math.isnan(grid[i][j][q]):
                continue
            prev = list(at)
            prev[dim] -= 1
            grid[i][j][q] = grid[prev[0]][prev[1]][prev[2]] * axis[at[dim]] / axis[at[dim] - 1]
    if any(math.isnan(v) for plane in grid for row in plane for v in row):
        raise ValueError("a GEMM table leaves its smallest shape untimed")
    return grid


@dataclass(frozen=True, slots=True)
class _File:
    """One GEMM file as read: its header, each row's shape and cells, and the grid's axes (m, n, k)."""

    header: list[str]
    shapes: list[tuple[float, float, float]]
    rows: list[list[str]]
    axes: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]


@cache
def _read(path: Path) -> _File:
    lines = [line for line in read_text(path, "GEMM table").splitlines() if line and not line.startswith("#")]
    reader = csv.reader(lines)
    header, rows = next(reader), list(reader)
    shapes = [(float(r[0]), float(r[1]), float(r[2])) for r in rows]
    ms, ns, ks = (tuple(sorted({s[i] for s in shapes})) for i in range(3))
    if len(shapes) != len(ms) * len(ns) * len(ks) or min(len(ms), len(ns), len(ks)) < 2:
        raise ValueError(f"{path.name}: one row per (m, n, k) of a full grid")
    return _File(header, shapes, rows, (ms, ns, ks))


def _table(gpu: GPUSpec, path: Path, column: str) -> GemmTable | None:
    f = _read(path)
    if column not in f.header:
        return None
    at = f.header.index(column)
    shapes, rows, (ms, ns, ks) = f.shapes, f.rows, f.axes
    dtype, passes = VARIANTS[column]
    peak = gpu.peak_flop_per_s(dtype)
    grid: Grid = [[[math.nan] * len(ks) for _ in ns] for _ in ms]
    index = [{v: i for i, v in enumerate(axis)} for axis in (ms, ns, ks)]
    for shape, row in zip(shapes, rows, strict=True):
        if not row[at]:
            continue
        m, n, k = shape
        s = float(row[at]) * 1e-6
        if not s > 0:
            raise ValueError(f"{path.name}: {column} at {shape} must be positive")
        grid[index[0][m]][index[1][n]][index[2][k]] = max(s - quantize_s(gpu, m, k, passes), 2 * m * n * k / peak)
    axes = (_logs(ms), _logs(ns), _logs(ks))
    filled = _filled(grid, (ms, ns, ks))
    log_s = tuple(tuple(tuple(math.log(v) for v in row) for row in plane) for plane in filled)
    return GemmTable(f"{path.stem} {column}", axes, log_s)


def _logs(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(math.log(v) for v in values)


def timed_gpus() -> dict[str, list[str]]:
    """Each GPU with a GEMM table and the columns it times (what `v3sim calibrate show` lists)."""
    out = {}
    for path in sorted(GEMM_DIR.glob("*.csv")):
        out[path.stem] = [c for c in _read(path).header if c in VARIANTS]
    return out


def gemm_tables(gpu: GPUSpec) -> dict[str, GemmTable]:
    """`gpu`'s dense-GEMM tables by variant (`bf16_us`, `fp8_tensor_us`, `fp8_block_us`), empty without one."""
    return _tables_of(gpu)


@cache
def _tables_of(gpu: GPUSpec) -> dict[str, GemmTable]:
    path = kin_path(gpu, GEMM_DIR)
    if path is None:
        return {}
    return {c: t for c in VARIANTS if (t := _table(gpu, path, c)) is not None}


def kin_path(gpu: GPUSpec, folder: Path) -> Path | None:
    """`gpu`'s own table in `folder` (<gpu>.csv), else that of the GPU with its die and peaks whose HBM is
    closest (the H800 takes the H100's, not the H200's); None without either."""
    path = folder / f"{gpu.name}.csv"
    if path.exists():
        return path
    from hwmodels.registry import load_gpu  # the catalog reads specs; specs never read tables

    kin = sorted(
        (abs(g.hbm_bw_bytes_per_s - gpu.hbm_bw_bytes_per_s), p)
        for p in folder.glob("*.csv")
        if (g := load_gpu(p.stem)).die == gpu.die
        and g.peak_bf16_flop_per_s == gpu.peak_bf16_flop_per_s
        and g.peak_fp8_flop_per_s == gpu.peak_fp8_flop_per_s
    )
    return kin[0][1] if gpu.die and kin else None

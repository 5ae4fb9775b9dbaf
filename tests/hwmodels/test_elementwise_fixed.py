"""The fixed cost of an element-wise kernel, per die, from small kernels timed on the die.

Source: AIConfigurator's timings of TensorRT-LLM's static FP8 quantize kernel (one element-wise pass) in CUDA
graphs on an H100, H200, B200 and GB200 (calibration/data/published/aic-quantize-excerpt.csv, rows of its
scale_matrix_perf tables, Apache-2.0). `hwmodels/data/kernels/elementwise.toml` `die_overhead_s` is the median
of each die's shapes moving at most 384 KiB (530 a GPU, the two GPUs of a die pooled: 1.392 us Hopper, 2.118 us
Blackwell); the excerpt keeps 12 rows a GPU. Nothing here is read from an end-to-end figure.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from hwmodels.kernels import elementwise_rates
from hwmodels.registry import load_gpu

EXCERPT = Path(__file__).parents[2] / "calibration" / "data" / "published" / "aic-quantize-excerpt.csv"
DEVICES = {"NVIDIA H100 80GB HBM3": "h100", "NVIDIA H200": "h200", "NVIDIA B200": "b200", "NVIDIA GB200": "gb200"}
SMALL_BYTES = 384 * 1024  # read bf16, write fp8: 3 bytes an element


def rows() -> list[tuple[str, float, float]]:
    """(catalog GPU, bytes moved, seconds) of each timed kernel in the excerpt."""
    lines = [line for line in EXCERPT.read_text().splitlines() if not line.startswith("#")]
    return [(DEVICES[r["device"]], 3.0 * int(r["m"]) * int(r["k"]), float(r["latency"]) * 1e-3)
            for r in csv.DictReader(lines)]  # fmt: skip


def test_each_die_pays_the_fixed_cost_its_small_kernels_were_timed_at():
    table = elementwise_rates()
    for die in ("gh100", "gb100"):
        small = [s for gpu, nbytes, s in rows() if load_gpu(gpu).die == die and nbytes <= SMALL_BYTES]
        assert len(small) == 18  # 9 shapes on each of the die's two GPUs
        assert table.fixed_s(die) == pytest.approx(statistics.median(small), rel=0.08)
    assert table.fixed_s("gh100") < table.fixed_s("gb100") < table.overhead_s  # Blackwell's graphs cost more
    assert table.fixed_s("cdna3") == table.fixed_s("") == table.overhead_s  # no small-kernel timing there


def test_a_kernel_costs_its_bytes_at_the_datasheet_share_plus_the_dies_fixed_cost():
    """The one model prices the timed kernels at both ends: tiny ones are their fixed cost, 700 MB ones their
    bytes at the copy class's share of the datasheet (Blackwell's die factor taken). The copy fit's intercept,
    which every die paid before, priced the tiny ones 2.2-2.5x their timing (worst rows of the excerpt: a tiny
    one +17%, 350 MB on a B200 -15%)."""
    table = elementwise_rates()
    for gpu, nbytes, seconds in rows():
        g = load_gpu(gpu)
        priced = table.time_s("copy", nbytes, g.hbm_bw_bytes_per_s, g.die)
        assert priced == pytest.approx(seconds, rel=0.25), (gpu, nbytes)  # tiny ones spread 1.75-2.16 us on a B200
        if nbytes <= SMALL_BYTES:
            assert nbytes / g.hbm_bw_bytes_per_s + table.overhead_s > 2 * seconds

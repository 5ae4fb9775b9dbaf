"""Dense GEMMs as timed by shape (hwmodels/data/kernels/gemm, AIConfigurator's timings of TensorRT-LLM's Linear).

Golden values are read from the source parquet (ai-dynamo/aiconfigurator@095f58a5, systems/data/<gpu>/gemm/trtllm/
1.3.0rc20/gemm_perf.parquet, latency in ms) and checked against what the loader returns.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.aicgemm import M
from hwmodels.gemmtables import gemm_tables, quantize_s
from hwmodels.registry import load_gpu

H100 = load_gpu("h100")


def test_a_timed_bf16_shape_is_its_timing():
    """bf16 timings include no quantization: the table returns them as timed (H100, 8192^3: 1.4048 ms)."""
    t = gemm_tables(H100)["bf16_us"]
    assert t.time_s(8192, 8192, 8192) == pytest.approx(1404.8e-6, rel=1e-3)


def test_fp8_timings_lose_the_input_quantization_v3sim_prices_apart():
    """The per-tensor FP8 Linear (H100, 8192 x 2048 x 16384: 0.6881 ms) quantizes its bf16 input per tensor first,
    two passes over it (amax, then the cast): the table keeps the GEMM alone, which is faster than bf16's."""
    t = gemm_tables(H100)["fp8_tensor_us"]
    quant = quantize_s(H100, 8192, 16384, (2.0, 3.0))
    assert quant > 100e-6
    assert t.time_s(8192, 2048, 16384) == pytest.approx(688.1e-6 - quant, rel=1e-3)
    assert t.time_s(8192, 2048, 16384) < gemm_tables(H100)["bf16_us"].time_s(8192, 2048, 16384)


def test_no_table_shape_runs_above_the_datasheet():
    for name in ("h100", "h200", "b200", "gb200"):
        gpu = load_gpu(name)
        for column, t in gemm_tables(gpu).items():
            dtype = "bf16" if column == "bf16_us" else "fp8"
            for m, n, k in ((64, 128, 128), (4096, 4096, 4096), (32768, 65536, 8192), (8192, 51200, 16384)):
                assert 2 * m * n * k / t.time_s(m, n, k) <= gpu.peak_flop_per_s(dtype) * 1.0001, (name, column)


def test_which_gpus_have_tables():
    """Each GPU timed has its own; the H800 (the H100's die, SMs and clocks) the H100's; the H20 (the same die at
    a sixth of the FLOP/s) and the MI300X none. DeepGEMM's block-scaled column only where it was the kernel
    timed (Blackwell); on Hopper TensorRT-LLM's own block-scaled kernel, a column of its own."""
    assert set(gemm_tables(load_gpu("b200"))) == {"bf16_us", "fp8_tensor_us", "fp8_block_us"}
    assert set(gemm_tables(H100)) == {"bf16_us", "fp8_tensor_us", "fp8_block_trtllm_us"}
    assert gemm_tables(load_gpu("h800"))["bf16_us"].name.startswith("h100")
    assert gemm_tables(load_gpu("h20")) == {} and gemm_tables(load_gpu("mi300x")) == {}


def test_beyond_the_grid_time_grows_in_proportion():
    t = gemm_tables(H100)["bf16_us"]
    assert t.time_s(65536, 8192, 8192) == pytest.approx(2 * t.time_s(32768, 8192, 8192))
    assert t.time_s(0.5, 4096, 4096) == pytest.approx(t.time_s(1, 4096, 4096))  # below: held at the smallest


@settings(max_examples=60, deadline=None)
@given(
    m=st.floats(1, 32768),
    n=st.floats(128, 65536),
    k=st.floats(128, 65536),
)
def test_between_timed_shapes_the_time_lies_between_its_corners(m, n, k):
    t = gemm_tables(load_gpu("b200"))["fp8_block_us"]
    corners = [t.time_s(a, b, c) for a in _around(m, M) for b in _around(n, WIDTHS) for c in _around(k, WIDTHS)]
    assert min(corners) * 0.999 <= t.time_s(m, n, k) <= max(corners) * 1.001


WIDTHS = (128, 256, 512, 768, 1024, 1536, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240, 12288,
          16384, 51200, 65536)  # fmt: skip  # the collector's n and k


def _around(x: float, grid: tuple[int, ...]) -> tuple[float, float]:
    """The timed values of `grid` either side of `x`."""
    lo = max(g for g in grid if g <= x)
    hi = min(g for g in grid if g >= x)
    return lo, hi

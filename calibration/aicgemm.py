"""Dense GEMMs timed by shape: AIConfigurator's GEMM tables reduced to the ones v3sim looks training GEMMs up in
(hwmodels/data/kernels/gemm/<gpu>.csv).

Source: github.com/ai-dynamo/aiconfigurator (Apache-2.0), aic-core/src/aiconfigurator_core/systems/data/<gpu>/gemm/
trtllm/<version>/gemm_perf.parquet: TensorRT-LLM's `Linear` layer timed one shape at a time
(collector/trtllm/collect_gemm.py: a bf16 input of m x k, weights n x k, no bias; weights copied until they
outgrow the L2; the time of a graph of repeated calls under `benchmark_with_power`). Three of its dtypes:
`bfloat16` (cuBLAS), `fp8` (per-tensor FP8: the input quantized per tensor, then cuBLAS's scaled GEMM) and
`fp8_block` where its kernel source is `deepgemm` (Blackwell: DeepGEMM's 1x128-scaled FP8, the input quantized
per 1x128 group first); Hopper's `fp8_block` rows (kernel source `torch_flow`: TensorRT-LLM's own
fp8_quantize_1x128 + fp8_block_scaling_gemm, modules/linear.py @1.3.0rc20) as a column of their own,
`fp8_block_trtllm_us`, which only TensorRT-LLM's serving looks up (DeepGEMM prices block FP8 on Hopper elsewhere).
The FP8 rows include the input's quantization: the loader (`hwmodels.gemmtables`) takes v3sim's own price of that
kernel off. Kept: m in `M` (decode's few tokens up to training's many), n and k of 128 and up, latencies in
microseconds to four significant digits; a shape the
collector skipped (int32 index limits) is left blank. Run `python -m calibration.aicgemm GPU=PARQUET [...]
OUT_DIR` (PARQUET at its repository path, systems/data/...) to write one file per GPU.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

COMMIT = "095f58a51c4ca8e61b66ec108d86f223f8d559ce"  # the aiconfigurator commit the tables were read at
M = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3072, 4096, 8192, 16384, 32768)
MIN_WIDTH = 128
COLUMNS = {
    "bfloat16": "bf16_us",
    "fp8": "fp8_tensor_us",
    "fp8_block": "fp8_block_us",
    "fp8_block_trtllm": "fp8_block_trtllm_us",
}
KERNEL_DTYPES = {"deepgemm": "fp8_block", "torch_flow": "fp8_block_trtllm"}  # an fp8_block row's kernel -> its column


def reduced(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per shape (m, n, k), a column of microseconds per kept dtype (blank where not timed)."""
    keep = frame[frame["m"].isin(M) & (frame["n"] >= MIN_WIDTH) & (frame["k"] >= MIN_WIDTH)]
    block = keep["gemm_dtype"] == "fp8_block"
    keep = keep.assign(gemm_dtype=keep["gemm_dtype"].where(~block, keep["kernel_source"].map(KERNEL_DTYPES)))
    keep = keep[keep["gemm_dtype"].isin(COLUMNS)]
    wide = keep.pivot_table(index=["m", "n", "k"], columns="gemm_dtype", values="latency", aggfunc="min")
    wide = (wide * 1e3).rename(columns=COLUMNS)  # the tables' latency is milliseconds
    grid = pd.MultiIndex.from_product(
        [sorted(keep["m"].unique()), sorted(keep["n"].unique()), sorted(keep["k"].unique())], names=["m", "n", "k"]
    )
    cols = [c for c in COLUMNS.values() if c in wide.columns]
    return wide.reindex(grid)[cols].reset_index()


def head(gpu: str, source: str) -> list[str]:
    return [
        f"# Dense GEMMs on the {gpu}, timed by AIConfigurator (calibration/aicgemm.py): {source}",
        "# microseconds of TensorRT-LLM's Linear (m x k input, n x k weights); FP8 columns include the input's",
        "# quantization, which hwmodels.gemmtables takes off at v3sim's own price of that kernel",
    ]


def write_tables(
    argv: list[str], reduce: Callable[[pd.DataFrame], pd.DataFrame], header: Callable[[str, str], list[str]]
) -> int:
    """`GPU=PARQUET [...] OUT_DIR`: each GPU's AIConfigurator table reduced (`reduce`) to OUT_DIR/<GPU>.csv under
    its `header` lines (what it holds, and the source: the commit and the parquet's repository path)."""
    *pairs, out_dir = argv
    for arg in pairs:
        gpu, path = arg.split("=", 1)
        frame = pd.read_parquet(path)
        where = path[path.index("systems/data/") :] if "systems/data/" in path else Path(path).name
        source = f"ai-dynamo/aiconfigurator@{COMMIT[:8]} {where} ({frame['device'].iloc[0]})"
        body = reduce(frame).to_csv(index=False, float_format=lambda x: f"{x:.4g}")
        (Path(out_dir) / f"{gpu}.csv").write_text("\n".join(header(gpu, source)) + "\n" + body)
    return 0


def main(argv: list[str]) -> int:
    return write_tables(argv, reduced, head)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

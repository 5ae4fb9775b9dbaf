"""MLA's absorbed decode BMMs timed by shape: AIConfigurator's MLA-BMM tables reduced to the ones TensorRT-LLM's
serving looks them up in (hwmodels/data/kernels/mla_bmm/<gpu>.csv).

Source: github.com/ai-dynamo/aiconfigurator (Apache-2.0), aic-core/src/aiconfigurator_core/systems/data/<gpu>/
mla_bmm/trtllm/<version>/mla_bmm_perf.parquet (collector/trtllm/collect_mla_bmm.py): the two batched GEMMs of
TensorRT-LLM's absorbed MLA generation, one per local head, timed as serving runs them. `mla_gen_pre`: q_nope
(tokens x heads x 128) by W_UK into the latent's 512 (`uk`); `mla_gen_post`: the attention's latent output
(tokens x heads x 512) by W_UV back to 128 per head (`uv`). bf16 weights: TensorRT-LLM's bmm_out. FP8 weights
(128x128 block-scaled): on Hopper the activation's 1x128 quantize (fp8_batched_quantize_1x128_permute102) and
fp8_block_scaling_bmm_out, both in the timing; on Blackwell a bf16 bmm_out on weights dequantized at load.
Kept: every token count and head count timed, microseconds to four significant digits. Run
`python -m calibration.aicmlabmm GPU=PARQUET [...] OUT_DIR` (PARQUET at its repository path, systems/data/...) to
write one file per GPU.
"""

from __future__ import annotations

import sys

import pandas as pd

from calibration.aicgemm import write_tables

OPS = {"mla_gen_pre": "uk", "mla_gen_post": "uv"}  # AIConfigurator's op -> the weight it multiplies by
DTYPES = {"bfloat16": "bf16", "fp8": "fp8"}


def reduced(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (tokens, heads), a column of microseconds per BMM and weight dtype (blank where not timed)."""
    keep = frame[frame["op_name"].isin(OPS) & frame["bmm_dtype"].isin(DTYPES)]
    column = keep["op_name"].map(OPS) + "_" + keep["bmm_dtype"].map(DTYPES) + "_us"
    wide = keep.assign(column=column).pivot_table(
        index=["num_tokens", "num_heads"], columns="column", values="latency", aggfunc="min"
    )
    wide = wide * 1e3  # the tables' latency is milliseconds
    cols = [f"{op}_{dtype}_us" for op in OPS.values() for dtype in DTYPES.values() if f"{op}_{dtype}_us" in wide]
    return wide[cols].reset_index().rename(columns={"num_tokens": "tokens", "num_heads": "heads"})


def head(gpu: str, source: str) -> list[str]:
    return [
        f"# MLA's absorbed decode BMMs on the {gpu}, timed by AIConfigurator (calibration/aicmlabmm.py): {source}",
        "# microseconds of TensorRT-LLM's two batched GEMMs over the local heads: uk (q_nope x W_UK, 128 -> 512) and",
        "# uv (latent x W_UV, 512 -> 128); FP8 weights on Hopper include the activation's 1x128 quantize",
    ]


def main(argv: list[str]) -> int:
    return write_tables(argv, reduced, head)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

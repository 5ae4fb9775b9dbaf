"""AIConfigurator's timings of a serving framework's absorbed MLA decode op, reduced to a published table's
series (`attention_decode_mla` rows that `calibration.fit.decode_sample` counts).

Source: github.com/ai-dynamo/aiconfigurator (Apache-2.0), aic-core/src/aiconfigurator_core/systems/data/<gpu>/mla/
<framework>/<version>/generation_mla_perf.parquet: one new token per sequence (isl 1) over `step` cached tokens,
DeepSeek-V3's latent (512 + 64 rope), `num_heads` heads on the GPU, per KV-cache dtype, `tp_size` a label
(TensorRT-LLM's collector keys its rows on the local heads, labelled with the smallest TP that gives them; SGLang's
repeats some at larger TP labels): the rows at each head count's smallest label are kept. Kept: the framework's grid of
local heads, batches and cached lengths (`GRIDS`; kv_len = step + 1). Run `python -m calibration.aicmla PARQUET
[ITS_PATH_IN_AICONFIGURATOR]` to print the two series (bf16 and FP8 caches).
"""

from __future__ import annotations

import sys

import pandas as pd

from calibration.fit import series_toml

KV_BYTES = {"bfloat16": 2, "fp8": 1}
# per framework (the table's `framework`): the local heads, batches and steps (cached tokens - 1) kept. TensorRT-LLM:
# V3's 128 heads over TP1 (attention DP), TP2, TP4 and TP8, few to 16K cached tokens; SGLang: DP attention's 128
# and TP2's 64 heads over the long caches its runs read, at every batch
GRIDS = {
    "TRTLLM": ((16, 32, 64, 128), (1, 4, 16, 64, 256, 1024), (1, 15, 127, 1023, 4095, 16383)),
    "SGLang": ((64, 128), (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), (1023, 4095, 16383, 32767, 65535, 131071)),
}


def series_rows(frame: pd.DataFrame, cache: str) -> list[list[float]]:
    """[batch, heads, qk_dim, v_dim, kv_len, kv_bytes, ms] rows of one cache dtype, on its framework's grid."""
    heads, batches, steps = GRIDS[str(frame["framework"].iloc[0])]
    fewest_tp = frame.groupby("num_heads")["tp_size"].transform("min")  # one row per local heads: TP1's, else the least
    keep = frame[(frame["tp_size"] == fewest_tp) & (frame["kv_cache_dtype"] == cache) & frame["num_heads"].isin(heads)
                 & frame["batch_size"].isin(batches) & frame["step"].isin(steps)]  # fmt: skip
    keep = keep.sort_values(["num_heads", "batch_size", "step"])
    return [[int(r.batch_size), int(r.num_heads), 576, 512, int(r.step) + 1, KV_BYTES[cache],
             round(float(r.latency), 5)] for r in keep.itertuples()]  # fmt: skip


def main(argv: list[str]) -> int:
    frame = pd.read_parquet(argv[0])
    path = argv[1] if len(argv) > 1 else argv[0]  # the file's path in the AIConfigurator repository
    meta = f"{frame['framework'].iloc[0]} {frame['version'].iloc[0]}'s MLA generation op"
    meta += f" ({frame['kernel_source'].iloc[0]} backend) on an {frame['device'].iloc[0]}"
    for cache, dtype in (("fp8", "fp8"), ("bfloat16", "bf16")):
        rows = series_rows(frame, cache)
        source = (
            f"ai-dynamo/aiconfigurator@095f58a51c4ca8e61b66ec108d86f223f8d559ce (Apache-2.0), {path}: {meta}, "
            f"kv_cache_dtype {cache}, num_heads the heads on the GPU; kv_len = step + 1; ms"
        )
        columns = ["batch", "heads", "qk_dim", "v_dim", "kv_len", "kv_bytes", "ms"]
        sys.stdout.write(series_toml("attention_decode_mla", dtype, columns, rows, source) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

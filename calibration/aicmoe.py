"""TensorRT-LLM's whole MoE operator timed shape by shape: reduced to the grouped-GEMM series of a published
kernel table (calibration/data/published/<gpu>-trtllm.toml), which calibration/moeops.py `moe_sample` turns into
samples of the two grouped GEMMs.

Source: AIConfigurator's collected TensorRT-LLM MoE table (github.com/ai-dynamo/aiconfigurator, Apache-2.0,
aic-core/src/aiconfigurator_core/systems/data/<gpu>/moe/trtllm/<version>/moe_perf.parquet): `moe.forward` of
TensorRT-LLM's fused MoE (input quantization, permute, both grouped GEMMs, the activation, the weighted
unpermute) timed under a CUDA graph over MoE shapes, token counts (`num_tokens`: the tokens of the whole EP
group, each GPU running its 1/ep of the experts), EP and expert-TP degrees and routing distributions.

Kept: the MoE shapes of v3sim's catalog models (`SHAPES`), balanced routing, no expert TP, EP 1-8 (the layouts
TensorRT-LLM's performance overview runs), every token count from one (a decode step's few tokens reach a share
of the experts, and the op's fixed costs then set its time: such rows, under `hwmodels.profile.MOE_FIT_MIN_PAIRS`
pairs per expert, price serving's lookups and enter no fit), and for each weight format the backend the
validated runs ran (`TABLES`). Left out: rows whose element-wise kernels, as v3sim prices them beside the GEMMs
(calibration/moeops.py `moe_elementwise_s`), take over `MAX_SIDE_SHARE` of the op (the GEMMs' share too small to
tell from the subtraction: a few microseconds of a fused op under a CUDA graph). Repeated rows keep the first.
Run `python -m calibration.aicmoe TABLE=PARQUET` (TABLE: h200-trtllm, b200-trtllm or b200; TABLE@GPU=PARQUET for
another GPU of the die, a series `measured_on` it) to print the TOML series.
"""

from __future__ import annotations

import sys

import pandas as pd

from calibration.fit import series_toml
from calibration.moeops import moe_elementwise_s
from hwmodels.registry import load_gpu

# The catalog's MoE shapes AIConfigurator measured: (hidden, expert intermediate, experts, top-k).
SHAPES = {
    (2048, 768, 128, 8): "Qwen3-30B-A3B",
    (4096, 1536, 128, 8): "Qwen3-235B-A22B",
    (7168, 2048, 256, 8): "DeepSeek-V3 / R1",
    (2880, 2880, 32, 4): "GPT-OSS 20B",
    (2880, 2880, 128, 4): "GPT-OSS 120B",
}
EP_DEGREES = (1, 2, 4, 8)
MAX_SIDE_SHARE = 0.5
# Per published table: the GPU its timings are of, and v3sim's grouped-GEMM dtype -> (AIConfigurator's moe_dtype,
# its kernel_source): the MoE backend the runs v3sim validates against ran (TensorRT-LLM's performance overview,
# docs/source/developer-guide/perf-overview.md at 03e27c7d, llm_options: `moe_config: backend: CUTLASS` for
# DeepSeek-R1 and GPT-OSS on Blackwell, TRITON for GPT-OSS on Hopper, the default CUTLASS for Qwen3). AIConfigurator
# timed GPT-OSS's MXFP4 on Blackwell with the TRTLLM-gen backend only, not the CUTLASS one the overview ran: not
# taken. Block-scaled FP8 on Blackwell ran on DeepGEMM's kernels (TensorRT-LLM's DeepGemmFusedMoE): DeepSeek's
# and SGLang's grouped GEMMs, which the default B200 table (b200.toml) prices, as the H800's prices DeepGEMM's.
TABLES = {
    "h200-trtllm": (
        "h200",
        {"fp8": ("fp8_block", "moe_torch_flow_cutlass"), "w4a16": ("w4a16_mxfp4", "moe_torch_flow")},
    ),
    "b200-trtllm": ("b200", {"fp4": ("nvfp4", "moe_torch_flow_cutlass")}),
    "b200": ("b200", {"fp8": ("fp8_block", "deepgemm")}),
}
COLUMNS = ["hidden", "inter", "experts", "topk", "ep", "tokens", "ms"]


def series_rows(frame: pd.DataFrame, dtype: str, table: str, timed_on: str | None = None) -> list[list[float]]:
    """The kept rows of one weight format (v3sim's grouped-GEMM `dtype`) for the published `table`, timed on its
    GPU or on `timed_on` (another of its die: a series `measured_on` it), as [hidden, inter, experts, topk, ep,
    tokens, ms], sorted."""
    gpu_name, backends = TABLES[table]
    gpu_name = timed_on or gpu_name
    moe_dtype, kernel_source = backends[dtype]
    f = frame[
        (frame["moe_dtype"] == moe_dtype)
        & (frame["kernel_source"] == kernel_source)
        & (frame["distribution"] == "balanced")
        & (frame["moe_tp_size"] == 1)
        & frame["moe_ep_size"].isin(EP_DEGREES)
    ]
    shape = list(zip(f["hidden_size"], f["inter_size"], f["num_experts"], f["topk"], strict=True))
    f = f[[s in SHAPES for s in shape]]
    keys = ["hidden_size", "inter_size", "num_experts", "topk", "moe_ep_size", "num_tokens"]
    f = f.drop_duplicates(subset=keys, keep="first").sort_values(keys)
    rows = [[*(int(x) for x in r[:-1]), round(float(r[-1]), 4)] for r in f[[*keys, "latency"]].itertuples(index=False)]
    gpu = load_gpu(gpu_name)
    return [r for r in rows if moe_elementwise_s(dict(zip(COLUMNS, r, strict=True)), dtype, gpu)
            <= MAX_SIDE_SHARE * r[-1] * 1e-3]  # fmt: skip


def main(argv: list[str]) -> None:
    for arg in argv:
        name, _, path = arg.partition("=")
        table, _, timed_on = name.partition("@")
        if table not in TABLES:
            raise SystemExit(f"{arg}: name the table as {'=PARQUET, '.join(TABLES)}=PARQUET (or TABLE@GPU=)")
        frame = pd.read_parquet(path)
        for dtype, (moe_dtype, kernel_source) in TABLES[table][1].items():
            rows = series_rows(frame, dtype, table, timed_on or None)
            source = f"{path}: moe_dtype {moe_dtype}, kernel_source {kernel_source}, balanced, moe_tp_size 1"
            sys.stdout.write(series_toml("grouped_gemm", dtype, COLUMNS, rows, source, timed_on or None) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

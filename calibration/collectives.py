"""NVLink collectives timed inside one node: reduced to the table v3sim prices tensor-parallel collectives and
in-node all-to-alls with (hwmodels/data/kernels/collectives.toml).

Source: AIConfigurator's collected communication tables (github.com/ai-dynamo/aiconfigurator, Apache-2.0,
aic-core/src/aiconfigurator_core/systems/data/<gpu>/comm/): nccl/<version>/nccl_perf.parquet, nccl-tests'
all_gather_perf, reduce_scatter_perf, alltoall_perf and all_reduce_perf on 2, 4 and 8 GPUs of one node
(collector/network/collect_nccl.py: one size per run, 40 warm-up and 60-100 timed iterations, out of place),
and trtllm/<version>/custom_allreduce_perf.parquet, TensorRT-LLM's own all-reduce (the one its tensor-parallel
layers call) on the same counts. Kept: the half-precision rows, every size. A row's `message_size` is elements
(nccl-tests' byte size over 2, the buffer as nccl-tests counts it: an all-gather's gathered output, an
all-to-all's whole send buffer); the table stores bytes. Run
`python -m calibration.collectives GPU=NCCL_PARQUET,ALLREDUCE_PARQUET [...]` to print the TOML tables.
"""

from __future__ import annotations

import sys

import pandas as pd

NCCL_KINDS = {"all_gather": "all_gather", "reduce_scatter": "reduce_scatter", "alltoall": "all_to_all",
              "all_reduce": "all_reduce"}  # fmt: skip
BYTES_PER_ELEMENT = 2  # half / bfloat16


def table(frame: pd.DataFrame) -> dict[str, list]:
    """One collective's rows as bytes (rising) and microseconds per GPU count."""
    sizes = sorted(int(x) for x in frame["message_size"].unique())
    counts = sorted(int(x) for x in frame["num_gpus"].unique())
    us = []
    for n in counts:
        rows = frame[frame["num_gpus"] == n].set_index("message_size")["latency"]
        us.append([round(float(rows[s]) * 1e3, 3) for s in sizes])  # the tables' latency is milliseconds
    return {"bytes": [s * BYTES_PER_ELEMENT for s in sizes], "gpus": counts, "us": us}


def gpu_tables(nccl: pd.DataFrame, custom: pd.DataFrame) -> dict[str, dict[str, list]]:
    """The NCCL collectives and TensorRT-LLM's all-reduce of one GPU."""
    out = {}
    half = nccl[nccl["nccl_dtype"] == "half"]
    for op, kind in NCCL_KINDS.items():
        out[kind] = table(half[half["op_name"] == op])
    out["custom_all_reduce"] = table(custom[custom["allreduce_dtype"] == "bfloat16"])
    return out


def toml_text(gpu: str, tables: dict[str, dict[str, list]], versions: str) -> str:
    lines = []
    for kind, t in tables.items():
        lines += [f"[{gpu}.{kind}]  # {versions}", f"bytes = {t['bytes']}", f"gpus = {t['gpus']}", "us = ["]
        lines += [f"  {row}," for row in t["us"]]
        lines += ["]", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    for arg in argv:
        gpu, paths = arg.split("=", 1)
        nccl_path, custom_path = paths.split(",")
        nccl, custom = pd.read_parquet(nccl_path), pd.read_parquet(custom_path)
        versions = f"NCCL {nccl['version'].iloc[0]}, TensorRT-LLM {custom['version'].iloc[0]}, {nccl['device'].iloc[0]}"
        sys.stdout.write(toml_text(gpu, gpu_tables(nccl, custom), versions) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

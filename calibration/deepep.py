"""DeepEP's normal (training and prefill) kernels timed against the SMs they run on: reduced to the table
v3sim prices expert-parallel all-to-alls with (hwmodels/data/kernels/deepep.toml).

Source: AIConfigurator's collected DeepEP tables (github.com/ai-dynamo/aiconfigurator, Apache-2.0,
aic-core/src/aiconfigurator_core/systems/data/<gpu>/comm/sglang/0.5.12/wideep_deepep_normal_perf.parquet):
DeepEP's own intranode benchmark (test_intranode.py) on one full node, dispatch and combine microseconds per
call over hidden sizes, expert counts, top-k, tokens per rank (1-131,072) and SMs (4-24). Each SM count's
rows with 4,096 tokens or more are fitted as

    seconds - call = tokens x per_token + bytes / rate

`call` is the median one-token time (the fixed cost of a call: notify, launch, barrier), `bytes` the copies a
rank sends to other ranks (one per distinct destination rank, as DeepEP sends them: uniform top-k routing) at
the hidden size in bf16 for combine and in FP8 with 1x128 scales for dispatch (the benchmark dispatches FP8
where DeepEP is built for SM90 and up; its time is half the combine's, as FP8's bytes are). The fit is
weighted by 1 / seconds (relative error). The low-latency (decode) kernels' table, wideep_deepep_ll_perf.parquet
(tokens 1-1,024, the kernels on every SM), is fitted the same way without SMs (`fit_low_latency`); its older
collection (sglang/0.5.6.post2, SGLang 0.5.0's DeepEP on H100 and H200) times the same kernels across 2, 4 and 8
nodes over InfiniBand, fitted per node count (`fit_low_latency_nodes`). Run
`python -m calibration.deepep GPU=PARQUET [GPU=PARQUET ...]` to print the TOML tables; `ranks` is the node's
GPUs (8, a GB200 tray's 4).
"""

from __future__ import annotations

import sys
from math import prod

import numpy as np
import pandas as pd

from workloads.comm import FP8_SCALE_GROUP

MIN_TOKENS = 4096  # the bandwidth regime: the per-call cost under a tenth of the time
BYTES_PER_ELEMENT = {"dispatch": 1 + 4 / FP8_SCALE_GROUP, "combine": 2.0}


def distinct_remote_ranks(experts: int, topk: int, ranks: int) -> float:
    """Expected other ranks a token's `topk` experts sit on, of `ranks` holding `experts` evenly (uniform
    routing without replacement): (ranks - 1) x P(a given other rank holds at least one)."""
    per = experts / ranks
    none = prod((experts - per - i) / (experts - i) for i in range(topk))
    return (ranks - 1) * (1 - none)


def fit_kind(frame: pd.DataFrame, kind: str, ranks: int) -> dict[str, object]:
    """One kind's (dispatch or combine) table: SMs, GB/s and ns per token at each, the call's microseconds and
    the fit's relative rms over its rows."""
    time_col, sms_col = f"{kind}_transmit_us", f"{kind}_sms"
    call_s = float(frame.loc[frame["num_token"] == 1, time_col].median()) * 1e-6
    big = frame[frame["num_token"] >= MIN_TOKENS]
    copies = np.array(
        [distinct_remote_ranks(e, k, ranks) for e, k in zip(big["num_experts"], big["num_topk"], strict=True)]
    )
    out: dict[str, list[float]] = {"sms": [], "gb_per_s": [], "ns_per_token": []}
    errors = []
    for sms, rows in big.groupby(sms_col):
        pick = (big[sms_col] == sms).to_numpy()
        seconds = rows[time_col].to_numpy() * 1e-6 - call_s
        tokens = rows["num_token"].to_numpy(dtype=float)
        nbytes = tokens * copies[pick] * rows["hidden_size"].to_numpy() * BYTES_PER_ELEMENT[kind]
        columns = np.column_stack([tokens, nbytes]) / seconds[:, None]
        (per_token, per_byte), *_ = np.linalg.lstsq(columns, np.ones(len(seconds)), rcond=None)
        errors.extend((tokens * per_token + nbytes * per_byte) / seconds - 1)
        out["sms"].append(int(sms))
        out["gb_per_s"].append(round(float(1 / per_byte / 1e9), 1))
        out["ns_per_token"].append(round(float(per_token * 1e9), 1))
    rms = float(np.sqrt(np.mean(np.square(errors))))
    return {**out, "call_us": round(call_s * 1e6, 1), "rel_rmse": round(rms, 3), "rows": len(big)}


def fit_low_latency(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    """Dispatch's and combine's low-latency (decode) kernels from one GPU's rows of AIConfigurator's
    wideep_deepep_ll_perf table (tokens 1-1,024, every SM): seconds = call + tokens x per_token + bytes / rate,
    `bytes` one copy per routed expert, local ones included, as the low-latency kernels send them and the table's
    bandwidth column counts them (fp8 dispatch with its scales, bf16 combine)."""
    out: dict[str, dict[str, object]] = {}
    for kind in ("dispatch", "combine"):
        seconds = frame[f"{kind}_avg_t_us"].to_numpy() * 1e-6
        tokens = frame["num_token"].to_numpy(dtype=float)
        copies = tokens * frame["num_topk"].to_numpy()
        nbytes = copies * frame["hidden_size"].to_numpy() * BYTES_PER_ELEMENT[kind]
        columns = np.column_stack([np.ones(len(seconds)), tokens, nbytes]) / seconds[:, None]
        (call_s, per_token, per_byte), *_ = np.linalg.lstsq(columns, np.ones(len(seconds)), rcond=None)
        per_token = max(float(per_token), 0.0)
        errors = (call_s + tokens * per_token + nbytes * per_byte) / seconds - 1
        out[kind] = {
            "call_us": round(float(call_s) * 1e6, 1),
            "gb_per_s": round(float(1 / per_byte / 1e9), 1),
            "ns_per_token": round(per_token * 1e9, 1),
            "rel_rmse": round(float(np.sqrt(np.mean(np.square(errors)))), 3),
            "rows": len(frame),
        }
    return out


def fit_low_latency_nodes(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    """The low-latency kernels across nodes: `fit_low_latency` of each node count's rows (2 nodes and more: the
    EP group's GPUs on that many nodes, its copies to other nodes over InfiniBand), as lists by node count."""
    by_nodes = {int(n): fit_low_latency(rows) for n, rows in frame.groupby("node_num") if int(n) > 1}
    out: dict[str, dict[str, object]] = {}
    for kind in ("dispatch", "combine"):
        fits = [by_nodes[n][kind] for n in sorted(by_nodes)]
        out[kind] = {"nodes": sorted(by_nodes)} | {
            key: [fit[key] for fit in fits] for key in ("gb_per_s", "ns_per_token", "call_us")
        }
        out[kind]["rel_rmse"] = max(float(fit["rel_rmse"]) for fit in fits)  # type: ignore[arg-type]
        out[kind]["rows"] = sum(int(fit["rows"]) for fit in fits)  # type: ignore[call-overload]
    return out


def fit_table(frame: pd.DataFrame, ranks: int) -> dict[str, dict[str, object]]:
    """Dispatch's and combine's tables from one GPU's DeepEP rows (shapes whose experts split evenly)."""
    frame = frame[frame["num_experts"] % ranks == 0]
    return {kind: fit_kind(frame, kind, ranks) for kind in ("dispatch", "combine")}


def toml_block(gpu: str, table: dict[str, dict[str, object]]) -> str:
    """The TOML tables of one GPU, as hwmodels/data/kernels/deepep.toml holds them."""
    lines = []
    for kind, fit in table.items():
        lines.append(f"[{gpu}.{kind}]  # {fit['rows']} rows, fit {100 * float(fit['rel_rmse']):.0f}% rms")  # type: ignore[arg-type]
        for key in ("sms", "nodes", "gb_per_s", "ns_per_token", "call_us"):
            if key in fit:
                lines.append(f"{key} = {fit[key]}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    for arg in argv:
        gpu, _, path = arg.partition("=")
        frame = pd.read_parquet(path)
        if "combine_avg_t_us" in frame and frame["node_num"].max() > 1:  # low-latency kernels across nodes
            sys.stdout.write(toml_block(f"{gpu}.low_latency_ib", fit_low_latency_nodes(frame)) + "\n")
        elif "combine_avg_t_us" in frame:  # a low-latency table
            sys.stdout.write(toml_block(f"{gpu}.low_latency", fit_low_latency(frame)) + "\n")
        else:
            ranks = 4 if gpu.startswith("gb") else 8
            sys.stdout.write(toml_block(gpu, fit_table(frame, ranks)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

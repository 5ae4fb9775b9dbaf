"""AITER's fused MoE on CDNA3, timed stage by stage: reduced to the grouped-GEMM series of the MI300X's published
kernel table (calibration/data/published/mi300x.toml).

Source: AMD's AITER (github.com/ROCm/aiter, MIT) ships the timings its tuner measured for each fused-MoE shape it
serves (aiter/configs/model_configs/a8w8_blockscale_tuned_fmoe_ds_v3.csv): per shape and token count, the winning
kernel of each of its two stages and its microseconds, `us1` (stage 1: the gate and up projections with the SiLU)
and `us2` (stage 2: the down projection with the routing weight). The rows of `cu_num` 304 are DeepSeek-V3's
expert shape (hidden 7,168, expert intermediate 2,048) as one of eight EP ranks holds it, its 32 routed experts and
the shared one fused as a 33rd (top-9), with per-token FP8 activations and 1x128 block-scaled FP8 (e4m3 fnuz)
weights: what vLLM's and SGLang's AITER path runs for V3 on CDNA3. They were tuned on an MI325X (the commit that
added them, 84493f0e5b: "gfx942 MI325X ... 304 CU, TP8/EP8 (topk=9)"), the MI300X's die: a series `measured_on` it.

Each stage becomes one grouped-GEMM row: 33 groups of the tuner's tokens x 9 / 33 rows each (its routing spread
the pairs evenly at random), rounded to a whole row, and the TFLOPS that puts the stage's measured time on that
work. Kept: token counts that give every expert at least `MIN_PAIRS_PER_EXPERT` pairs (every expert's weights
read, as v3sim counts them). Run `python -m calibration.aitermoe CSV` to print the two TOML series.
"""

from __future__ import annotations

import sys

import pandas as pd

from calibration.fit import series_toml

# The CDNA3 rows of DeepSeek-V3's MoE: (cu_num, hidden, expert intermediate, experts on the GPU, top-k).
SHAPE = (304, 7168, 2048, 33, 9)
MIN_PAIRS_PER_EXPERT = 4
COLUMNS = ["groups", "m", "n", "k", "tflops"]


def stage_rows(frame: pd.DataFrame) -> dict[str, list[list[float]]]:
    """The kept rows of both stages, [groups, m, n, k, tflops] each, by stage name ("gate_up", "down")."""
    cu, hidden, inter, experts, topk = SHAPE
    f = frame[
        (frame["cu_num"] == cu)
        & (frame["model_dim"] == hidden)
        & (frame["inter_dim"] == inter)
        & (frame["expert"] == experts)
        & (frame["topk"] == topk)
        & (frame["q_type"] == "QuantType.per_1x128")
        & (frame["run_1stage"] == 0)
    ]
    f = f[f["token"] * topk >= MIN_PAIRS_PER_EXPERT * experts].drop_duplicates("token").sort_values("token")
    out: dict[str, list[list[float]]] = {"gate_up": [], "down": []}
    for token, us1, us2 in f[["token", "us1", "us2"]].itertuples(index=False):
        m = round(token * topk / experts)
        for stage, (n, k), us in (("gate_up", (2 * inter, hidden), us1), ("down", (hidden, inter), us2)):
            tflops = 2.0 * experts * m * n * k / (us * 1e-6) / 1e12
            out[stage].append([experts, m, n, k, round(tflops, 2)])
    return out


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m calibration.aitermoe a8w8_blockscale_tuned_fmoe_ds_v3.csv")
    rows = stage_rows(pd.read_csv(argv[0], comment="#"))
    source = f"{argv[0]}: cu_num 304 (MI325X), 7168 x 2048, 33 experts, top-9, per_1x128 FP8"
    for stage, kept in rows.items():
        named = f"{source}, stage {'1 (gate_up)' if stage == 'gate_up' else '2 (down)'}"
        sys.stdout.write(series_toml("grouped_gemm", "fp8", COLUMNS, kept, named, "mi325x") + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

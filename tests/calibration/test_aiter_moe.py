"""The MI300X's FP8 grouped GEMMs: AITER's fused MoE as AMD's tuner timed DeepSeek-V3's experts on CDNA3.

The committed excerpt (calibration/data/published/aiter-fmoe-excerpt.csv: rows of AITER's
a8w8_blockscale_tuned_fmoe_ds_v3.csv) is reduced by calibration/aitermoe.py to the two grouped-GEMM series of the
MI300X's published table (mi300x.toml), one per stage, timed on an MI325X (the MI300X's die) and carried to the
MI300X by the HBM datasheets. Kernel timings only: no end-to-end figure enters.
"""

from __future__ import annotations

import tomllib

import pandas as pd
import pytest

from calibration.aitermoe import MIN_PAIRS_PER_EXPERT, SHAPE, stage_rows
from calibration.fit import PUBLISHED_DIR
from hwmodels.registry import load_gpu
from simulator.analytic.profile import rates_for
from workloads.gemms import gemm_bytes

EXCERPT = PUBLISHED_DIR / "aiter-fmoe-excerpt.csv"
TABLE = tomllib.loads((PUBLISHED_DIR / "mi300x.toml").read_text())


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(EXCERPT, comment="#")


@pytest.fixture(scope="module")
def rows(frame) -> dict[str, list[list[float]]]:
    return stage_rows(frame)


def test_the_excerpt_reduces_to_the_shipped_series(rows):
    shipped = [s for s in TABLE["series"] if s.get("measured_on") == "mi325x"]
    assert [s["kernel"] for s in shipped] == ["grouped_gemm", "grouped_gemm"]
    assert [s["rows"] for s in shipped] == [rows["gate_up"], rows["down"]]
    assert "stage 1 (gate_up)" in shipped[0]["source"] and "stage 2 (down)" in shipped[1]["source"]


def test_each_row_puts_its_stage_time_on_its_work(frame, rows):
    cu, hidden, inter, experts, topk = SHAPE
    kept = frame[(frame["cu_num"] == cu) & (frame["token"] * topk >= MIN_PAIRS_PER_EXPERT * experts)]
    assert len(rows["gate_up"]) == len(rows["down"]) == len(kept) == 11  # 16 to 16,384 tokens
    for (token, us1, us2), up, down in zip(kept[["token", "us1", "us2"]].to_numpy(), rows["gate_up"], rows["down"],
                                           strict=True):  # fmt: skip
        assert up[:4] == [experts, round(token * topk / experts), 2 * inter, hidden]
        assert down[:4] == [experts, up[1], hidden, inter]
        for (g, m, n, k, tflops), us in ((up, us1), (down, us2)):
            assert 2 * g * m * n * k / (tflops * 1e12) == pytest.approx(us * 1e-6, rel=3e-4)  # 2 decimals


def test_few_tokens_and_other_gpus_are_left_out(frame, rows):
    assert set(frame["cu_num"]) == {304, 256}  # the excerpt holds another GPU's rows: not taken
    smallest = min(r[1] for r in rows["gate_up"])
    assert smallest >= MIN_PAIRS_PER_EXPERT  # 1-8 tokens leave most of the 33 experts idle: not taken


def test_the_mi325x_is_the_mi300x_die_with_more_hbm_bandwidth():
    mi300x, mi325x = load_gpu("mi300x"), load_gpu("mi325x")
    assert mi300x.die == mi325x.die == "cdna3"
    assert mi300x.peak_flop_per_s("fp8") == mi325x.peak_flop_per_s("fp8")
    assert mi325x.hbm_bw_bytes_per_s / mi300x.hbm_bw_bytes_per_s == pytest.approx(6.0 / 5.3)


def test_the_mi300x_prices_v3s_experts_as_aiter_ran_them(rows):
    # The shipped profile's grouped FP8 class is fitted from these rows: the MI325X's timings as measured, its
    # bytes rate held to the MI300X's HBM. Large token counts are compute-bound: priced within 5% of the two
    # stages' measured time; the down projection at half the gate/up's rate makes one roofline over both
    # read the gate/up slow and the down fast, so each stage alone is off by more.
    rates = rates_for(None, load_gpu("mi300x"))
    fit = rates.fit("grouped_gemm_fp8")
    assert "timed on mi325x" in fit.derived_from
    assert fit.bytes_per_s <= load_gpu("mi300x").hbm_bw_bytes_per_s
    assert fit.flop_per_s < rates.fit("gemm_fp8").flop_per_s  # below AMD's dense maximum, which priced it before
    for up, down in zip(rows["gate_up"], rows["down"], strict=True):
        if up[1] < 1000:
            continue
        measured = sum(2 * g * m * n * k / (t * 1e12) for g, m, n, k, t in (up, down))
        priced = sum(rates.time_s("grouped_gemm_fp8", 2 * g * m * n * k, gemm_bytes(m, n, k, g, 1, 2))
                     for g, m, n, k, _ in (up, down))  # fmt: skip
        assert priced == pytest.approx(measured, rel=0.05)

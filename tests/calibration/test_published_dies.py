"""A published series timed on another GPU (`measured_on`): within the die its FLOP rate follows the peaks,
across dies it is kept (a floor); the B200 table's attention is cuDNN's own GB200 benchmark.

Source of the B200 rows: NVIDIA/cudnn-frontend benchmark/sdpa_benchmark_training/results/llama3.1/gb200/
llama3.1_20260424_100750.csv (v1.23.0): batch 2, 64 query / 8 KV heads, head dim 128, causal, 8K tokens:
forward 1.397 ms, non-deterministic backward 4.127 ms (1,574 and 1,332 TFLOPS in v3sim's convention).
"""

from __future__ import annotations

import pytest

from calibration.fit import published_from_dict
from hwmodels.profile import PROFILE_DIR, read_profile
from hwmodels.registry import load_gpu
from simulator.analytic.profile import rates_for

ROWS = [[1, 16, s, s, 128, 128, 1, t] for s, t in ((2048, 400.0), (4096, 500.0), (8192, 550.0))]  # under both peaks


def _table(measured_on: str) -> dict:
    columns = ["batch", "heads", "seq_q", "seq_k", "qk_dim", "v_dim", "causal", "tflops"]
    series = {"kernel": "attention_fwd", "dtype": "bf16", "source": "test", "measured_on": measured_on}
    series |= {"columns": columns, "rows": ROWS}
    return {"name": "t", "device": "d", "catalog_gpu": "b200", "series": [series]}


def test_a_series_from_a_sibling_gpu_is_carried_at_the_peaks_ratio_one_from_another_die_is_kept():
    sibling = published_from_dict(_table("gb200")).fits["attention_fwd_bf16"]
    other = published_from_dict(_table("h100")).fits["attention_fwd_bf16"]
    ratio = load_gpu("b200").peak_flop_per_s("bf16") / load_gpu("gb200").peak_flop_per_s("bf16")
    assert ratio == pytest.approx(0.9)
    assert sibling.flop_per_s == pytest.approx(ratio * other.flop_per_s, rel=1e-6)
    assert "the same die" in sibling.derived_from and "FLOP rate" not in other.derived_from


def test_gb200_runs_get_cudnns_gb200_attention_back():
    """Carried to the B200 at the peaks' ratio and back to the GB200 as a fraction of its peak, the rate a GB200
    run is priced at is the one the benchmark timed on a GB200 (8K tokens, head dim 128)."""
    rates = rates_for(None, load_gpu("gb200"))
    flops = 2 * 2 * 64 * 8192**2 * 256 / 2
    assert rates.time_s("attention_fwd_bf16", flops, 0.0) == pytest.approx(1.397e-3, rel=0.05)
    assert rates.time_s("attention_bwd_bf16", 2.5 * flops, 0.0) == pytest.approx(4.127e-3, rel=0.05)


def test_the_b200_table_prices_attention_from_blackwell_not_from_the_h100():
    p = read_profile(PROFILE_DIR / "b200-published.json")
    h800 = read_profile(PROFILE_DIR / "h800-published.json")
    for cls in ("attention_fwd_bf16", "attention_bwd_bf16", "attention_fwd_mla_bf16", "attention_bwd_mla_bf16"):
        assert "gb200" in p.fits[cls].derived_from, cls
        assert p.fits[cls].flop_per_s > 1.8 * h800.fits[cls].flop_per_s, cls
    assert "h800" in p.fits["attention_decode_bf16"].derived_from  # no Blackwell decode source: a floor


def test_classes_derived_from_a_carried_series_keep_their_derivation():
    """A class with no samples is derived from the carried series as any profile derives it: bf16 GEMMs from
    fp8 GEMMs at the bf16/fp8 peak ratio (not at the fp8 rate), grouped GEMMs at the same rate."""
    rows = [[m, 7168, 7168, t] for m, t in ((256, 800.0), (1024, 1600.0), (4096, 2400.0))]
    series = {"kernel": "gemm", "dtype": "fp8", "source": "test", "measured_on": "gb200",
              "columns": ["m", "n", "k", "tflops"], "rows": rows}  # fmt: skip
    fits = published_from_dict({"name": "t", "device": "d", "catalog_gpu": "b200", "series": [series]}).fits
    b200 = load_gpu("b200")
    ratio = b200.peak_flop_per_s("bf16") / b200.peak_flop_per_s("fp8")
    assert fits["gemm_bf16"].flop_per_s == pytest.approx(ratio * fits["gemm_fp8"].flop_per_s, rel=1e-6)
    assert fits["grouped_gemm_fp8"].flop_per_s == pytest.approx(fits["gemm_fp8"].flop_per_s, rel=1e-6)

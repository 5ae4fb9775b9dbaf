"""The MI300X's MLA decode attention: AITER's assembly kernel as TileLang's published MI300X benchmark timed it.

tile-ai/tilelang (MIT) examples/deepseek_mla/figures/flashmla-amd.png (2025-04-12) draws AITER's assembly MLA
decode kernel ("Aiter-ASM") on an MI300X at batch 64 and 128 over 1K-16K cached tokens; the shapes are those
examples/deepseek_mla/amd/benchmark_mla_decode_amd_aiter.py sets (128 query heads over one latent of 512 + rope 64,
a 2-byte cache, one query per sequence, sequence i caching seqlen + 2i tokens) and the TFLOPS its FLOP count
gives. calibration/data/published/mi300x.toml holds each bar as a timed shape (ms = FLOPs / label). Kernel
timings only: no end-to-end figure enters.
"""

from __future__ import annotations

import tomllib

import pytest

from calibration.fit import PUBLISHED_DIR
from hwmodels.registry import load_gpu
from simulator.analytic.pricing import op_s
from simulator.analytic.profile import rates_for
from workloads.registry import load_model
from workloads.servingops import decode_attention_op

TABLE = tomllib.loads((PUBLISHED_DIR / "mi300x.toml").read_text())
(SERIES,) = [s for s in TABLE["series"] if s["kernel"] == "attention_decode_mla"]
# the figure's Aiter-ASM bar labels (TFLOPS) at 1K, 2K, 4K, 8K and 16K cached tokens
LABELS = {64: (92, 117, 120, 136, 137), 128: (148, 148, 153, 154, 157)}
SEQLENS = (1024, 2048, 4096, 8192, 16384)
V3 = load_model("deepseek-v3")


@pytest.fixture(scope="module")
def rates():
    return rates_for(None, load_gpu("mi300x"))


def rows() -> list[dict]:
    return [dict(zip(SERIES["columns"], r, strict=True)) for r in SERIES["rows"]]


def test_each_row_is_a_bar_of_the_figure_under_the_benchmarks_flop_count():
    expected = [(b, seq, tflops) for b, labels in LABELS.items() for seq, tflops in zip(SEQLENS, labels, strict=True)]
    assert len(rows()) == len(expected) == 10
    for r, (b, seq, tflops) in zip(rows(), expected, strict=True):
        cached = b * seq + b * (b - 1)  # sequence i caches seqlen + 2i tokens
        assert (r["batch"], r["heads"], r["qk_dim"], r["v_dim"], r["kv_bytes"]) == (b, 128, 576, 512, 2)
        assert r["kv_len"] * b == cached
        flops = cached * 128 * (576 + 512) * 2  # the benchmark's FLOPS formula, one query per sequence
        assert flops / (r["ms"] * 1e-3) == pytest.approx(tflops * 1e12, rel=3e-4)  # ms kept to 4 decimals


def test_v3sims_decode_op_counts_the_benchmarks_flops_for_v3s_latent():
    """DeepSeek-V3's absorbed MLA decode reads the same latent the benchmark timed: its op has the FLOPs the
    benchmark divided by, so the series prices V3's decode as measured."""
    for r in rows():
        op = decode_attention_op(V3, r["batch"], r["kv_len"], 1, "bf16")
        assert op.flops == pytest.approx(r["batch"] * r["kv_len"] * 128 * (576 + 512) * 2, rel=1e-9)


def test_the_mi300x_prices_v3s_bf16_cache_decode_as_timed(rates):
    for r in rows():
        op = decode_attention_op(V3, r["batch"], r["kv_len"], 1, "bf16")
        assert op_s(op, rates) == pytest.approx(r["ms"] * 1e-3, rel=0.15)


def test_an_fp8_cache_takes_the_bf16_kernels_rates_not_the_h800s(rates):
    """No timing of AITER's FP8-cache kernel: its class is derived from the bf16 cache's (the halved reads priced
    at its rates), never the H800 FlashMLA series (660 TFLOPS) that priced both before."""
    fp8, bf16 = rates.fit("attention_decode_mla_fp8"), rates.fit("attention_decode_mla_bf16")
    assert fp8.flop_per_s == bf16.flop_per_s < 0.3 * rates.fit("attention_decode_bf16").flop_per_s
    assert any("attention_decode_mla_fp8: no samples; derived from the attention_decode_mla_bf16" in n
               for n in rates.notes)  # fmt: skip
    for r in rows():
        op = decode_attention_op(V3, r["batch"], r["kv_len"], 1, "fp8")
        as_bf16 = rates.time_s("attention_decode_mla_bf16", op.flops, 2 * op.hbm_bytes, 1.0, op.items)
        assert op.flops / bf16.flop_per_s < op_s(op, rates) <= as_bf16  # compute-bound: the halved reads save little
        assert op_s(op, rates) == pytest.approx(r["ms"] * 1e-3, rel=0.25)  # the class fit's spread (rms 9%)

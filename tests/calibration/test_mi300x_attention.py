"""The MI300X's attention kernels, each from a kernel-level source timed on the MI300X itself.

Decode (MLA): tile-ai/tilelang (MIT) examples/deepseek_mla/figures/flashmla-amd.png (2025-04-12) draws AITER's
assembly MLA decode kernel ("Aiter-ASM") on an MI300X at batch 64 and 128 over 1K-16K cached tokens; the shapes are
those examples/deepseek_mla/amd/benchmark_mla_decode_amd_aiter.py sets (128 query heads over one latent of 512 +
rope 64, a 2-byte cache, one query per sequence, sequence i caching seqlen + 2i tokens) and the TFLOPS its FLOP
count gives. calibration/data/published/mi300x.toml holds each bar as a timed shape (ms = FLOPs / label).

Prefill and training (GQA, head dim 128): AITER's README table of its assembly attention kernels
(ROCm/aiter op_tests/cpp/mha/README.md, 2026-01-13), the MI300X forward and fp32-atomic backward columns. Its
192/128 (MLA) forward runs on MI350/355 only, so the MI300X's MLA and window classes derive from these.
Kernel timings only: no end-to-end figure enters.
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
(DECODE,) = [s for s in TABLE["series"] if s["kernel"] == "attention_decode_mla"]
PREFILL = {s["kernel"]: s for s in TABLE["series"] if s["kernel"] in ("attention_fwd", "attention_bwd")}
# the figure's Aiter-ASM bar labels (TFLOPS) at 1K, 2K, 4K, 8K and 16K cached tokens
LABELS = {64: (92, 117, 120, 136, 137), 128: (148, 148, 153, 154, 157)}
SEQLENS = (1024, 2048, 4096, 8192, 16384)
V3 = load_model("deepseek-v3")


@pytest.fixture(scope="module")
def rates():
    return rates_for(None, load_gpu("mi300x"))


def rows(series: dict = DECODE) -> list[dict]:
    """A series' rows as {column: value}: the decode series unless another is named."""
    return [dict(zip(series["columns"], r, strict=True)) for r in series["rows"]]


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


def test_the_aiter_table_is_gqa_head_dim_128_counting_the_masked_half():
    """94 shapes each way, forward and backward on the same shapes; a causal row's TFLOPS counts the half of the
    score matrix the mask keeps (v3sim's convention, calibration.fit._attention_counts): at the longest
    sequences it runs within 25% of the same shape unmasked, not at half of it."""
    fwd, bwd = rows(PREFILL["attention_fwd"]), rows(PREFILL["attention_bwd"])
    assert len(fwd) == len(bwd) == 94
    assert [{k: v for k, v in r.items() if k != "tflops"} for r in fwd] == [
        {k: v for k, v in r.items() if k != "tflops"} for r in bwd
    ]
    assert {(r["qk_dim"], r["v_dim"]) for r in fwd} == {(128, 128)}
    assert {(r["heads"], r["kv_heads"]) for r in fwd} == {(32, 8), (64, 8), (64, 4)}
    by_shape = {(r["batch"], r["heads"], r["kv_heads"], r["seq_q"], r["causal"]): r["tflops"] for r in fwd}
    longest = [k for k in by_shape if k[3] == 10240 and k[4] == 1]
    assert longest and all(0.75 < by_shape[k] / by_shape[(*k[:4], 0)] < 1.25 for k in longest)


def test_the_mi300x_prices_attention_from_its_own_timings(rates):
    peak = load_gpu("mi300x").peak_flop_per_s("bf16")
    fwd, bwd = rates.fit("attention_fwd_bf16"), rates.fit("attention_bwd_bf16")
    assert bwd.flop_per_s < fwd.flop_per_s < 0.5 * peak  # 548 and 431 TFLOPS of its 1,307
    for kernel, fit in (("attention_fwd", fwd), ("attention_bwd", bwd)):
        assert fit.samples == 94 and fit.rel_rmse < 0.15 and not fit.derived_from, kernel
        long = [r["tflops"] * 1e12 for r in rows(PREFILL[kernel]) if r["seq_q"] >= 8192]  # the rate, not overheads
        assert 0.9 * min(long) < fit.flop_per_s < 1.1 * max(long), kernel
    # no MLA (192/128) kernel of its own on this die: MLA's and the window's classes are its GQA rates
    for cls, src in (("attention_fwd_mla_bf16", fwd), ("attention_bwd_mla_bf16", bwd),
                     ("attention_fwd_window_bf16", fwd)):  # fmt: skip
        assert rates.fit(cls).flop_per_s == src.flop_per_s and "attention_" in rates.fit(cls).derived_from

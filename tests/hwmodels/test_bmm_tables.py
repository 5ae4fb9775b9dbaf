"""MLA's absorbed decode BMMs as timed (hwmodels/data/kernels/mla_bmm, AIConfigurator's TensorRT-LLM MLA-BMM tables
reduced by calibration/aicmlabmm.py) and where serving prices them: TensorRT-LLM's decode runs kv_b_proj as two
batched GEMMs over the local heads, each looked up by its tokens and heads."""

from __future__ import annotations

import csv
import itertools
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import isotonic_regression

from hwmodels.bmmtables import BMM_DIR, bmm_tables
from hwmodels.kernels import non_decreasing
from hwmodels.registry import load_gpu
from simulator.analytic.pricing import gemm_op_s, op_s
from simulator.analytic.profile import rates_for
from simulator.analytic.serving import spec_layer_ops
from simulator.presets import deployment


def rows(gpu: str) -> list[dict[str, str]]:
    lines = [line for line in (BMM_DIR / f"{gpu}.csv").read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def test_a_timed_shape_is_its_timing_where_the_timings_rise():
    # H200, 128 heads: FP8 pre (q_nope x W_UK, its 1x128 quantize included) and post at 128 tokens
    table = bmm_tables(load_gpu("h200"))
    at = {(int(r["tokens"]), int(r["heads"])): r for r in rows("h200")}
    assert table["uk_fp8_us"].time_s(128, 128) == pytest.approx(float(at[128, 128]["uk_fp8_us"]) * 1e-6)
    assert table["uv_fp8_us"].time_s(128, 128) == pytest.approx(float(at[128, 128]["uv_fp8_us"]) * 1e-6)
    assert table["uk_fp8_us"].time_s(128, 128) > 2.5 * table["uk_bf16_us"].time_s(128, 128)  # Hopper's FP8 path
    assert table["uk_fp8_us"].time_s(128, 24) is None  # 24 heads were not timed: the GEMM's fit prices it
    h800 = bmm_tables(load_gpu("h800"))  # no file: the H100's, the same die and peaks
    assert h800["uk_fp8_us"].time_s(64, 16) == bmm_tables(load_gpu("h100"))["uk_fp8_us"].time_s(64, 16)
    assert bmm_tables(load_gpu("mi300x")) == {}


def test_beyond_the_timed_tokens_in_proportion_and_below_the_fewest_held():
    t = bmm_tables(load_gpu("b200"))["uv_bf16_us"]
    most = max(int(r["tokens"]) for r in rows("b200") if r["uv_bf16_us"] and int(r["heads"]) == 16)
    assert t.time_s(2 * most, 16) == pytest.approx(2 * t.time_s(most, 16))
    assert t.time_s(0.5, 16) == t.time_s(1, 16)


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=30))
def test_non_decreasing_is_the_least_squares_isotonic_fit(ys):
    ours, scipys = non_decreasing(ys), isotonic_regression(ys).x
    assert ours == pytest.approx(list(scipys), abs=1e-9)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(ours))


def decode_ops(engine: str, tp: int, kv_dtype: str = "bf16") -> dict:
    s = deployment("deepseek-v3", gpu="h200", weight_dtype="fp8", tp=tp, ep=8, redundant=0, kv_dtype=kv_dtype,
                   engine=engine, overlap="none", context=1024)  # fmt: skip
    return {op.name: op for op in spec_layer_ops(s, True, 128 / tp, 128 / tp, 1024, "decode")}


def test_trtllm_runs_mla_decodes_up_projection_as_two_bmms_of_the_same_work():
    plain, bmms = decode_ops("none", 8), decode_ops("trtllm", 8)
    uk, uv = bmms["kv_b_proj.uk"], bmms["kv_b_proj.uv"]
    assert "kv_b_proj" not in bmms and "cast.kv_latent" not in bmms  # the absorbed decode casts no kv latent
    assert "rope" in plain and "rope" not in bmms  # inside TensorRT-LLM's timed MLA generation op

    assert (uk.m, uk.n, uk.k, uk.groups) == (128, 512, 128, 16) and (uv.n, uv.k, uv.groups) == (128, 512, 16)
    whole = plain["kv_b_proj"]
    assert uk.flops + uv.flops == pytest.approx(whole.flops) and uk.library == uv.library == "trtllm"
    assert uk.hbm_bytes + uv.hbm_bytes == pytest.approx(whole.hbm_bytes)
    assert "kv_b_proj" in decode_ops("sglang", 8)  # engines whose GEMMs are not timed by shape keep one op
    prefill = deployment("deepseek-v3", gpu="h200", weight_dtype="fp8", tp=8, ep=8, redundant=0, engine="trtllm",
                         overlap="none", context=1024)  # fmt: skip
    assert "kv_b_proj" in {op.name for op in spec_layer_ops(prefill, True, 1024, 1024, 1024, "prefill")}


def test_trtllm_runs_rope_inside_its_attention_op():
    """TensorRT-LLM's TRTLLM attention backend applies RoPE in the attention op its timings cover: GQA's in both
    phases, MLA's in decode (mla_rope_generation); MLA prefill keeps its own kernel (not read)."""
    llama = {"gpu": "h200", "tp": 2, "context": 2048}
    for phase, tokens in (("decode", 64.0), ("prefill", 2048.0)):
        ops = {e: {op.name for op in spec_layer_ops(deployment("llama-3.1-70b", **llama, engine=e), False, tokens,
                                                    tokens, 2048, phase)} for e in ("none", "trtllm")}  # fmt: skip
        assert "rope" in ops["none"] and "rope" not in ops["trtllm"], phase
    prefill = deployment("deepseek-v3", gpu="h200", weight_dtype="fp8", tp=8, ep=8, redundant=0, engine="trtllm",
                         overlap="none", context=1024)  # fmt: skip
    assert "rope" in {op.name for op in spec_layer_ops(prefill, True, 1024, 1024, 1024, "prefill")}


def test_the_bmms_are_priced_as_timed_at_the_gpus_heads():
    rates = rates_for("h200-trtllm", load_gpu("h200"))
    table = rates.bmm_tables
    for tp, heads in ((1, 128), (8, 16)):
        ops = decode_ops("trtllm", tp)
        assert op_s(ops["kv_b_proj.uk"], rates) == pytest.approx(table["uk_fp8_us"].time_s(128, heads))
        assert op_s(ops["kv_b_proj.uv"], rates) == pytest.approx(table["uv_fp8_us"].time_s(128, heads))
    untimed = replace(decode_ops("trtllm", 8)["kv_b_proj.uk"], groups=24)  # a head count not timed
    assert gemm_op_s(untimed, rates) is None and op_s(untimed, rates) > 0  # the class's fit prices it


def test_the_reducer_reproduces_the_shipped_cells():
    from calibration.aicmlabmm import reduced

    excerpt = Path(__file__).parents[2] / "calibration" / "data" / "published" / "aic-mla-bmm-excerpt.csv"
    frame = pd.read_csv(excerpt, comment="#")
    shipped = {(int(r["tokens"]), int(r["heads"])): r for r in rows("h200")}
    out = reduced(frame)
    assert list(out.columns) == ["tokens", "heads", "uk_bf16_us", "uk_fp8_us", "uv_bf16_us", "uv_fp8_us"]
    assert len(out) == 4
    for r in out.to_dict("records"):
        cells = shipped[int(r["tokens"]), int(r["heads"])]
        for column in ("uk_bf16_us", "uk_fp8_us", "uv_bf16_us", "uv_fp8_us"):
            assert float(cells[column]) == pytest.approx(r[column], rel=5e-4)  # four significant digits

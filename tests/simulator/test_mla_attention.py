"""MLA's training and prefill attention (queries and keys 192 wide, values 128) is a kernel class of its own.

Source: NVIDIA/cudnn-frontend's SDPA training benchmark, config dsv3, on an H200 (the H800's die):
benchmark/sdpa_benchmark_training/results/h200_919_only_cudnn/dsv3_20260227_034744.csv (v1.19.0). At 4,096
tokens, 128 heads, causal: forward 1.148 ms, backward 4.424 ms. In v3sim's FLOP convention (forward
4*b*h*s^2*(d_qk + d_v)/2 causal, backward 2.5x) that is 598.6 and 388.3 TFLOPS; FlashAttention-3 at head dim
128 on the same die runs the backward at 542 (its paper's figure): MLA's backward is about a quarter slower.
"""

from __future__ import annotations

import pytest

from calibration.fit import published_from_dict
from hwmodels.profile import PROFILE_DIR, read_profile
from simulator.analytic.pricing import op_s, priced_class
from simulator.analytic.profile import rates_for, sol_rates
from simulator.cli import main
from simulator.runspec import v3_pretraining
from workloads.ops import attention_ops
from workloads.registry import load_model
from workloads.servingops import serving_model_ops

V3, LLAMA = load_model("deepseek-v3"), load_model("llama-3.1-8b")
CSV_4K = {"fwd_ms": 1.148, "bwd_ms": 4.424}  # the dsv3 row at 4,096 tokens, bfloat16, top_left mask


def _attention(spec, phase):
    (op,) = attention_ops(spec, 4096, 4096 / 2, phase)
    return op


def test_mla_attention_ops_carry_their_head_dims_and_name_the_mla_classes():
    fwd, bwd = _attention(V3, "forward"), _attention(V3, "backward_input")
    assert (fwd.k, fwd.n) == (V3.qk_head_dim, V3.v_dim) == (192, 128)
    assert fwd.profile_class == "attention_fwd_mla_bf16" and bwd.profile_class == "attention_bwd_mla_bf16"
    assert _attention(LLAMA, "forward").profile_class == "attention_fwd_bf16"  # qk = v = 128: FlashAttention-3's
    prefill = [op for g in serving_model_ops(V3, "prefill", 4096, 2048) for op in g.ops if op.kind == "attention"]
    assert prefill and all(op.profile_class == "attention_fwd_mla_bf16" for op in prefill)


def test_the_published_h800_table_holds_cudnns_mla_rows_at_the_csvs_times():
    p = read_profile(PROFILE_DIR / "h800-published.json")
    flops_4k = 2 * 128 * 4096**2 * (192 + 128) / 2
    fwd = [s for s in p.samples if s.kernel == "attention_fwd_mla" and s.flops == pytest.approx(flops_4k)]
    bwd = [s for s in p.samples if s.kernel == "attention_bwd_mla" and s.flops == pytest.approx(2.5 * flops_4k)]
    assert len(fwd) == len(bwd) == 1
    assert fwd[0].time_s == pytest.approx(CSV_4K["fwd_ms"] / 1e3, rel=1e-3)
    assert bwd[0].time_s == pytest.approx(CSV_4K["bwd_ms"] / 1e3, rel=1e-3)
    assert p.fits["attention_bwd_mla_bf16"].flop_per_s < 0.8 * p.fits["attention_bwd_bf16"].flop_per_s


def test_v3_attention_backward_costs_more_than_at_head_dim_128_rates():
    """The same op, priced by its own class and by the head-dim-128 class it used to borrow."""
    rates = rates_for(None, v3_pretraining().node.gpu)
    bwd = _attention(V3, "backward_input")
    own = op_s(bwd, rates)
    borrowed = rates.time_s("attention_bwd_bf16", bwd.flops, bwd.hbm_bytes)
    assert own > 1.2 * borrowed
    fwd = _attention(V3, "forward")  # the forward at 4K: within 10% of FlashAttention-3's
    assert op_s(fwd, rates) == pytest.approx(rates.time_s("attention_fwd_bf16", fwd.flops, fwd.hbm_bytes), rel=0.1)


def test_a_profile_without_mla_classes_prices_mla_at_the_base_class():
    rates = sol_rates(v3_pretraining().node.gpu)
    bwd = _attention(V3, "backward_input")
    assert "attention_bwd_mla_bf16" not in rates.fits
    assert priced_class(bwd, rates) == "attention_bwd_bf16"
    assert op_s(bwd, rates) == pytest.approx(bwd.flops / rates.fits["attention_bwd_bf16"].flop_per_s, rel=1e-9)


def test_a_published_table_takes_mla_series_and_checks_their_columns():
    series = {
        "kernel": "attention_bwd_mla",
        "dtype": "bf16",
        "source": "test",
        "columns": ["batch", "heads", "seq_q", "seq_k", "qk_dim", "v_dim", "causal", "tflops"],
        "rows": [[1, 128, 2048, 2048, 192, 128, 1, 300.0], [1, 128, 4096, 4096, 192, 128, 1, 350.0]],
    }
    p = published_from_dict({"name": "t", "device": "d", "catalog_gpu": "h800", "series": [series]})
    assert "attention_bwd_mla_bf16" in p.fits
    bad = {**series, "columns": ["batch", "heads", "seq_q", "seq_k", "qk_dim", "tflops"], "rows": [[1, 1, 1, 1, 1, 1]]}
    with pytest.raises(ValueError, match="columns must name each of"):
        published_from_dict({"name": "t", "device": "d", "series": [bad]})


def test_train_explain_names_the_mla_fits(capsys):
    assert main(["train", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "attention_bwd_mla_bf16 fit" in out and "attention_bwd_bf16 fit" not in out
    assert main(["train", "--model", "llama-3.1-8b", "--ep", "1", "--explain"]) == 0
    assert "attention_bwd_bf16 fit" in capsys.readouterr().out

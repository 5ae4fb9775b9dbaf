"""Sliding-window attention priced as the kernels that run it: a class of its own, from cuDNN's windowed SDPA
benchmark (NVIDIA/cudnn-frontend, config gpt_oss: GB200 at a 128-key window, H200 at 1,024), FLOPs counted on the
key tiles the kernel runs (`workloads.flops.window_tile_factor`)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.fit import published_from_dict
from hwmodels.registry import load_gpu
from simulator.analytic.pricing import op_s, priced_class
from simulator.analytic.profile import rates_for, sol_rates
from simulator.analytic.serving import spec_layer_ops, window_key_share
from simulator.cli import main
from simulator.presets import deployment
from workloads.flops import (
    WINDOW_TILE_KEYS,
    attended_keys,
    attention_core_flops,
    mean_attended_keys,
    span_keys,
    span_windowed_keys,
    window_tile_factor,
    windowed_keys,
)
from workloads.hf import spec_from_hf_config
from workloads.ops import attention_ops, layer_ops
from workloads.registry import load_model

GPT_OSS = load_model("gpt-oss-120b")  # 18 of 36 layers attend a 128-key window, head dim 64
GB200 = load_gpu("gb200")
# cuDNN's gpt_oss config on a GB200 (results/gpt_oss/gb200/gpt_oss_20260424_100011.csv): batch 2, 128 heads,
# head dim 64, window 128, 4,096 tokens, bf16: forward 0.210 ms, non-deterministic backward 0.465 ms.
CSV_4K = {"forward": 0.210e-3, "backward_input": 0.465e-3}


def _benchmark_op(phase: str):
    """The benchmark's 4K row as an op: 2 sequences x 128 heads of 4,096 tokens, every layer windowed."""
    config = {"architectures": ["MistralForCausalLM"], "hidden_size": 8192, "intermediate_size": 8192,
              "num_hidden_layers": 2, "num_attention_heads": 128, "num_key_value_heads": 128, "head_dim": 64,
              "vocab_size": 1000, "sliding_window": 128}  # fmt: skip
    spec = spec_from_hf_config(config)
    (op,) = attention_ops(spec, 2 * 4096, windowed_keys(spec, 4096), phase, windowed_keys(spec, 4096))
    return op


@pytest.mark.parametrize("phase", ["forward", "backward_input"])
def test_the_window_class_prices_the_benchmark_row_it_was_fitted_on(phase):
    op = _benchmark_op(phase)
    rates = rates_for(None, GB200)
    assert op.window == 128 and priced_class(op, rates) in ("attention_fwd_window_bf16", "attention_bwd_window_bf16")
    assert op_s(op, rates) == pytest.approx(CSV_4K[phase], rel=0.05)
    # the same FLOPs at the full-attention class's FLOP rate: the window's kernel runs several times slower
    full = rates.fits[priced_class(op, rates).replace("_window", "")].flop_per_s
    assert op_s(op, rates) > 4 * op.flops / full


def test_the_tile_factor_counts_one_key_tile_beyond_the_window():
    assert WINDOW_TILE_KEYS == 128
    assert window_tile_factor(128) == 2 and window_tile_factor(1024) == pytest.approx(1152 / 1024)
    with pytest.raises(ValueError, match="window"):
        window_tile_factor(0)


@given(st.integers(64, 65536))
def test_the_windowed_layers_part_of_the_keys_is_theirs_of_the_mean(seq_len):
    part = windowed_keys(GPT_OSS, seq_len)
    share = GPT_OSS.sliding_window_layers / GPT_OSS.num_hidden_layers
    if seq_len <= GPT_OSS.sliding_window:
        assert part == 0  # a window the sequence never fills prices as full attention
    else:
        assert part == pytest.approx(share * attended_keys(seq_len, True, 128))
        assert 0 < part < mean_attended_keys(GPT_OSS, seq_len)


@pytest.mark.parametrize("phase", ["forward", "backward_input"])
def test_the_split_keeps_every_flop_and_byte(phase):
    ctx, part = mean_attended_keys(GPT_OSS, 4096), windowed_keys(GPT_OSS, 4096)
    (whole,) = attention_ops(GPT_OSS, 16384, ctx, phase)
    split = attention_ops(GPT_OSS, 16384, ctx, phase, part)
    assert [op.name for op in split] == ["attention", "attention.window"] and split[1].window == 128
    assert sum(op.flops for op in split) == pytest.approx(whole.flops)
    assert sum(op.hbm_bytes for op in split) == pytest.approx(whole.hbm_bytes)
    assert split[1].flops == pytest.approx(whole.flops / ctx * part)


def test_gpt_oss_training_prices_its_windowed_layers_slower_than_at_full_rates():
    rates = rates_for(None, GB200)
    ops = layer_ops(GPT_OSS, True, 16384, mean_attended_keys(GPT_OSS, 4096), ("forward",), 64, "fp8",
                    windowed_keys(GPT_OSS, 4096))  # fmt: skip
    window = next(op for op in ops if op.window)
    assert window.profile_class == "attention_fwd_window_bf16"
    at_full_rate = window.flops / rates.fits["attention_fwd_bf16"].flop_per_s
    assert op_s(window, rates) > 5 * at_full_rate  # measured 10x on the B200 table (its fixed cost included)


def test_a_model_windowed_in_every_layer_has_only_the_windowed_op():
    config = {"architectures": ["MistralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
              "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 32000,
              "sliding_window": 4096}  # fmt: skip
    mistral = spec_from_hf_config(config)
    ops = attention_ops(mistral, 8192, mean_attended_keys(mistral, 8192), "forward", windowed_keys(mistral, 8192))
    assert [op.name for op in ops] == ["attention.window"]
    assert (
        attention_ops(mistral, 4096, mean_attended_keys(mistral, 4096), "forward", windowed_keys(mistral, 4096))[
            0
        ].window
        == 0
    )  # at 4,096 tokens the window never binds


def test_speed_of_light_and_profiles_without_the_class_still_price_windows():
    op = _benchmark_op("forward")
    sol = sol_rates(GB200)
    limit = max(op.flops / GB200.peak_flop_per_s("bf16"), op.hbm_bytes / GB200.hbm_bw_bytes_per_s)
    assert op_s(op, sol) == pytest.approx(limit)  # the attended FLOPs at the limit: no tile factor
    fp8 = op.__class__(**{**op.to_dict(), "precision": "fp8"})
    h800 = rates_for(None, load_gpu("h800"))
    assert priced_class(fp8, h800) == "attention_fwd_window_fp8"
    fp8_fit, bf16_fit = h800.fits["attention_fwd_window_fp8"], h800.fits["attention_fwd_window_bf16"]
    assert fp8_fit.flop_per_s == bf16_fit.flop_per_s and "window_bf16" in fp8_fit.derived_from  # bf16's rate


def test_gpt_oss_prefill_splits_its_keys_as_its_prompts_span_them():
    s = deployment("gpt-oss-120b", "b200", context=8192)
    share = window_key_share(s)
    assert share == pytest.approx(span_windowed_keys(GPT_OSS, 0, 8192) / span_keys(GPT_OSS, 0, 8192))
    ops = spec_layer_ops(s, True, 8192, 8192, span_keys(GPT_OSS, 0, 8192), "prefill")
    attention = [op for op in ops if op.kind == "attention"]
    assert [op.window for op in attention] == [0, 128]
    keys = sum(op.flops for op in attention) / 8192 / attention_core_flops(GPT_OSS, 1.0)
    assert keys == pytest.approx(span_keys(GPT_OSS, 0, 8192))
    assert window_key_share(deployment("deepseek-v3", "h800")) == 0


def test_a_window_series_needs_its_window_column():
    series = {
        "kernel": "attention_fwd_window", "dtype": "bf16", "source": "s",
        "columns": ["batch", "heads", "seq_q", "seq_k", "qk_dim", "v_dim", "causal", "tflops"],
        "rows": [[2, 128, 4096, 4096, 64, 64, 1, 322.2]],
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"columns must name each of .*window"):
        published_from_dict({"name": "t", "device": "d", "series": [series]})
    series["columns"] = [*series["columns"][:-1], "window", "tflops"]
    series["rows"] = [[2, 128, 4096, 4096, 64, 64, 1, 128, 322.2]]
    fitted = published_from_dict({"name": "t", "device": "d", "series": [series]})
    assert "attention_fwd_window_bf16" in fitted.fits


def test_cli_ops_lists_the_windowed_layers_attention(capsys):
    assert main(["ops", "gpt-oss-120b", "--phase", "prefill", "--seq-len", "8192", "--json"]) == 0
    names = {op["name"]: op for op in json.loads(capsys.readouterr().out)["ops"]}
    assert names["attention.window"]["window"] == 128 and names["attention"]["window"] == 0


def test_each_kind_of_layer_pays_its_kernels_fixed_cost_in_its_share_of_the_layers():
    """The average layer's attention splits into the full layers' and the windowed layers' ops; each is that
    share of the layers running one kernel of its whole counts, so the fixed cost of a kernel is paid once a
    layer, not once per kind in every layer."""
    from dataclasses import replace

    rates = rates_for(None, GB200)
    ops = attention_ops(GPT_OSS, 16384, mean_attended_keys(GPT_OSS, 4096), "forward", windowed_keys(GPT_OSS, 4096))
    assert [op.layers for op in ops] == [0.5, 0.5]
    for op in ops:
        whole = replace(op, flops=op.flops / op.layers, hbm_bytes=op.hbm_bytes / op.layers, layers=1.0)
        assert op_s(op, rates) == pytest.approx(op.layers * op_s(whole, rates))
    overheads = sum(op.layers * rates.fits[priced_class(op, rates)].overhead_s for op in ops)
    assert overheads < max(rates.fits[priced_class(op, rates)].overhead_s for op in ops)


def test_the_split_attention_is_one_launch_a_layer():
    """An eager run launches one attention kernel a layer, full or windowed: the host's launch count of the
    split ops (`simulator.analytic.host.launches`) is the unsplit one's."""
    from simulator.analytic.host import launches

    ctx = mean_attended_keys(GPT_OSS, 4096)
    split = layer_ops(GPT_OSS, True, 16384, ctx, ("forward",), 64, "fp8", windowed_keys(GPT_OSS, 4096))
    whole = layer_ops(GPT_OSS, True, 16384, ctx, ("forward",), 64, "fp8")
    assert len(split) == len(whole) + 1 and launches(split) == pytest.approx(launches(whole))

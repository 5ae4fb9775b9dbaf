"""Sliding-window attention (GPT-OSS, Mistral 7B v0.1, Qwen with use_sliding_window): what a windowed layer
attends, caches and costs, against the mask itself (torch) and the published parameter counts."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from workloads.flops import (
    attended_keys,
    cached_tokens,
    context_for_cached,
    mean_attended_keys,
    span_keys,
    train_flops_breakdown,
)
from workloads.hf import ConfigError, spec_from_hf_config
from workloads.layout import ParallelLayout
from workloads.memory import inference_memory_per_gpu, largest_batch_that_fits, longest_context_that_fits
from workloads.params import params_active, params_total
from workloads.registry import MODELS_DIR, load_model

GPT_OSS = load_model("gpt-oss-120b")


def mask_keys(seq_len: int, window: int, start: int = 0) -> float:
    """Mean keys per query of the real mask: causal, and key j visible to query i iff i - j < window (the
    `sliding_window` of transformers' masking_utils), for the queries after `start` cached tokens."""
    i = torch.arange(seq_len).unsqueeze(1)
    j = torch.arange(seq_len).unsqueeze(0)
    visible = (j <= i) & ((i - j < window) if window else torch.ones_like(i - j, dtype=torch.bool))
    return visible[start:].sum().item() / (seq_len - start)


@pytest.mark.parametrize(("seq_len", "window"), [(1, 4), (7, 4), (64, 64), (300, 128), (4096, 128), (513, 0)])
def test_attended_keys_count_the_mask(seq_len, window):
    assert attended_keys(seq_len, window=window) == pytest.approx(mask_keys(seq_len, window))


@pytest.mark.parametrize(("start", "new"), [(0, 300), (100, 200), (200, 1), (127, 5), (5, 1)])
def test_span_keys_count_the_mask_after_a_cached_prefix(start, new):
    """A prefill after `start` cached tokens, and a decode step (new = 1), averaged over GPT-OSS's layers:
    half of them full, half windowed at 128."""
    n = start + new
    expected = (mask_keys(n, 0, start) + mask_keys(n, 128, start)) / 2
    assert span_keys(GPT_OSS, start, new) == pytest.approx(expected)
    assert span_keys(GPT_OSS, n - 1, 1) == pytest.approx(cached_tokens(GPT_OSS, n))  # decode reads what is cached


def test_gpt_oss_counts_its_published_parameters():
    """gpt-oss model card (arXiv 2508.10925, table 1): 116.83B total and 5.13B active (120b), 20.91B and 3.61B
    (20b); v3sim leaves out the experts' own biases and the attention sinks (0.03%)."""
    for slug, total, active in (("gpt-oss-120b", 116.83e9, 5.13e9), ("gpt-oss-20b", 20.91e9, 3.61e9)):
        spec = load_model(slug)
        assert params_total(spec) == pytest.approx(total, rel=0.001)
        assert params_active(spec) == pytest.approx(active, rel=0.002)
        assert spec.sliding_window == 128 and spec.sliding_window_layers == spec.num_hidden_layers // 2


def test_a_window_cuts_attention_flops_only_past_it():
    full = replace(GPT_OSS, sliding_window=0, sliding_window_layers=0)
    short, long = 128, 32768
    assert train_flops_breakdown(GPT_OSS, short) == train_flops_breakdown(full, short)
    core = train_flops_breakdown(GPT_OSS, long)["attn_core"]
    assert core / train_flops_breakdown(full, long)["attn_core"] == pytest.approx(0.5, abs=0.01)  # half windowed
    # the windowed half's keys stop growing: at 4x the sequence, the core grows ~4x less for that half
    ratio = train_flops_breakdown(GPT_OSS, 4 * long)["attn_core"] / core
    assert 3.9 < ratio < 4.0


def test_the_kv_cache_of_windowed_layers_stops_at_the_window():
    full = replace(GPT_OSS, sliding_window=0, sliding_window_layers=0)
    layout = ParallelLayout(tp=8, ep=8, gpus_per_node=8)
    for context in (100, 128):
        assert inference_memory_per_gpu(GPT_OSS, layout, 4, context) == inference_memory_per_gpu(
            full, layout, 4, context
        )
    kv = inference_memory_per_gpu(GPT_OSS, layout, 4, 131072)["kv_cache"]
    assert kv / inference_memory_per_gpu(full, layout, 4, 131072)["kv_cache"] == pytest.approx(0.5, abs=0.001)
    hbm = 80e9
    batch = largest_batch_that_fits(GPT_OSS, layout, 131072, hbm)
    assert batch > 1.9 * largest_batch_that_fits(full, layout, 131072, hbm)
    longest = longest_context_that_fits(GPT_OSS, layout, batch, hbm)
    assert longest >= 131072 and cached_tokens(GPT_OSS, longest) * batch <= cached_tokens(GPT_OSS, 131072) * (batch + 1)


@given(st.integers(1, 1 << 20))
def test_context_for_cached_inverts_cached_tokens(cached):
    context = context_for_cached(GPT_OSS, cached)
    assert cached_tokens(GPT_OSS, context) <= cached < cached_tokens(GPT_OSS, context + 1) + 1


def test_every_layer_windowed_holds_any_context():
    mistral = spec_from_hf_config({**_mistral_v01(), "sliding_window": 4096})
    assert mistral.sliding_window_layers == 32
    assert cached_tokens(mistral, 1 << 20) == 4096
    assert context_for_cached(mistral, 5000) == 1 << 24


def _mistral_v01() -> dict:
    """mistralai/Mistral-7B-v0.1 config.json (sliding_window 4096, every layer)."""
    return {
        "architectures": ["MistralForCausalLM"],
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "sliding_window": 4096,
    }


def test_configs_say_which_layers_are_windowed():
    assert spec_from_hf_config({**_mistral_v01(), "sliding_window": None}).sliding_window == 0  # v0.2 on
    qwen = {
        "architectures": ["Qwen2ForCausalLM"],
        "hidden_size": 1024,
        "intermediate_size": 2816,
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "num_key_value_heads": 16,
        "vocab_size": 151936,
        "sliding_window": 32768,
        "max_window_layers": 21,
    }
    assert spec_from_hf_config({**qwen, "use_sliding_window": False}).sliding_window == 0  # as released
    on = spec_from_hf_config({**qwen, "use_sliding_window": True})
    assert (on.sliding_window, on.sliding_window_layers) == (32768, 3)  # layers 21, 22, 23
    config = {**_read("gpt-oss-20b"), "layer_types": ["full_attention"] * 24}
    assert spec_from_hf_config(config).sliding_window == 0
    del config["layer_types"]  # transformers' default: windowed from the first layer, every other one
    assert spec_from_hf_config(config).sliding_window_layers == 12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"layer_types": ["sliding_attention"] * 3}, "layer_types must list 24 entries"),
        ({"layer_types": ["local"] * 24}, "layer_types must list 24 entries"),
        ({"sliding_window": "128"}, "sliding_window='128' must be an integer"),
    ],
)
def test_bad_window_keys_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        spec_from_hf_config({**_read("gpt-oss-20b"), **change})


def test_a_spec_refuses_half_a_window():
    with pytest.raises(ValueError, match="must both be 0"):
        replace(GPT_OSS, sliding_window_layers=0)
    with pytest.raises(ValueError, match="exceeds num_hidden_layers"):
        replace(GPT_OSS, sliding_window_layers=37)


def test_mean_attended_keys_is_the_layer_mean():
    full, windowed = attended_keys(4096), attended_keys(4096, window=128)
    assert mean_attended_keys(GPT_OSS, 4096) == pytest.approx((full + windowed) / 2)
    assert mean_attended_keys(GPT_OSS, 4096, causal=False) == pytest.approx((4096 + 128) / 2)


def _read(slug: str) -> dict:
    import json

    return json.loads((MODELS_DIR / f"{slug}.json").read_text())


def test_gemma3_counts_its_published_parameters_and_its_five_local_layers_in_six():
    """Gemma 3 Technical Report (arXiv 2503.19786, table 1): the 27B has 1,416M embedding and 25,600M
    non-embedding parameters (its 417M vision tower apart); 62 layers, five local (1,024-token window) to each
    global one, so 52 windowed and 10 full."""
    gemma = load_model("gemma-3-27b")
    assert params_total(gemma) == pytest.approx(1416e6 + 25600e6, rel=0.002)
    assert (gemma.sliding_window, gemma.sliding_window_layers, gemma.num_hidden_layers) == (1024, 52, 62)
    assert gemma.tie_word_embeddings and gemma.qk_norm and gemma.vocab_size == 262208  # Gemma3TextConfig's default
    assert cached_tokens(gemma, 131072) == pytest.approx((10 * 131072 + 52 * 1024) / 62)
    flat = {**_read("gemma-3-27b")["text_config"], "architectures": ["Gemma3ForCausalLM"]}
    assert spec_from_hf_config(flat, name="gemma-3-27b") == replace(gemma, source="config.json")
    every_other = spec_from_hf_config({**flat, "sliding_window_pattern": 2})
    assert every_other.sliding_window_layers == 31
    with pytest.raises(ConfigError, match="sliding_window_pattern=0 must be a positive integer"):
        spec_from_hf_config({**flat, "sliding_window_pattern": 0})

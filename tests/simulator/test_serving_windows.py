"""Serving a model with sliding-window layers (GPT-OSS 120B: every other layer keeps its last 128 tokens): its KV
capacity, decode reads, KV transfer and the load simulation's admission follow the window; the same model with
every layer full is the control."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from simulator.analytic.profile import rates_for
from simulator.analytic.serving import decode
from simulator.analytic.servingcomm import kv_transfer
from simulator.analytic.servingmemory import kv_bytes_per_sequence_per_gpu, max_sequences_per_gpu
from simulator.events.offline import trtllm_bench
from simulator.events.serving import build_setup, kv_reserve, simulate_serving
from simulator.events.serving_stats import decode_capacity_qps
from simulator.explore.servingvalidate import pose, published_result, published_serving
from simulator.presets import deployment
from workloads.flops import cached_tokens
from workloads.registry import load_model

GPT_OSS = load_model("gpt-oss-120b")
FULL = replace(GPT_OSS, sliding_window=0, sliding_window_layers=0)


def pair(context: int, output_tokens: int = 256):
    """The windowed model and its all-full control, deployed alike on one B200 node (EP8, fp4 experts)."""
    opts = {"gpu": "b200", "tp": 1, "ep": 8, "redundant": 0, "weight_dtype": "fp4", "kv_dtype": "fp8"}
    return tuple(deployment(m, context=context, output_tokens=output_tokens, **opts) for m in (GPT_OSS, FULL))


def test_short_contexts_cost_what_full_attention_costs():
    windowed, full = pair(128, output_tokens=64)
    assert kv_bytes_per_sequence_per_gpu(windowed) == kv_bytes_per_sequence_per_gpu(full)
    assert max_sequences_per_gpu(windowed) == max_sequences_per_gpu(full)
    rates = rates_for(None, windowed.node.gpu)
    assert decode(windowed, rates, 64).step_s == pytest.approx(decode(full, rates, 64).step_s)


def test_long_contexts_cache_half_and_read_half():
    windowed, full = pair(131072, output_tokens=1024)
    ratio = kv_bytes_per_sequence_per_gpu(windowed) / kv_bytes_per_sequence_per_gpu(full)
    assert ratio == pytest.approx((131072 + 128) / 2 / 131072)
    assert max_sequences_per_gpu(windowed) >= 1.9 * max_sequences_per_gpu(full)
    assert kv_transfer(windowed)["gb_per_request"] < 0.51 * kv_transfer(full)["gb_per_request"]
    rates = rates_for(None, windowed.node.gpu)
    fast, slow = decode(windowed, rates, 8), decode(full, rates, 8)
    assert fast.step_s < slow.step_s  # the decode step reads half the KV


def test_the_load_simulation_admits_by_what_the_layers_cache():
    """Admission reserves each request's KV as the layers cache it, so the simulated batch saturates at the
    analytic (windowed) capacity, about twice what every layer full would hold."""
    s, _ = pair(16384, output_tokens=256)
    rates = rates_for(None, s.node.gpu)
    prompts, outputs = np.full(100, 16128), np.full(100, 256)
    setup = build_setup(s, rates, prompts, outputs, None)
    capacity = max_sequences_per_gpu(s)
    assert setup.kv_tokens_per_unit == int(capacity * cached_tokens(GPT_OSS, 16384))
    assert kv_reserve(s, prompts + outputs)[0] == int(np.ceil(cached_tokens(GPT_OSS, 16384)))
    assert (kv_reserve(pair(16384)[1], prompts + outputs) == prompts + outputs).all()
    out = simulate_serving(s, rates, 2 * decode_capacity_qps(s, rates, 256), "16128", "256", requests=12000)
    assert 0.97 * capacity < out["mean_decode_batch_per_gpu"] <= capacity  # measured 494.2 of 496
    assert capacity > 1.9 * max_sequences_per_gpu(pair(16384)[1])  # every layer full: 250


def test_an_engine_with_one_kv_pool_holds_every_layer_whole():
    """--window-kv full: the pool keeps the whole context of a windowed layer (TensorRT-LLM without
    max_attention_window, docs/source/features/kvcache.md): capacity is every-layer-full's, the decode step still
    reads only the window, so it is as fast as the windowed pool's at the same batch."""
    windowed, _ = pair(131072, output_tokens=1024)
    one_pool, full = replace(windowed, window_kv="full"), pair(131072, output_tokens=1024)[1]
    assert max_sequences_per_gpu(one_pool) == max_sequences_per_gpu(full)
    assert kv_bytes_per_sequence_per_gpu(one_pool) == pytest.approx(kv_bytes_per_sequence_per_gpu(full))
    rates = rates_for(None, windowed.node.gpu)
    assert decode(one_pool, rates, 8).step_s == pytest.approx(decode(windowed, rates, 8).step_s)
    assert (kv_reserve(one_pool, np.array([131072])) == 131072).all()


def test_window_kv_is_a_cli_choice(capsys):
    from simulator.cli import main

    args = ["serve", "--model", "gpt-oss-20b", "--gpu", "h100", "--context", "32k", "--json"]
    assert main([*args, "--window-kv", "full"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    windowed = json.loads(capsys.readouterr().out)
    assert windowed["max_concurrent_sequences_per_gpu"] > 1.9 * full["max_concurrent_sequences_per_gpu"]
    assert main([*args, "--window-kv", "half"]) != 0
    assert "invalid choice: 'half'" in capsys.readouterr().err


def test_the_search_prices_every_layout_with_the_kv_pool_asked_for():
    from simulator.explore.servesearch import search

    asked = {"tpot_ms": 50.0, "context": 32768}
    windowed = search("gpt-oss-20b", "h100", **asked).to_dict()["ranked"]
    full = search("gpt-oss-20b", "h100", window_kv="full", **asked).to_dict()["ranked"]
    by_layout = {(r["ep"], r["tp"], r["redundant"]): r for r in windowed}
    shared = [(r, by_layout[key]) for r in full if (key := (r["ep"], r["tp"], r["redundant"])) in by_layout]
    assert shared and all(f["batch_per_gpu"] <= w["batch_per_gpu"] for f, w in shared)
    assert any(f["batch_per_gpu"] < w["batch_per_gpu"] for f, w in shared)


def test_cli_kv_says_which_layers_keep_a_window(capsys):
    from simulator.cli import main

    assert main(["kv", "gemma-3-27b", "deepseek-v3", "--context", "128000", "--json"]) == 0
    gemma, v3 = json.loads(capsys.readouterr().out)
    per_layer = 2 * 16 * 128 * 2  # K and V, 16 heads of 128, bf16
    assert gemma["kv_bytes_total"] == per_layer * (10 * 128000 + 52 * 1024)  # 10 full layers, 52 windowed
    assert (gemma["sliding_window"], gemma["sliding_window_layers"]) == (1024, 52) and not v3["sliding_window"]
    assert main(["kv", "gemma-3-27b", "--context", "128000"]) == 0
    assert "52 layers keep their last 1,024" in capsys.readouterr().out


def test_tensorrt_llm_overview_rows_hold_every_layer_whole():
    """TensorRT-LLM's performance overview ran GPT-OSS with no max_attention_window (its llm_options), and its KV
    pools of that release keep every layer at max_seq_len when the list is unset (NVIDIA/TensorRT-LLM pull 18767):
    `validate` poses all 29 of its GPT-OSS rows with one pool. On one GB200 at 1,024 + 1,024 tokens that halves the
    sequences the cache holds (36 layers of 2,048 tokens against 18 and 18 of 128), below trtllm-bench's batch of
    2,048 (the untuned MXFP4 limit), where the windowed pool held more than the batch."""
    rows = [r for r in published_serving() if r["id"].startswith("trtllm-gpt-oss")]
    assert len(rows) == 29 and all(r["window_kv"] == "full" for r in rows)
    one_pool, _ = pose(published_result("trtllm-gpt-oss-120b-gb200-1024-1024"))
    windowed = replace(one_pool, window_kv="window")
    held, held_windowed = max_sequences_per_gpu(one_pool), max_sequences_per_gpu(windowed)
    assert 0.45 < held / held_windowed < 0.6
    assert held < 2048 < held_windowed
    assert trtllm_bench(one_pool, 1024, 1024, 1024).batch is None  # the cache, not the harness, sets the batch
    assert trtllm_bench(windowed, 1024, 1024, 1024).batch == 2048

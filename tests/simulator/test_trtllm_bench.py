"""trtllm-bench's own set-up of an offline run (`simulator.events.offline.trtllm_bench`, `v3sim serve --offline
--harness trtllm-bench`) and the two step rules it switches on in the event model: whole prompts
(`ServeSpec.chunked_prefill`) and CUDA graph padding (`ServeSpec.graph_batches`)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import simpy

from simulator.analytic.profile import rates_for
from simulator.analytic.serving import serve
from simulator.analytic.servingmemory import max_sequences_per_gpu
from simulator.cli import main
from simulator.events.offline import (
    PERF_OVERVIEW_GRAPH_BATCHES,
    UNTUNED_LIMITS,
    simulate_offline,
    trtllm_bench,
    trtllm_bench_limits,
)
from simulator.events.serving import _Colocated, build_setup
from simulator.explore.servingvalidate import published_serving
from simulator.presets import deployment

SPEC = deployment("qwen3-30b-a3b", "h100", weight_dtype="fp8", context=2048, colocated=True, output_tokens=1024,
                  tp=1, ep=1, batch=96)  # fmt: skip
RATES = rates_for(None, SPEC.node.gpu)


@pytest.mark.parametrize(
    ("requests", "isl", "osl", "limits"),
    [
        # tensorrt_llm/bench/build/tuning.py finetune_setting, worked by hand: the batch rounded up to 32 (at least
        # 64) below 256, to 128 below 1,024, else to 256 (at most 4,096); tokens = batch x (1 + ISL/OSL) rounded up
        # to 256 (at least 2,048) below 4,096, to 512 below 8,192, else to 1,024 (at most 32,768)
        (1632, 1024, 1024, (1792, 3328)),
        (110, 8192, 1024, (128, 2048)),
        (500, 1024, 8192, (512, 2048)),
        (40, 32768, 1024, (64, 2048)),
        (5000, 1024, 1024, (4096, 8192)),
        (3000, 8192, 1024, (3072, 27648)),
        (5000, 8192, 1024, (4096, 32768)),
        (700, 4096, 1024, (768, 3584)),
    ],
)
def test_the_heuristic_limits_are_tensorrt_llms(requests, isl, osl, limits):
    assert trtllm_bench_limits(requests, isl, osl) == limits


def test_trtllm_bench_sets_the_limits_whole_prompts_and_cuda_graphs():
    nvfp4 = deployment("qwen3-30b-a3b", "b200", weight_dtype="fp4", kv_dtype="fp8", context=2048, colocated=True,
                       output_tokens=1024, tp=1, ep=1)  # fmt: skip
    held = max_sequences_per_gpu(nvfp4)
    run = trtllm_bench(nvfp4, 1024, 1024, 1024)
    batch, tokens = trtllm_bench_limits(held, 1024, 1024)
    assert batch >= held and run.batch is None  # rounded up past the cache: the cache limits the batch
    assert run.prefill_tokens == max(tokens, 1024 + batch) and not run.chunked_prefill
    assert run.graph_batches == PERF_OVERVIEW_GRAPH_BATCHES
    # MXFP4 (fp4 weights under fp8 activations) is not among the tuned quantizations: the API's defaults, the
    # token budget raised to hold the longest prompt and a full batch of decode tokens
    mxfp4 = deployment("gpt-oss-20b", "b200", weight_dtype="fp4", activation_dtype="fp8", kv_dtype="fp8",
                       context=2048, colocated=True, output_tokens=1024, tp=1, ep=1)  # fmt: skip
    assert max_sequences_per_gpu(mxfp4) > UNTUNED_LIMITS[0]
    assert trtllm_bench(mxfp4, 1024, 1024, 1024).prefill_tokens == UNTUNED_LIMITS[1]
    run = trtllm_bench(mxfp4, 1024, 1024, 8192)
    assert (run.batch, run.prefill_tokens) == (UNTUNED_LIMITS[0], 8192 + UNTUNED_LIMITS[0])
    # a tp group's limits are the instance's: per GPU, a tp-th of them
    tp2 = deployment("llama-3.1-70b", "h200", weight_dtype="fp8", kv_dtype="fp8", context=2048, colocated=True,
                     output_tokens=1024, tp=2)  # fmt: skip
    batch, tokens = trtllm_bench_limits(max_sequences_per_gpu(tp2) * 2, 1024, 1024)
    assert trtllm_bench(tp2, 1024, 1024, 1024).prefill_tokens == -(-max(tokens, 1024 + batch) // 2)


def test_attention_dp_sizes_the_instance_and_gives_each_rank_its_limits():
    """DEP4 (tp 1, ep 4): trtllm-bench runs `--tp 4`, so its heuristic sizes the KV cache of four GPUs, and under
    attention DP each rank schedules up to those limits itself (the overview's R1 row on 4 B200: 6,144 tokens a
    step per GPU, where one GPU's cache alone would give 2,048)."""
    dep4 = deployment("deepseek-v3", "b200", weight_dtype="fp4", kv_dtype="fp8", context=2048, colocated=True,
                      output_tokens=1024, tp=1, ep=4)  # fmt: skip
    held = max_sequences_per_gpu(dep4)
    batch, tokens = trtllm_bench_limits(4 * held, 1024, 1024)
    run = trtllm_bench(dep4, 1024, 1024, 1024)
    assert run.prefill_tokens == max(tokens, 1024 + batch) > trtllm_bench_limits(held, 1024, 1024)[1]
    assert run.batch is None  # a rank's max_batch_size, rounded up from four GPUs' cache: past its own cache


def pool_run(spec, requests: int = 200, prompt: int = 1024, output: int = 64):
    prompts, outs = np.full(requests, prompt), np.full(requests, output)
    setup = build_setup(spec, RATES, prompts, outs, None)
    pool = _Colocated(simpy.Environment(), setup, np.random.default_rng(0), np.zeros(requests), prompts, outs)
    pool.env.process(pool.pool())
    pool.env.run()
    return pool


def test_without_chunked_prefill_a_prompt_enters_one_step_whole():
    """A budget of 1,500 tokens per step: chunked, the 1,024-token prompts split across steps; whole, every step
    carries whole prompts (its prompt tokens a multiple of 1,024) and the run still ends."""
    spec = replace(SPEC, prefill_tokens=1500)
    chunked = [tokens for _, _, tokens in pool_run(spec).forwards]
    whole = pool_run(replace(spec, chunked_prefill=False))
    assert any(t % 1024 for t in chunked)
    assert all(t % 1024 == 0 for _, _, t in whole.forwards) and whole.done == 200


def test_a_prompt_longer_than_a_step_needs_chunking_and_says_so():
    with pytest.raises(ValueError, match="a 1,024-token prompt does not fit a step's 512 new tokens") as err:
        pool_run(replace(SPEC, prefill_tokens=512, chunked_prefill=False))
    assert "\n" not in str(err.value)


def test_a_decode_only_step_runs_at_its_cuda_graphs_padded_batch():
    graphs = replace(SPEC, graph_batches=(1, 2, 4, 8, 16, 32, 64, 128))
    setup = build_setup(graphs, RATES, np.full(4, 1024), np.full(4, 64), None)
    assert setup.decode_only(70, 1500, 1.0) == setup.decode(128, 1500 * 70 / 128, 1.0)  # the padding's GEMMs
    assert setup.decode_only(64, 1500, 1.0) == setup.decode(64, 1500, 1.0)  # a captured size: no padding
    assert setup.decode_only(200, 1500, 1.0) == setup.decode(200, 1500, 1.0)  # past the largest: eager
    for batch in (3, 33, 65, 100):
        assert setup.decode_only(batch, 1500, 1.0) >= setup.decode(batch, 1500, 1.0)
    assert [graphs.graph_batch(b) for b in (0.5, 3, 128, 129)] == [1.0, 4.0, 128.0, 129]


def test_the_step_rules_leave_the_analytic_answer_alone_and_slow_the_run():
    """Whole prompts and padding shape only the event model's steps; with them, an offline run of the same
    requests takes longer (padding is work; a whole prompt waits for room)."""
    free = replace(SPEC, prefill_tokens=2048)
    ruled = replace(free, chunked_prefill=False, graph_batches=PERF_OVERVIEW_GRAPH_BATCHES)
    assert serve(ruled, None, "both") == serve(free, None, "both")
    free, slowed = (simulate_offline(s, RATES, 400, "1024", "1024") for s in (free, ruled))
    assert slowed["makespan_s"] > free["makespan_s"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"graph_batches": (4, 2)}, "must be increasing batch sizes"),
        ({"graph_batches": (0, 2)}, "must be increasing batch sizes"),
        ({"chunked_prefill": "no"}, "must be true or false"),
    ],
)
def test_bad_step_rules_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message) as err:
        replace(SPEC, **options)
    assert "\n" not in str(err.value)


def test_every_published_trtllm_bench_row_is_run_as_trtllm_bench_set_it_up():
    rows = [r for r in published_serving() if "perf-overview.md" in r["source"]]
    assert len(rows) == 64 and all(r["harness"] == "trtllm-bench" and r["requests"] for r in rows)
    assert all("harness" not in r for r in published_serving() if "perf-overview.md" not in r["source"])


def test_cli_offline_harness(capsys):
    args = ["serve", "--model", "qwen3-30b-a3b", "--gpu", "h100", "--weight-dtype", "fp8", "--context", "2048",
            "--colocated", "--output-tokens", "1024", "--tp", "1", "--ep", "1", "--offline",
            "--requests", "300"]  # fmt: skip
    assert main([*args, "--harness", "trtllm-bench", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["offline"]
    spec = deployment("qwen3-30b-a3b", "h100", weight_dtype="fp8", context=2048, colocated=True, output_tokens=1024,
                      tp=1, ep=1)  # fmt: skip
    assert out == simulate_offline(spec, RATES, 300, harness="trtllm-bench")
    assert out["harness"] == "trtllm-bench" and out["step_tokens_per_gpu"] >= 1024
    assert main([*args, "--harness", "trtllm-bench"]) == 0
    assert "harness       trtllm-bench:" in capsys.readouterr().out
    for extra, message in (
        (["--harness", "trtllm-bench", "--prefill-tokens", "4096"], "sets the batch, steps and CUDA graphs: drop"),
        (["--harness", "trtllm-bench", "--no-chunked-prefill"], "drop --no-chunked-prefill"),
    ):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    on_its_own = [a for a in args if a not in ("--offline", "--requests", "300")]
    assert main([*on_its_own, "--harness", "trtllm-bench"]) == 2
    assert "sets up an offline run: add --offline" in capsys.readouterr().err
    assert main([*on_its_own, "--no-chunked-prefill"]) == 2
    assert "shapes the event model's steps" in capsys.readouterr().err
    given = ["--no-chunked-prefill", "--cuda-graph-batches", "1,2,4,8,16,32,64,128", "--prefill-tokens", "2048"]
    assert main([*args, *given, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["offline"]["harness"] is None

"""An offline benchmark in the serving event model: `requests` requests queued at once at one co-located pool
and run to the last token, as `trtllm-bench throughput` runs them (TensorRT-LLM's performance overview: a
fixed number of requests per ISL/OSL, "all requests are queued in rapid succession"; its "Per GPU Output
Throughput" is every output token over the whole run's latency, per GPU).

`trtllm_bench` poses a deployment as `trtllm-bench throughput` configures TensorRT-LLM when the options file
leaves the batch and token limits unset (the performance overview's runs): its heuristic's max_batch_size and
max_num_tokens, whole prompts (chunked prefill off by default) and decode steps padded to the captured CUDA
graphs.

So the answer holds the run's ramp-up (the pool fills prompt by prompt, chunk by chunk, before any sequence
decodes) and its drain (the last sequences decode in an ever smaller batch), which the steady operating
point (`simulator.analytic.colocated`) leaves out; with fewer requests than the KV cache holds, the batch
never reaches the capacity at all. Steps are the co-located pool's (`simulator.events.serving`: admission by
KV room, each step's token budget, decode first then chunks), the router balanced.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import simpy

from simulator import limits
from simulator.analytic.colocated import colocated_numbers, colocated_point
from simulator.analytic.profile import KernelRates
from simulator.analytic.servingmemory import max_sequences_per_gpu
from simulator.events.serving import _check_events, _Colocated, build_setup, request_lengths
from simulator.lengths import Lengths
from simulator.names import HARNESSES
from simulator.servespec import ServeSpec


def simulate_offline(
    s: ServeSpec,
    rates: KernelRates,
    requests: int,
    input_len: Lengths | str | None = None,
    output_len: Lengths | str | None = None,
    seed: int = 0,
    harness: str | None = None,
) -> dict[str, Any]:
    """`requests` requests at t = 0 through the co-located pool of `s`, to the last token (JSON-ready); lengths
    as `request_lengths` (fixed lengths draw nothing: the same answer for any seed). `harness` "trtllm-bench":
    the pool as that tool configures it for these requests (`trtllm_bench`)."""
    if harness not in (None, *HARNESSES):
        raise ValueError(f"harness={harness!r}; use one of {', '.join(HARNESSES)}")
    if not s.colocated:
        raise ValueError("an offline run queues every request at one co-located pool: add --colocated")
    if not (isinstance(requests, int) and 1 <= requests <= limits.MAX_SERVE_REQUESTS):
        raise ValueError(f"requests={requests!r} must be from 1 to {limits.MAX_SERVE_REQUESTS:,}")
    if not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    inputs, outputs = request_lengths(s, input_len, output_len)
    rng = np.random.default_rng(seed)
    prompts, outs = inputs.sample(rng, requests), outputs.sample(rng, requests)
    run = s if harness is None else trtllm_bench(s, float(prompts.mean()), float(outs.mean()), int(prompts.max()))
    setup = build_setup(run, rates, prompts, outs, None)
    _check_events(setup, np.zeros(1), prompts, outs, 0)
    env = simpy.Environment()
    pool = _Colocated(env, setup, rng, np.zeros(requests), prompts, outs)
    env.process(pool.pool())
    env.run()
    makespan = float(np.nanmax(pool.finish))
    gpus = setup.decode_units * run.tp
    steps = np.array(pool.steps).reshape(-1, 7)
    busy = float(steps[:, 1].sum())
    batch = float((steps[:, 2] * steps[:, 1]).sum() / busy / gpus) if busy else 0.0
    ttft = pool.ready
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(outs > 1, (pool.finish - pool.ready) / (outs - 1), np.nan)
    steady = colocated_numbers(s, rates, colocated_point(s, rates, max_sequences_per_gpu(s))[0])
    return {
        "offline": True,
        "requests": requests,
        "input_len": inputs.text,
        "output_len": outputs.text,
        "seed": seed,
        "gpus": gpus,
        "makespan_s": makespan,
        "output_tokens_per_s_per_gpu": float(outs.sum()) / makespan / gpus,
        "input_tokens_per_s_per_gpu": float(prompts.sum()) / makespan / gpus,
        "harness": harness,
        "max_batch_per_gpu": run.batch,  # None: the KV cache alone limits the batch
        "step_tokens_per_gpu": run.prefill_tokens,  # None: the steady operating point's step
        "mean_batch_per_gpu": batch,
        "steady_batch_per_gpu": float(steady["batch_per_gpu"]),
        "steady_output_tokens_per_s_per_gpu": float(steady["output_tokens_per_s_per_gpu"]),
        "mean_ttft_s": float(np.nanmean(ttft)),
        "mean_tpot_s": float(np.nanmean(tpot)) if np.isfinite(tpot).any() else None,
    }


# The performance overview's llm_options for every model (NVIDIA/TensorRT-LLM docs/source/developer-guide/
# perf-overview.md): cuda_graph_config enable_padding true, these batch sizes.
PERF_OVERVIEW_GRAPH_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192)
# What the LLM API defaults to, which trtllm-bench keeps for a quantization its heuristic was not tuned on
# (tensorrt_llm/bench/build/build.py: TUNED_QUANTS are NVFP4, FP8, FP8 block scales and none; MXFP4 is not).
UNTUNED_LIMITS = (2048, 8192)


def trtllm_bench_limits(requests: float, input_len: float, output_len: float) -> tuple[int, int]:
    """trtllm-bench's max_batch_size and max_num_tokens for `requests` sequences the KV cache holds (one instance,
    no pipeline stages): NVIDIA/TensorRT-LLM tensorrt_llm/bench/build/tuning.py `finetune_setting`, rounded up
    ("slightly optimistic") in steps that grow with the size."""
    raw_bs = min(requests, 4096)
    raw_tokens = min(raw_bs * (1 + input_len / output_len), 32768)
    batch = max(64, _up(raw_bs, 32)) if raw_bs < 256 else _up(raw_bs, 128 if raw_bs < 1024 else 256)
    step = 512 if raw_tokens < 8192 else 1024
    tokens = max(2048, _up(raw_tokens, 256)) if raw_tokens < 4096 else _up(raw_tokens, step)
    return batch, tokens


def _up(x: float, step: int) -> int:
    """`x` rounded up to a multiple of `step`."""
    return step * math.ceil(x / step)


def trtllm_bench(s: ServeSpec, input_len: float, output_len: float, longest_input: int) -> ServeSpec:
    """`s` as trtllm-bench runs requests of these mean lengths: the heuristic's limits on the sequences v3sim's KV
    cache holds per instance (trtllm-bench sizes the cache from the weights and the GPU's memory likewise) or the
    API's defaults for an MXFP4 checkpoint (fp4 weights under wider activations); chunked prefill off, so
    max_num_tokens is raised to hold the longest prompt and a full batch of decode tokens
    (tensorrt_llm/bench/benchmark/utils/general.py); decode steps padded to the performance overview's CUDA
    graphs. The heuristic sizes one instance, the GPUs of trtllm-bench's `--tp` (a DEPn layout runs tp_size n with
    attention data-parallel: TensorRT-LLM's performance overview passes `--tp $tp_size --ep $ep_size`), and its
    limits are each scheduler's: one per GPU under attention DP (max_batch_size is per rank: the R1 guide's 384 per
    rank on 8 GPUs is its batch of 3,072), one per instance under TP, split over its GPUs as v3sim counts them."""
    attention_dp = s.tp == 1 and s.ep > 1
    ranks = 1 if attention_dp else s.tp  # the GPUs one scheduler's limits span
    per_gpu = max_sequences_per_gpu(s)
    held = per_gpu * (s.ep if attention_dp else s.tp)
    mxfp4 = s.weight_dtype == "fp4" and s.activation_dtype is not None
    batch, tokens = UNTUNED_LIMITS if mxfp4 else trtllm_bench_limits(held, input_len, output_len)
    tokens = max(tokens, longest_input + batch)
    return replace(
        s,
        batch=batch // ranks if batch < per_gpu * ranks else None,
        prefill_tokens=math.ceil(tokens / ranks),
        chunked_prefill=False,
        graph_batches=PERF_OVERVIEW_GRAPH_BATCHES,
    )

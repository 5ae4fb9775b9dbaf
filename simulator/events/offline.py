"""An offline benchmark in the serving event model: `requests` requests queued at once at one co-located pool
and run to the last token, as `trtllm-bench throughput` runs them (TensorRT-LLM's performance overview: a
fixed number of requests per ISL/OSL, "all requests are queued in rapid succession"; its "Per GPU Output
Throughput" is every output token over the whole run's latency, per GPU).

So the answer holds the run's ramp-up (the pool fills prompt by prompt, chunk by chunk, before any sequence
decodes) and its drain (the last sequences decode in an ever smaller batch), which the steady operating
point (`simulator.analytic.colocated`) leaves out; with fewer requests than the KV cache holds, the batch
never reaches the capacity at all. Steps are the co-located pool's (`simulator.events.serving`: admission by
KV room, each step's token budget, decode first then chunks), the router balanced.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from simulator import limits
from simulator.analytic.colocated import colocated_numbers, colocated_point
from simulator.analytic.profile import KernelRates
from simulator.analytic.servingmemory import max_sequences_per_gpu
from simulator.events.serving import _check_events, _Colocated, build_setup, request_lengths
from simulator.lengths import Lengths
from simulator.servespec import ServeSpec


def simulate_offline(
    s: ServeSpec,
    rates: KernelRates,
    requests: int,
    input_len: Lengths | str | None = None,
    output_len: Lengths | str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """`requests` requests at t = 0 through the co-located pool of `s`, to the last token (JSON-ready); lengths
    as `request_lengths` (fixed lengths draw nothing: the same answer for any seed)."""
    if not s.colocated:
        raise ValueError("an offline run queues every request at one co-located pool: add --colocated")
    if not (isinstance(requests, int) and 1 <= requests <= limits.MAX_SERVE_REQUESTS):
        raise ValueError(f"requests={requests!r} must be from 1 to {limits.MAX_SERVE_REQUESTS:,}")
    if not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    inputs, outputs = request_lengths(s, input_len, output_len)
    rng = np.random.default_rng(seed)
    prompts, outs = inputs.sample(rng, requests), outputs.sample(rng, requests)
    setup = build_setup(s, rates, prompts, outs, None)
    _check_events(setup, np.zeros(1), prompts, outs, 0)
    env = simpy.Environment()
    pool = _Colocated(env, setup, rng, np.zeros(requests), prompts, outs)
    env.process(pool.pool())
    env.run()
    makespan = float(np.nanmax(pool.finish))
    gpus = setup.decode_units * s.tp
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
        "mean_batch_per_gpu": batch,
        "steady_batch_per_gpu": float(steady["batch_per_gpu"]),
        "steady_output_tokens_per_s_per_gpu": float(steady["output_tokens_per_s_per_gpu"]),
        "mean_ttft_s": float(np.nanmean(ttft)),
        "mean_tpot_s": float(np.nanmean(tpot)) if np.isfinite(tpot).any() else None,
    }

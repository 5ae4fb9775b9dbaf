"""The statistics of a serving event-model run (`simulator.events.serving`): which requests are measured, their
latencies and goodput, and the window's rates beside the analytic operating point.

Warm-up: the statistics are over the requests arriving after the first 20% of arrivals and after the first
request's life twice over (the batch fills over about one life, its sequences turn over in the next), and
before the last 10% (the system draining once arrivals stop); rates over the time between those arrivals.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.analytic.colocated import colocated_numbers, colocated_point
from simulator.analytic.profile import KernelRates
from simulator.analytic.serving import decode, decode_point
from simulator.analytic.servingmemory import max_sequences_per_gpu
from simulator.servespec import ServeSpec

if TYPE_CHECKING:  # the run's state, only named here
    from simulator.events.serving import Setup, _Serving

WARMUP_SHARE = 0.2  # of arrivals, left out of the statistics: the system filling
WARMUP_LIVES = 2  # and the first request's lives: one to fill the batch, one for its sequences to turn over
COOLDOWN_SHARE = 0.1  # of arrivals, left out at the end: the system draining
MIN_MEASURED = 10  # requests after the warm-up, or the run is refused


def _percentiles(x: np.ndarray, qs: tuple[int, ...] = (50, 90, 99)) -> dict[str, float] | None:
    x = x[np.isfinite(x)]
    return {f"p{q}": float(np.percentile(x, q)) for q in qs} if len(x) else None


def summary(s: ServeSpec, rates: KernelRates, setup: Setup, sim: _Serving, instances: int) -> dict[str, Any]:
    """The measured requests' latencies and the window's rates (module docstring: which are measured)."""
    n = len(sim.arrival_s)
    lo, hi = _measured(sim)
    t0, t1 = float(sim.arrival_s[lo]), float(sim.arrival_s[hi - 1])
    window = slice(lo, hi)
    arrival, out = sim.arrival_s[window], sim.outputs[window]
    ttft = sim.ready[window] - arrival
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(out > 1, (sim.finish[window] - sim.ready[window]) / (out - 1), np.nan)
    queued = (sim.prefill_start[window] - arrival) + (sim.admitted[window] - sim.prefill_end[window])
    steps = np.array(sim.steps).reshape(-1, 7)
    steps = steps[(steps[:, 0] >= t0) & (steps[:, 0] < t1)]
    forwards = np.array(sim.forwards).reshape(-1, 3)
    forwards = forwards[(forwards[:, 0] >= t0) & (forwards[:, 0] < t1)]
    span = t1 - t0  # > 0: at least MIN_REQUESTS arrivals
    decode_gpus, prefill_gpus = setup.decode_units * setup.spec.tp, instances * setup.prefill_units * setup.spec.tp
    input_gpus = prefill_gpus or decode_gpus  # co-located: the pool's GPUs take the prompts
    busy = steps[:, 1].sum()

    def mean(col: int) -> float | None:  # over the window's steps, weighted by their seconds
        return float((steps[:, col] * steps[:, 1]).sum() / busy) if busy else None

    per_gpu = float(steps[:, 6].sum() / span / decode_gpus)
    batch, busiest, ctx = mean(2), mean(3), mean(4)
    out_mean = float(sim.outputs.mean())
    result = {
        "requests": n,
        "measured_requests": hi - lo,
        "warmup_s": t0,
        "warmup": f"arrivals before {t0:,.1f} s (the first {WARMUP_SHARE:.0%}, and {WARMUP_LIVES} x the first "
        f"request's life) and the last {COOLDOWN_SHARE:.0%} left out",
        "completed_qps": float(((sim.finish >= t0) & (sim.finish < t1)).sum() / span),
        "analytic_capacity_qps": decode_capacity_qps(s, rates, out_mean),
        "prefill_instances": instances,
        "prefill_gpus": prefill_gpus,
        "decode_gpus": decode_gpus,
        "mean_input_tokens": float(sim.prompts.mean()),
        "mean_output_tokens": out_mean,
        "ttft_s": _percentiles(ttft),
        "tpot_s": _percentiles(tpot),
        "queueing_s": _percentiles(queued, (50, 99)),
        "mean_decode_batch_per_gpu": None if batch is None else batch / decode_gpus,
        "mean_busiest_batch_per_gpu": busiest,
        "mean_kv_tokens": ctx,
        "mean_expert_imbalance": mean(5),
        "analytic_tpot_s": None if busiest is None else _analytic_tpot(s, rates, busiest, ctx),
        "output_tokens_per_s_per_gpu": per_gpu,
        "input_tokens_per_s_per_gpu": float(forwards[:, 2].sum() / span / input_gpus),
        "decode_steps": len(sim.steps),
        "prefill_forwards": len(sim.forwards),
        "simulated_s": float(np.nanmax(sim.finish)),
    }
    return result | _goodput(s, ttft, tpot, out, per_gpu)


def decode_capacity_qps(s: ServeSpec, rates: KernelRates, mean_output_tokens: float) -> float:
    """Requests/s one decode instance completes at the analytic operating point (the KV-capacity batch, or
    the TPOT target's, or the given one): its output tokens/s over the tokens a request decodes (the
    first comes from prefill)."""
    gpus = max(s.ep, s.tp)
    if s.colocated:  # the pool's co-located operating point, its steps carrying the prompts too
        per_gpu = colocated_numbers(s, rates, colocated_point(s, rates, max_sequences_per_gpu(s))[0])
        return per_gpu["output_tokens_per_s_per_gpu"] * gpus / max(1.0, mean_output_tokens - 1)
    step = decode_point(s, rates, max_sequences_per_gpu(s)).phase
    return step.tokens / step.step_s * gpus / max(1.0, mean_output_tokens - 1)


def _measured(sim: _Serving) -> tuple[int, int]:
    """The measured requests' index range: those arriving after the warm-up (the first WARMUP_SHARE of
    arrivals, and at least WARMUP_LIVES x the first request's life: the batch fills over about one life and
    its sequences turn over in the next) and before the last COOLDOWN_SHARE of arrivals (the system draining)."""
    n = len(sim.arrival_s)
    start_s = max(float(sim.arrival_s[int(n * WARMUP_SHARE)]), WARMUP_LIVES * float(sim.finish[0]))
    lo, hi = int(np.searchsorted(sim.arrival_s, start_s)), n - int(n * COOLDOWN_SHARE)
    if hi - lo < MIN_MEASURED:
        rate_qps = n / float(sim.arrival_s[-1])
        more = math.ceil(2 * rate_qps * start_s / (1 - COOLDOWN_SHARE))
        raise ValueError(
            f"{n:,} requests arrive in {sim.arrival_s[-1]:,.1f} s, within the warm-up ({start_s:,.1f} s: "
            f"{WARMUP_LIVES} x the first request's life); give more --requests (about {max(more, 2 * n):,}) "
            f"or a higher --rate"
        )
    return lo, hi


def _analytic_tpot(s: ServeSpec, rates: KernelRates, batch: float, ctx: float | None) -> float:
    """The analytic time per output token at this batch per GPU and mean KV length, a balanced router."""
    if s.colocated:  # with its steady share of prompt chunks (`colocated_numbers`), at the deployment's context
        return colocated_numbers(s, rates, batch)["tpot_s"]
    at = replace(s, context=max(1, round(ctx or s.context)), output_tokens=None)
    return decode(at, rates, batch, 1.0).step_s / s.tokens_per_step


def _goodput(s: ServeSpec, ttft: np.ndarray, tpot: np.ndarray, out: np.ndarray, per_gpu: float) -> dict:
    """The share of measured requests meeting the given targets (TTFT and TPOT) and their output tokens/s per
    decode GPU; None where no target is given."""
    if s.ttft_ms is None and s.tpot_ms is None:
        return {"slo": None, "goodput": None, "goodput_output_tokens_per_s_per_gpu": None}
    met = np.ones(len(ttft), dtype=bool)
    if s.ttft_ms is not None:
        met &= ttft <= s.ttft_ms / 1e3
    if s.tpot_ms is not None:
        met &= ~(tpot > s.tpot_ms / 1e3)  # a one-token request has no TPOT to miss
    share = float(out[met].sum() / out.sum())
    slo = {
        "ttft_s": None if s.ttft_ms is None else s.ttft_ms / 1e3,
        "tpot_s": None if s.tpot_ms is None else s.tpot_ms / 1e3,
    }
    return {
        "slo": slo,
        "goodput": float(met.mean()),
        "goodput_output_tokens_per_s_per_gpu": per_gpu * share,
    }

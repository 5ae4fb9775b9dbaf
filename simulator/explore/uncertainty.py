"""A P10-P90 band on GPU-hours, step time and cost from the spread of the kernel sources (issue 20).

Two spreads, both from kernel-level sources, never from an end-to-end figure:

- **Between sources.** The same kernel class has more than one source, and they disagree: the published
  microbenchmarks (DeepGEMM, FlashAttention-3, our fused element-wise kernels) against the rates DeepSeek's V3
  training trace ran the same classes at (the `trace-deepseek-v3-train` profile: its weight-gradient GEMMs
  1.5x slower, its casts and norms at a third of the HBM rate). Which one a run gets depends on its software,
  which v3sim cannot see, and it moves every class together: one shared draw t per sample, each class's rates
  (and element-wise shares) at exp(t x ln(other / own)), t normal with P10 at 0 (the run's own profile) and
  P90 at 1 (the other source). The band therefore runs from the profile the headline prices to the other one.
- **Within a source.** Each fitted class's relative RMS error: how far the source's own kernels (DeepGEMM's
  shapes, FlashAttention-3's lengths) scatter around its one rate, drawn independently by class.

The run is estimated at each draw with its stage split held (the split is a choice, not a source). Network
rates do not move. The speed-of-light profile is a bound, not a source: it gets the residual spread only.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import replace
from typing import Any

import numpy as np

from hwmodels.kernels import elementwise_rates
from simulator.analytic.profile import KernelRates, load_profile, rates_for, refusal
from simulator.analytic.report import estimate
from simulator.analytic.training import resolved
from simulator.runspec import RunSpec

DRAWS = 64
QUANTILES = (0.1, 0.5, 0.9)
TRACE_SOURCE = "trace-deepseek-v3-train"  # a production stack's in-situ kernel rates (V3's training trace)
Z90 = 1.2815515655446004  # the standard normal's 90th percentile


def source_gaps(rates: KernelRates, other: KernelRates) -> tuple[dict[str, float], dict[str, float]]:
    """ln(other / own) of each kernel class's rate, and of each element-wise share, where the two differ."""
    fits = {}
    for cls, own in rates.fits.items():
        if cls in other.fits:
            theirs = other.fits[cls]
            pair = (
                (theirs.flop_per_s, own.flop_per_s)
                if math.isfinite(own.flop_per_s)
                else (theirs.bytes_per_s, own.bytes_per_s)
            )
            if all(math.isfinite(x) and x > 0 for x in pair) and pair[0] != pair[1]:
                fits[cls] = math.log(pair[0] / pair[1])
    table = elementwise_rates().share
    shares = {}
    for cls, base in table.items():
        own_share, their_share = rates.elementwise_share.get(cls, base), other.elementwise_share.get(cls, base)
        if own_share != their_share:
            shares[cls] = math.log(their_share / own_share)
    return fits, shares


def _stream(seed: int, cls: str) -> np.random.Generator:
    """The random stream of one kernel class's scatter under `seed`."""
    return np.random.default_rng([seed, zlib.crc32(cls.encode())])


def uncertainty(run: RunSpec, profile: KernelRates | str | None = None, draws: int = DRAWS, seed: int = 0) -> dict:
    """P10 / P50 / P90 of GPU-hours, step seconds and cost over `draws` draws of the kernel rates."""
    gpu = run.node.gpu
    rates = rates_for(profile, gpu)
    fixed = resolved(run, rates)
    other_name = "published" if rates.name == TRACE_SOURCE else TRACE_SOURCE
    # the trace's rates are the H800's: on another die they are refused, and the band is the fits' scatter alone
    other = None if rates.kind == "sol" or refusal(load_profile(TRACE_SOURCE), gpu) else rates_for(other_name, gpu)
    gaps, share_gaps = source_gaps(rates, other) if other else ({}, {})
    base_shares = {cls: rates.elementwise_share.get(cls, s) for cls, s in elementwise_rates().share.items()}
    spread = {cls: fit.rel_rmse for cls, fit in rates.fits.items() if fit.rel_rmse > 0 and fit.samples > 1}
    # one stream for the shared draw and one per class, keyed by its name: a class added to a profile leaves
    # every other class's draws as they were
    shared = np.random.default_rng(seed).normal(0.5, 0.5 / Z90, draws) if other else np.zeros(draws)
    noise = {cls: _stream(seed, cls).normal(0.0, sd, draws) for cls, sd in spread.items()}
    values: dict[str, list[float]] = {"gpu_hours": [], "step_time_s": [], "cost_usd": []}
    for i, t in enumerate(shared):
        fits = dict(rates.fits)
        for cls in [c for c in fits if c in spread or c in gaps]:
            k = math.exp(t * gaps.get(cls, 0.0) + (noise[cls][i] if cls in spread else 0.0))
            fits[cls] = fits[cls].scaled(k, k)
        shares = {cls: min(1.0, base_shares[cls] * math.exp(t * gap)) for cls, gap in share_gaps.items()}
        drawn = replace(rates, fits=fits, elementwise_share={**rates.elementwise_share, **shares})
        report = estimate(fixed, drawn, check_memory=False)
        values["gpu_hours"].append(report.gpu_hours)
        values["step_time_s"].append(report.step_time_s)
        values["cost_usd"].append(report.cost_usd)
    out: dict[str, Any] = {
        name: dict(zip(("p10", "p50", "p90"), np.quantile(v, QUANTILES).tolist(), strict=True))
        for name, v in values.items()
    }
    out |= {
        "draws": draws,
        "seed": seed,
        "spread_by_class": spread,
        "sources": [rates.name, other.name] if other else [rates.name],
        "source_gap_by_class": {**gaps, **{f"elementwise.{c}": g for c, g in share_gaps.items()}},
        "note": (
            f"P10 at {rates.name}'s kernel rates, P90 at {other.name}'s (one shared draw moves every class "
            "between them), plus each fit's residual scatter; network rates fixed"
            if other
            else "each fit's residual scatter only (speed of light is a bound, not a source); network rates fixed"
        ),
    }
    return out

"""A P10-P90 band on GPU-hours, step time and cost from the spread of the kernel sources (issue 20).

Each fitted kernel class of the profile carries its fit's relative RMS error: how far the source's own
kernels (DeepGEMM's shapes, FlashAttention-3's lengths, our H200 timings) scatter around the one rate v3sim
prices them at. A draw scales every class's rates by exp(N(0, rms)), independently by class; the run is
estimated at each draw with its stage split held (the split is a choice, not a source). Classes with one
source figure (the element-wise shares, the memory class) and the
network rates carry no spread here, so the band is a floor on the uncertainty, and says so.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from simulator.analytic.profile import KernelRates, rates_for
from simulator.analytic.report import estimate
from simulator.analytic.training import resolved
from simulator.runspec import RunSpec

DRAWS = 64
QUANTILES = (0.1, 0.5, 0.9)


def uncertainty(run: RunSpec, profile: KernelRates | str | None = None, draws: int = DRAWS, seed: int = 0) -> dict:
    """P10 / P50 / P90 of GPU-hours, step seconds and cost over `draws` draws of the kernel rates."""
    rates = rates_for(profile, run.node.gpu)
    fixed = resolved(run, rates)
    rng = np.random.default_rng(seed)
    spread = {cls: fit.rel_rmse for cls, fit in rates.fits.items() if fit.rel_rmse > 0 and fit.samples > 1}
    values: dict[str, list[float]] = {"gpu_hours": [], "step_time_s": [], "cost_usd": []}
    for _ in range(draws):
        fits = dict(rates.fits)
        for cls, sigma in spread.items():
            k = math.exp(rng.normal(0.0, sigma))
            fits[cls] = fits[cls].scaled(k, k)
        report = estimate(fixed, replace(rates, fits=fits), check_memory=False)
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
        "note": "kernel-source spread only (fit residuals per class); element-wise and network rates fixed",
    }
    return out

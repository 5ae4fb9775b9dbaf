"""Speed of sweeps: points per second, analytic (the sweep's fast path vs estimate() point by point) and
event model (here, and on a local Dask cluster of 1 and 2 workers).

The analytic sweep is a ~100,000-point grid: 108 layouts and networks x 40 token budgets x 24 prices; its
points share one model evaluation per layout (see simulator/explore/sweep.py). One by one is `report.estimate`
on each point, as a loop over the CLI would do it; timed on a seeded sample and quoted per point.
The event sweep runs 8 V3 steps (flow network, expert-load CV 0.3, 4 draws, 8 seeds), the same work per
point wherever it runs. Run: `make bench`.
"""

from __future__ import annotations

import contextlib
import os
import random
import time

from simulator.analytic.report import estimate
from simulator.explore.sweep import run_of, run_sweep
from simulator.explore.sweepspec import points, sweep_from_dict

ANALYTIC = {
    "axes": {
        "gpus": [1024, 2048, 4096],
        "pp": [8, 16],
        "ep": [32, 64, 128],
        "schedule": ["dualpipe", "zb1p", "1f1b"],
        "oversubscription": [1.0, 2.0],
        "tokens": {"start": 0.5e12, "stop": 20e12, "step": 0.5e12},
        "price_per_gpu_hour": {"start": 1.0, "stop": 3.3, "step": 0.1},
    }
}
ONE_BY_ONE_SAMPLE = 300
EVENT = {"engine": "event", "base": {"expert_cv": 0.3, "samples": 4}, "axes": {"seed": list(range(8))}}


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    spec = sweep_from_dict(ANALYTIC)
    rows = []
    frame, fast_s = _timed(lambda: run_sweep(spec, processes=1))
    rows.append(("analytic, sweep fast path, 1 process", len(frame), fast_s))
    _, pool_s = _timed(lambda: run_sweep(spec, processes=2))
    rows.append(("analytic, sweep fast path, 2 processes", len(frame), pool_s))
    sample = random.Random(0).sample(points(spec), ONE_BY_ONE_SAMPLE)

    def one_by_one() -> None:
        for point in sample:
            with contextlib.suppress(ValueError):  # answered: invalid
                estimate(run_of(point), point["profile"])

    _, single_s = _timed(one_by_one)
    rows.append((f"analytic, estimate() one by one ({ONE_BY_ONE_SAMPLE} sampled)", ONE_BY_ONE_SAMPLE, single_s))

    event = sweep_from_dict(EVENT)
    n = event.size
    _, local_s = _timed(lambda: run_sweep(event, processes=1))
    rows.append(("event model (V3, flow network, cv 0.3), this process", n, local_s))
    _, pool_s = _timed(lambda: run_sweep(event, processes=2))
    rows.append(("event model, 2 local processes", n, pool_s))
    for workers in (1, 2):  # `--workers N`: the LocalCluster's start is part of the time
        _, dask_s = _timed(lambda w=workers: run_sweep(event, workers=w))
        rows.append((f"event model, Dask LocalCluster of {workers} worker(s), start included", n, dask_s))

    print(f"cores here: {os.cpu_count()}")
    print("| sweep | points | seconds | points per second |")
    print("| --- | ---: | ---: | ---: |")
    for name, count, seconds in rows:
        print(f"| {name} | {count:,} | {seconds:.2f} | {count / seconds:,.1f} |")


if __name__ == "__main__":
    main()

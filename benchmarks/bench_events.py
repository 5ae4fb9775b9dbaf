"""Speed of the event model: one full V3 training step (2,048 GPUs, PP16, the published batch) per schedule.

Prints a Markdown table: wall seconds per simulated step (median of 5) and simulated ops per second.
Run: `make bench`.
"""

from __future__ import annotations

import statistics
import time

from simulator.profile import rates_for
from simulator.runspec import v3_pretraining
from simulator.simulate import simulate
from simulator.training import resolved

REPEATS = 5


def main() -> None:
    print("| schedule | ops | s per step (median of 5) | ops per second |")
    print("| --- | ---: | ---: | ---: |")
    for schedule in ("dualpipe", "1f1b", "zb1p"):
        run = v3_pretraining(schedule=schedule)
        rates = rates_for("published", run.node.gpu)
        run = resolved(run, rates)  # the stage split is the analytic model's work, not the simulation's
        samples, ops = [], 0
        for _ in range(REPEATS):
            start = time.perf_counter()
            ops = len(simulate(run, rates).timeline.events)
            samples.append(time.perf_counter() - start)
        wall = statistics.median(samples)
        print(f"| {schedule} | {ops:,} | {wall:.3f} | {ops / wall:,.0f} |")


if __name__ == "__main__":
    main()

"""Speed of the workload counts: one `v3sim model` summary and one training-memory breakdown per preset.

Prints a Markdown table (median of repeats, microseconds). Run: `make bench`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from simulator.analytic.summary import model_summary
from workloads.layout import ParallelLayout
from workloads.memory import training_memory_by_stage
from workloads.registry import load_model, model_slugs

REPEATS = 200


def median_us(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of `fn` in microseconds, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    print("| model | model summary (µs) | training memory, 16 stages (µs) |")
    print("| --- | ---: | ---: |")
    for slug in model_slugs():
        spec = load_model(slug)
        layout = ParallelLayout(pp=min(16, spec.num_hidden_layers))
        summary = median_us(lambda spec=spec: model_summary(spec, 4096))
        mem = median_us(lambda spec=spec, layout=layout: training_memory_by_stage(spec, layout, 4096))
        print(f"| {slug} | {summary:.0f} | {mem:.0f} |")


if __name__ == "__main__":
    main()

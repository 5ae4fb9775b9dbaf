"""Speed of the analytic training model: estimates per second, one call and a batch of 10,000 layouts.

The single call is the V3 default (stage split balanced each time). The batch walks a grid of layouts
(GPUs, PP, EP, schedule, micro-batch, precision, topology taper) around it, skipping the ones the RunSpec
rejects; invalid and out-of-memory layouts count as evaluated (they are answered, with an error).
Run: `make bench`.
"""

from __future__ import annotations

import itertools
import statistics
import time

from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.runspec import v3_pretraining

REPEATS = 20
BATCH = 10_000


def grid():
    """Layouts around the V3 default, cycled until BATCH of them have been produced."""
    axes = itertools.product(
        (1024, 2048, 4096),  # gpus
        (8, 16, 32),  # pp
        (32, 64, 128),  # ep
        ("1f1b", "zb1p", "dualpipe", "interleaved"),
        (1, 2),  # micro-batch
        ("fp8", "bf16"),
        (1.0, 2.0, 3.0),  # oversubscription
        (1.0, 1.1, 1.2, 1.3),  # expert imbalance
    )
    yield from itertools.islice(itertools.cycle(axes), BATCH)


def main() -> None:
    profile = rates_for("published", v3_pretraining().node.gpu)
    run = v3_pretraining()
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        estimate(run, profile)
        samples.append(time.perf_counter() - start)
    single_s = statistics.median(samples)

    start = time.perf_counter()
    answered = errors = 0
    for gpus, pp, ep, schedule, mb, precision, over, imbalance in grid():
        try:
            spec = run.with_(
                gpus=gpus,
                pp=pp,
                ep=ep,
                schedule=schedule,
                virtual_stages=2 if schedule == "interleaved" else 1,
                micro_batch=mb,
                precision=precision,
                topology="fat-tree-2" if over > 1 else "multi-plane",
                oversubscription=over,
                expert_imbalance=imbalance,
            )
            estimate(spec, profile)
        except ValueError:
            errors += 1
        answered += 1
    batch_s = time.perf_counter() - start
    print("| case | calls | seconds | estimates per second |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| V3 default, one call (median of {REPEATS}) | 1 | {single_s:.4f} | {1 / single_s:,.0f} |")
    print(
        f"| batch of layouts ({answered - errors:,} estimated, {errors:,} rejected) | {answered:,} |"
        f" {batch_s:.2f} | {answered / batch_s:,.0f} |"
    )


if __name__ == "__main__":
    main()

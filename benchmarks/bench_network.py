"""Speed of the network models: a uniform all-to-all of 256 to 8,192 GPUs on the multi-plane fat tree, flow
by flow (max-min shared to completion) and by the fast model (the busiest link of the same routed legs).

Each row builds the fabric once, then times the whole collective (legs in closed form with DeepEP-style
NVLink forwarding, routed with hash ECMP). The flow model stops at 4,096 GPUs here (8,192 took 137 s, see
docs/speed.md). Prints a Markdown table of the median of a few repeats. Run: `make bench` (it writes
the table into docs/speed.md), or `python -m benchmarks.bench_network [--write docs/speed.md]`.
"""

from __future__ import annotations

import statistics
import time

from benchmarks.tables import publish
from hwmodels.cost import topology_metrics
from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import KINDS, design_topology
from simulator.network.collectives import all_to_all, all_to_all_transfers, fast_s

REPEATS = 3
BYTES_PER_GPU = 256e6


def main() -> None:
    node, switch = load_node("h800-ib"), load_switch("ib-ndr-64")
    lines = ["| GPUs | legs | fabric build (s) | flow model (s) | fast model (s) | simulated time (ms) | goal |"]
    lines.append("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for gpus in (256, 1024, 2048, 4096, 8192):
        start = time.perf_counter()
        fabric = build_fabric(design_topology("multi-plane", 64, gpus), node, switch)
        build_s = time.perf_counter() - start
        repeats = REPEATS if gpus <= 2048 else 1
        flow_s = None
        if gpus <= 4096:
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                all_to_all(fabric, gpus, BYTES_PER_GPU)
                samples.append(time.perf_counter() - start)
            flow_s = statistics.median(samples)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            legs = all_to_all_transfers(fabric, gpus, BYTES_PER_GPU)
            fast = fast_s(fabric, *legs)
            samples.append(time.perf_counter() - start)
        shown = f"{flow_s:.3f}" if flow_s is not None else "-"
        goal = "<= 10 s, <= 2 GB" if gpus == 8192 else ""
        lines.append(
            f"| {gpus:,} | {len(legs[0]):,} | {build_s:.3f} | {shown} | {statistics.median(samples):.3f} |"
            f" {fast * 1e3:.3f} | {goal} |"
        )
    publish("bench all-to-all", lines)
    start = time.perf_counter()
    for _ in range(100):
        for kind in KINDS:
            topology_metrics(design_topology(kind), switch)
    print(f"\ntopology metrics (closed form): {(time.perf_counter() - start) / 600 * 1e6:.0f} us per topology")


if __name__ == "__main__":
    main()

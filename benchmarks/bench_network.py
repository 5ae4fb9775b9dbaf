"""Speed of the network model: the flow-level all-to-all of 256, 1,024 and 2,048 GPUs on the multi-plane fat tree.

Each row builds the fabric once, then times the whole collective (flows built with DeepEP-style NVLink
forwarding, routed with hash ECMP, max-min shared to completion). Prints a Markdown table of the median of a
few repeats. Run: `make bench`.
"""

from __future__ import annotations

import statistics
import time

from hwmodels.cost import topology_metrics
from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import KINDS, design_topology
from simulator.network.collectives import all_to_all

REPEATS = 3
BYTES_PER_GPU = 256e6


def main() -> None:
    node, switch = load_node("h800-ib"), load_switch("ib-ndr-64")
    print("| GPUs | flows | fabric build (s) | all-to-all (s per collective) | simulated time (ms) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for gpus in (256, 1024, 2048):
        start = time.perf_counter()
        fabric = build_fabric(design_topology("multi-plane", 64, gpus), node, switch)
        build_s = time.perf_counter() - start
        samples = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            result = all_to_all(fabric, gpus, BYTES_PER_GPU)
            samples.append(time.perf_counter() - start)
        print(
            f"| {gpus:,} | {result.flows:,} | {build_s:.3f} | {statistics.median(samples):.3f} |"
            f" {result.time_s * 1e3:.3f} |"
        )
    start = time.perf_counter()
    for _ in range(100):
        for kind in KINDS:
            topology_metrics(design_topology(kind), switch)
    print(f"\ntopology metrics (closed form): {(time.perf_counter() - start) / 600 * 1e6:.0f} us per topology")


if __name__ == "__main__":
    main()

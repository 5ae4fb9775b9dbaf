"""Speed of the network models: a uniform all-to-all of 256 to 16,384 GPUs on the multi-plane fat tree, flow
by flow (max-min shared to completion) and by the fast model (the busiest link of the same routed legs, built
and routed a block of sending GPUs at a time: `fast_all_to_all_s`).

Each row builds the fabric once, then times the whole collective (legs in closed form with DeepEP-style
NVLink forwarding, routed with hash ECMP). The flow model stops at 4,096 GPUs here (8,192 took 137 s, see
docs/speed.md). Peak memory of the fast model at 8,192 and 16,384 GPUs is measured in a fresh process each
(`ru_maxrss`). Prints a Markdown table of the median of a few repeats. Run: `make bench` (it writes
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
from simulator.network.collectives import all_to_all, fast_all_to_all_s

REPEATS = 3
BYTES_PER_GPU = 256e6


def fresh_peak_gb(gpus: int) -> float:
    """Peak resident memory of a fresh process that builds the fabric and runs the fast all-to-all."""
    import subprocess
    import sys

    code = (
        "import resource\n"
        "from hwmodels.registry import load_node, load_switch\n"
        "from hwmodels.routing import build_fabric\n"
        "from hwmodels.topology import design_topology\n"
        "from simulator.network.collectives import fast_all_to_all_s\n"
        f"fabric = build_fabric(design_topology('multi-plane', 64, {gpus}), load_node('h800-ib'),"
        " load_switch('ib-ndr-64'))\n"
        f"fast_all_to_all_s(fabric, {gpus}, {BYTES_PER_GPU})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def main() -> None:
    node, switch = load_node("h800-ib"), load_switch("ib-ndr-64")
    lines = ["| GPUs | legs | fabric build (s) | flow model (s) | fast model (s) | fast model peak (GB) |"]
    lines[0] += " simulated time (ms) | goal |"
    lines.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for gpus in (256, 1024, 2048, 4096, 8192, 16384):
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
            fast = fast_all_to_all_s(fabric, gpus, BYTES_PER_GPU)
            samples.append(time.perf_counter() - start)
        shown = f"{flow_s:.3f}" if flow_s is not None else "-"
        peak = f"{fresh_peak_gb(gpus):.2f}" if gpus >= 8192 else "-"
        goal = {8192: "<= 10 s, <= 2 GB", 16384: "runs here"}.get(gpus, "")
        legs = gpus * (gpus // node.gpus_per_node + node.gpus_per_node - 2)
        lines.append(
            f"| {gpus:,} | {legs:,} | {build_s:.3f} | {shown} | {statistics.median(samples):.3f} | {peak} |"
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

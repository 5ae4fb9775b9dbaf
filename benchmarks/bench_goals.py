"""Issue 22's speed goals, each figure measured beside its goal in one run, with llm-analysis's `train()` on the
same dense case when it is installed (`pip install -e .[bench]`). `make bench` writes the table into the README
(`python -m benchmarks.bench_goals [--write README.md]`); the other benchmarks hold the detail (docs/speed.md).

Whole commands (start-up, best-layout, the event model) run in fresh processes, as a user runs them: start-up
twice, with the fabric-factor cache empty and then filled (`V3SIM_CACHE_DIR`, a temporary folder); the rest
with the cache off, so every fabric is routed. Peak memory is the fresh process's `ru_maxrss`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks.bench_training import DENSE, best_s, distinct_sweeps, llm_analysis_s
from benchmarks.tables import publish
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.runspec import build_run, v3_pretraining


def command_s(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak GB of `v3sim ARGS` in a fresh interpreter (output discarded)."""
    code = (
        "import contextlib, io, resource, sys, time\n"
        "start = time.perf_counter()\n"
        "from simulator.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main({args!r})\n"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - start  # interpreter start included, as a user waits for it
    return wall, int(out.stdout.split()[-1]) * 1024 / 1e9


def python_s(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(seconds the snippet reports, peak GB) of `code` in a fresh interpreter; it prints its seconds last."""
    code += "\nimport resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    seconds, kib = out.stdout.split()[-2:]
    return float(seconds), int(kib) * 1024 / 1e9


FAST_A2A = """
import time
from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import design_topology
from simulator.network.collectives import fast_all_to_all_s
fabric = build_fabric(design_topology("multi-plane", 64, {gpus}), load_node("h800-ib"), load_switch("ib-ndr-64"))
start = time.perf_counter()
fast_all_to_all_s(fabric, {gpus}, 256e6)
print(time.perf_counter() - start)
"""

BEST_LAYOUT = """
import time
from simulator.explore.bestlayout import best_layouts
start = time.perf_counter()
best_layouts({{"gpus": {gpus}}}, processes={processes})
print(time.perf_counter() - start)
"""


def main() -> None:
    off = {**os.environ, "V3SIM_CACHE_DIR": "off"}
    rows: list[tuple[str, str, str]] = []
    sweeps = distinct_sweeps()  # first: nothing priced yet in this process (and the cache off)

    run = v3_pretraining()
    profile = rates_for("published", run.node.gpu)
    estimate(run, profile)
    rows.append(("V3 estimate, repeated", f"{best_s(lambda _: estimate(run, profile)) * 1e3:.2f} ms", "1 ms"))
    fresh = best_s(lambda i: estimate(run.with_(expert_imbalance=1 + (i + 1) * 1e-9), profile))
    rows.append(("V3 estimate, a new configuration each call", f"{fresh * 1e3:.2f} ms", "1 ms"))
    dense = build_run(DENSE)
    h100 = rates_for("published", dense.node.gpu)
    estimate(dense, h100)
    dense_s = best_s(lambda i: estimate(dense.with_(comm_sms=i + 1), h100))
    other = llm_analysis_s()
    shown = f"{other * 1e3:.2f} ms" if other is not None else "not installed"
    rows.append(
        ("dense 8B on 64 H100, a new configuration each call", f"{dense_s * 1e3:.2f} ms", f"llm-analysis: {shown}")
    )
    for (_, points, _, seconds), when in zip(sweeps, ("a fresh process", "again"), strict=True):
        name = f"sweep array pass, distinct configurations per second, {when} ({points:,}: 36 layouts x 1,501 batches)"
        rows.append((name, f"{points / seconds:,.0f}", "50,000"))

    for gpus, goal in ((8192, "10 s, 2 GB"), (16384, "runs here")):
        seconds, peak = python_s(FAST_A2A.format(gpus=gpus), off)
        rows.append((f"all-to-all, fast model, {gpus:,} GPUs", f"{seconds:.1f} s, {peak:.2f} GB", goal))
    wall, _ = command_s(["simulate", "--topology", "fat-tree-2", "--oversubscription", "3", "--network", "flow"], off)
    rows.append(("event model, V3 on the 3:1 two-layer fat tree (whole command)", f"{wall:.1f} s", "10 s (5 s)"))
    for gpus, goal in ((2048, "1 s"), (16384, "10 s")):
        for processes, how in ((1, "one process"), (None, f"one process per core ({os.cpu_count()}, the default)")):
            seconds, _ = python_s(BEST_LAYOUT.format(gpus=gpus, processes=processes), off)
            rows.append((f"best-layout search, {gpus:,} GPUs, {how}", f"{seconds:.2f} s", goal))

    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "V3SIM_CACHE_DIR": cache}
        for args, goal in ((["kv", "deepseek-v3"], "0.3 s"), (["serve"], "0.3 s"), (["train"], "0.7 s")):
            first_s, _ = command_s(args, env)
            cached_s, _ = command_s(args, env)
            name = f"start-up, `v3sim {' '.join(args)}` (whole command)"
            rows.append((name, f"{first_s:.2f} s first, {cached_s:.2f} s after", goal))

    lines = ["| figure | measured | goal |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {value} | {goal} |" for name, value, goal in rows]
    lines.append("")
    lines.append(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}.")
    publish("bench goals", lines)


if __name__ == "__main__":
    main()

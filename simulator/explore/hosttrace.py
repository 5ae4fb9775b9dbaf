"""The host (CPU) side of a profiler trace: how long the framework took to launch each annotated span's kernels.

An eager PyTorch training step launches every kernel from Python; when the GPU's kernels are shorter than the
host takes to launch them, the GPU waits (`simulator.analytic.host`). DeepSeek's V3 training trace annotates
each span it runs with a name ending in its phase, `attn(F)`, `mlp(B)`, `mlp(W)`. A span's host time is its wall
time on the main thread (Python between the profiled ops included), unless the profiled CPU activity of every
thread covers under a tenth of it: then the span was the host waiting on the GPU (DeepEP's dispatch polls for
the token counts), and only that activity is host time. Polling calls (`cudaEventQuery`) are not activity.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from pathlib import Path
from typing import Any

from hwmodels.host import per_layer_s
from simulator.explore.trace import trace_events
from simulator.runspec import RunSpec

CPU_CATEGORIES = ("cpu_op", "cuda_runtime", "cuda_driver")
POLLING = ("cudaEventQuery",)
LAUNCHES = re.compile(r"^(cudaLaunchKernel|cuLaunchKernel|cudaLaunchCooperativeKernel)")
SPAN = re.compile(r"\(([FBW])\)$")  # DeepSeek's annotations: attn(F), mlp(B), mlp(W)
PHASES = {"F": "forward", "B": "backward", "W": "backward"}
WAIT_BUSY_SHARE = 0.1  # a span whose CPU activity covers less than this share of its wall time was a wait


def _covered_us(intervals: list[tuple[float, float]]) -> float:
    """Microseconds the union of `intervals` covers."""
    total, end = 0.0, -1.0
    for s, e in sorted(intervals):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


def host_spans(path: str | Path) -> dict[str, dict[str, Any]]:
    """Per annotated span name (those ending in (F), (B) or (W)): its phase, how many times it ran, the host
    seconds summed over them, the kernels launched inside, and whether it was a wait (see the module's note)."""
    events = trace_events(path)
    cpu = [(e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") in CPU_CATEGORIES and e["name"] not in POLLING]
    launches = sorted(e["ts"] for e in events if e.get("cat") == "cuda_runtime" and LAUNCHES.match(e["name"]))
    spans: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "host_s": 0.0, "launches": 0, "waits": 0})
    for e in events:
        found = SPAN.search(e["name"]) if e.get("cat") == "user_annotation" else None
        if found is None:
            continue
        start, end = e["ts"], e["ts"] + e["dur"]
        busy = _covered_us([(max(s, start), min(t, end)) for s, t in cpu if t > start and s < end])
        waited = e["dur"] > 0 and busy < WAIT_BUSY_SHARE * e["dur"]
        row = spans[e["name"]]
        row["phase"] = PHASES[found.group(1)]
        row["count"] += 1
        row["host_s"] += (busy if waited else e["dur"]) / 1e6
        row["launches"] += bisect_left(launches, end) - bisect_left(launches, start)
        row["waits"] += int(waited)
    if not spans:
        raise ValueError(f"{path}: no annotated spans ending in (F), (B) or (W); v3sim reads DeepSeek's names")
    return dict(spans)


def host_per_layer(spans: dict[str, dict[str, Any]], layers: int) -> dict[str, float]:
    """Host seconds per layer, forward and backward, over a window of `layers` layers each way."""
    return per_layer_s(spans.values(), layers)


def host_comparison(path: str | Path, run: RunSpec, layers: int) -> dict[str, Any] | None:
    """The trace's host seconds per MoE layer beside what v3sim's host floor launches for `run`'s layer (eager:
    its CUDA graphs captured nothing), or None when the trace has no annotated spans. For the trace the
    shipped host table came from, the two agree by construction."""
    from simulator.analytic.host import host_s, launched
    from simulator.analytic.training import block_ops

    try:
        spans = host_spans(path)
    except ValueError:
        return None
    forward, backward = launched(block_ops(run, True), run.recompute, run.model.attention == "mla")
    priced = host_s(forward, backward, "none")
    model = {"forward": 0.0, "backward": 0.0}
    for (_, fwd), s in priced.items():
        model["forward" if fwd else "backward"] += s
    return {"spans": spans, "trace_per_layer_s": host_per_layer(spans, layers), "v3sim_per_layer_s": model}

"""Speed of the event model: one full V3 training step (2,048 GPUs, PP16, the published batch).

Prints a Markdown table: wall seconds per simulated step (median of 3) and simulated events (ops and
communication phases) per second, for DualPipe on the closed-form network and on the flow network with
drawn expert loads (balanced router, and cv 0.3), and for 1F1B / ZB1P; on V3's multi-plane fabric, and
DualPipe on the two slow fabrics of the flow model (many re-shares): a single-plane two-layer fat tree at
3:1 and a Slim Fly.
Run: `make bench`.
"""

from __future__ import annotations

import statistics
import time

from simulator.analytic.profile import rates_for
from simulator.analytic.training import resolved
from simulator.events.ep_comm import Routing
from simulator.events.simulate import simulate
from simulator.runspec import v3_pretraining

REPEATS = 3
MULTI_PLANE = ("multi-plane", 1.0)
CASES = (  # schedule, network, expert cv, (topology, oversubscription)
    ("dualpipe", "analytic", None, MULTI_PLANE),
    ("dualpipe", "flow", 0.0, MULTI_PLANE),
    ("dualpipe", "flow", 0.3, MULTI_PLANE),
    ("1f1b", "flow", 0.0, MULTI_PLANE),
    ("zb1p", "flow", 0.0, MULTI_PLANE),
    ("dualpipe", "flow", 0.0, ("fat-tree-2", 3.0)),
    ("dualpipe", "flow", 0.0, ("slim-fly", 1.0)),
)


def main() -> None:
    columns = ("fabric", "schedule", "network", "expert cv", "events", "step (simulated s)", "wall s per step")
    print("| " + " | ".join(columns) + " | events per second |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for schedule, network, cv, (topology, oversubscription) in CASES:
        run = v3_pretraining(schedule=schedule, topology=topology, oversubscription=oversubscription)
        rates = rates_for("published", run.node.gpu)
        run = resolved(run, rates)  # the stage split is the analytic model's work, not the simulation's
        walls, events, step_s = [], 0, 0.0
        for _ in range(REPEATS):
            start = time.perf_counter()
            sim = simulate(run, rates, network, Routing(expert_cv=cv))
            walls.append(time.perf_counter() - start)
            events, step_s = len(sim.timeline.events), sim.step_time_s
        wall = statistics.median(walls)
        cv_text = "-" if network == "analytic" else f"{cv:g}"
        fabric = topology if oversubscription == 1 else f"{topology} {oversubscription:g}:1"
        row = f"| {fabric} | {schedule} | {network} | {cv_text} | {events:,} | {step_s:.2f} | {wall:.2f} |"
        print(f"{row} {events / wall:,.0f} |")


if __name__ == "__main__":
    main()

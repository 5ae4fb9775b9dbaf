"""The best parallel layouts for a cluster: every TP x CP x PP x EP x schedule the model and the GPUs allow,
through the analytic model, ranked by predicted step time (the same GPUs: the same order as GPU-hours).

Candidates: TP a power of two within a node and dividing the attention heads; CP a power of two that leaves
each rank at least a 4K-token piece of the sequence (`MIN_CP_CHUNK`: below it the ring's transfers outgrow the
attention they hide under, and a 4K run searches CP 1 alone); PP dividing the GPUs, at most one stage per
layer; EP dividing the routed experts (1 for a dense model); every schedule (interleaved with 2 virtual
stages); with CP, the ring and the all-to-all where the heads split (`cp_comm`; see `_cp_comms`). A layout
field the caller gives (`tp`, `cp`, `cp_comm`, `pp`, `ep`, `schedule`) is held at that value, not searched.
Everything else (micro-batch, ZeRO, precision, batch, topology) stays as given.
Layouts the model rejects (memory, micro-batches, divisibility) are kept, invalid, with the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from simulator.explore.sweep import evaluate
from simulator.explore.sweepspec import complete
from simulator.presets import node_for
from simulator.schedules import SCHEDULES
from workloads.registry import load_model

LAYOUT_COLUMNS = ("tp", "cp", "cp_comm", "pp", "ep", "dp", "schedule", "virtual_stages")
MIN_CP_CHUNK = 4096  # tokens of a sequence each context-parallel rank keeps, at least (see the docstring)


def candidates(base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every layout to try for the run `base` describes (build_run options), as completed sweep points."""
    point = complete(base)
    spec, per_node = load_model(point["model"]), node_for(point["gpu"], point["node"]).gpus_per_node
    tps = [t for t in (1, 2, 4, 8, 16, 32, 64, 128) if per_node % t == 0 and spec.num_attention_heads % t == 0]
    pps = [p for p in range(1, spec.num_hidden_layers + 1) if point["gpus"] % p == 0]
    experts = spec.n_routed_experts if spec.is_moe else 1
    eps = [e for e in range(1, experts + 1) if experts % e == 0]
    seq = point["seq_len"] if isinstance(point["seq_len"], int) else MIN_CP_CHUNK
    cps = [c for c in (1, 2, 4, 8, 16, 32, 64) if c == 1 or seq // c >= MIN_CP_CHUNK]
    tps, cps, pps, eps = (
        [base[k]] if k in base else v for k, v in (("tp", tps), ("cp", cps), ("pp", pps), ("ep", eps))
    )
    schedules = [base["schedule"]] if "schedule" in base else SCHEDULES
    rows = []
    for tp, cp, pp, ep, schedule in itertools.product(tps, cps, pps, eps, schedules):
        vs = base.get("virtual_stages", 2) if schedule == "interleaved" else 1
        layout = {"tp": tp, "cp": cp, "pp": pp, "ep": ep, "schedule": schedule, "virtual_stages": vs}
        for comm in _cp_comms(base, spec.num_attention_heads, tp, cp):
            rows.append(complete({**base, **layout, "cp_comm": comm, "stage_layers": None}))
    return rows


def _cp_comms(base: Mapping[str, Any], heads: int, tp: int, cp: int) -> list[str]:
    """The CP exchanges to try: the given one; without CP the default alone (it changes nothing); else the ring
    and, where the heads split over tp x cp, the all-to-all. The all-gather moves the ring's bytes unhidden and
    holds more memory: never the faster of the two, so not searched (it is priced when given)."""
    if "cp_comm" in base:
        return [base["cp_comm"]]
    if cp == 1 or heads % (tp * cp):
        return ["ring"]
    return ["ring", "all-to-all"]


def best_layouts(base: Mapping[str, Any], processes: int | None = None, progress: bool = False) -> pd.DataFrame:
    """All candidate layouts, the valid ones first by step time (`rank` 1, 2, ...; invalid: rank NaN), with
    `is_given` marking the layout `base` itself asks for (V3's published PP16 EP64 DualPipe by default)."""
    given = complete(base)
    frame = evaluate(candidates(base), "analytic", processes=processes, progress=progress)
    keys = ("tp", "cp", "cp_comm", "pp", "ep", "schedule")
    frame["is_given"] = np.logical_and.reduce([frame[k] == given[k] for k in keys])
    frame = frame.sort_values(["valid", "step_time_s"], ascending=[False, True], kind="stable").reset_index(drop=True)
    frame["rank"] = pd.Series(range(1, len(frame) + 1), dtype=float).where(frame["valid"])
    return frame

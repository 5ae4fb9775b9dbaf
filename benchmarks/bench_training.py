"""Speed of the analytic training model, each figure beside its goal (issue 22), and llm-analysis's `train()`
on a dense case of the same shape in the same run when it is installed (`pip install -e .[bench]`).

V3 repeated: the same run again (stage times and split remembered). A new configuration each call: the
expert imbalance moves by 1e-9 per call (the dense run: SMs kept for communication, which 1F1B does not
use), so nothing is remembered but the fabric and the op lists. The
batch walks a grid of layouts (GPUs, PP, EP, schedule, micro-batch, precision, topology taper) around V3,
skipping the ones the RunSpec rejects; invalid and out-of-memory layouts count as evaluated (they are
answered, with an error). The sweep rows are distinct configurations priced by the sweep's array pass (layouts
x global batches: one model run per layout prices all its batches), in a fresh process and again.
Run: `make bench` (it writes the tables into docs/speed.md), or
`python -m benchmarks.bench_training [--write docs/speed.md]`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import logging
import os
import time

from benchmarks.tables import publish
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.explore.sweep import run_sweep
from simulator.explore.sweepspec import sweep_from_dict
from simulator.runspec import build_run, v3_pretraining

REPEATS = 20
BATCH = 10_000
# Distinct configurations a sweep prices in one array pass: layouts x global batches (each batch a different
# step time, split choice, micro-batch count and MFU; issue 22's 50,000 per second).
DISTINCT = {
    "axes": {
        "gpus": [1024, 2048, 4096],
        "pp": [8, 16],
        "ep": [32, 64],
        "schedule": ["dualpipe", "zb1p", "1f1b"],
        "global_batch_tokens": {"start": 4096 * 4096, "stop": 4096 * (4096 + 512 * 1500), "step": 4096 * 512},
    }
}


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


def best_s(call, repeats: int = REPEATS) -> float:
    """The fastest of `repeats` calls: this 2-core machine's load moves medians by 50%, the best by little."""
    samples = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - start)
    return min(samples)


# A dense run both tools can pose: a 7-8B Llama on 64 H100, data parallel, 4K tokens, 4M-token batches, bf16.
DENSE = {"model": "llama-3.1-8b", "gpu": "h100", "gpus": 64, "tp": 1, "pp": 1, "ep": 1, "schedule": "1f1b"}
DENSE |= {"precision": "bf16", "seq_len": 4096, "global_batch_tokens": 1024 * 4096, "micro_batch": 1}


def llm_analysis_s() -> float | None:
    """Best seconds of llm-analysis's `train()` on the dense case (its Llama-2-7B config), None if absent."""
    if importlib.util.find_spec("llm_analysis") is None:
        return None
    from llm_analysis.analysis import train

    logging.disable(logging.WARNING)  # it logs its whole report
    options = {"model_name": "NousResearch_Llama-2-7b-hf", "gpu_name": "h100-sxm-80gb", "tp_size": 1}
    options |= {"dtype_name": "w16a16e16", "total_num_tokens": 1e12, "pp_size": 1, "dp_size": 64}
    options |= {"seq_len": 4096, "global_batch_size": 1024, "batch_size_per_gpu": 1, "output_dir": None}
    with contextlib.redirect_stdout(io.StringIO()):
        return best_s(lambda _: train(**options))


def distinct_sweeps() -> list[tuple[str, int, int, float]]:
    """The array pass over DISTINCT, first in this process (nothing remembered: with the fabric-factor cache
    off, fabrics routed and layers priced) and again: (when, points, valid points, seconds) each."""
    os.environ["V3SIM_CACHE_DIR"] = "off"
    spec = sweep_from_dict(DISTINCT)
    out = []
    for when in ("first sweep in the process", "again (stage times and fabrics remembered)"):
        start = time.perf_counter()
        frame = run_sweep(spec, processes=1)
        out.append((when, len(frame), int(frame["valid"].sum()), time.perf_counter() - start))
    return out


def distinct_sweep_rows() -> list[str]:
    """`distinct_sweeps` as rows of the layouts table."""
    return [
        f"| sweep array pass, 36 layouts x 1,501 global batches, {when} ({valid:,} valid, {points - valid:,}"
        f" refused) | {points:,} | {seconds:.2f} | {points / seconds:,.0f} | 50,000 |"
        for when, points, valid, seconds in distinct_sweeps()
    ]


def main() -> None:
    sweep_rows = distinct_sweep_rows()  # first: in a process that has priced nothing
    profile = rates_for("published", v3_pretraining().node.gpu)
    run = v3_pretraining()
    estimate(run, profile)
    rows = [("V3 estimate, repeated", best_s(lambda _: estimate(run, profile)), "1 ms")]
    fresh = best_s(lambda i: estimate(run.with_(expert_imbalance=1 + (i + 1) * 1e-9), profile))
    rows.append(("V3 estimate, a new configuration each call", fresh, "1 ms"))
    dense = build_run(DENSE)
    h100 = rates_for("published", dense.node.gpu)
    estimate(dense, h100)
    dense_s = best_s(lambda i: estimate(dense.with_(comm_sms=i + 1), h100))  # unused by 1F1B: a new key
    other = llm_analysis_s()
    rows.append(("dense 8B on 64 H100, a new configuration each call", dense_s, "llm-analysis's time"))
    lines = ["| figure | ms | goal |", "| --- | ---: | --- |"]
    lines += [f"| {name} | {seconds * 1e3:.2f} | {goal} |" for name, seconds, goal in rows]
    shown = f"{other * 1e3:.2f}" if other is not None else "not installed (pip install -e .[bench])"
    lines.append(f"| llm-analysis 0.2.2 `train()`, Llama-2-7B on 64 H100, same run | {shown} | - |")
    publish("bench estimate", lines)
    print()

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
    lines = [
        "| case | configurations | seconds | per second | goal |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| `estimate()` one by one, every call a different layout ({answered - errors:,} estimated, {errors:,}"
        f" rejected) | {answered:,} | {batch_s:.2f} | {answered / batch_s:,.0f} | - |",
        *sweep_rows,
    ]
    publish("bench layouts", lines)


if __name__ == "__main__":
    main()

"""What issue 20's kernel-level costs cost the analytic estimate (its bar: no more than 20% slower).

The estimate prices each layer's operation list op by op (`simulator.analytic.pricing`). Issue 20 grew that list
with the FP8 recipe's element-wise kernels, op by op (casts, cast-transposes, permutes, norms, SwiGLU, dequants,
the combine), beside the GEMMs and attention it had, and gave the all-to-all DeepEP's kernel table. Here V3 is
estimated with a new configuration each call (the expert imbalance moved by 1e-9: nothing remembered but the
fabric and the op lists) with the op list as shipped, and again with the element-wise ops taken out of every
layer's list (what was priced before them), in one process, alternating, best of REPEATS each. Then the dense
GEMMs looked up by shape in the GPU's timings (`hwmodels.gemmtables`) against the same rates with no tables (the
fits alone), on a dense TP run whose every GEMM is looked up: Llama 3.1 70B on 64 H100 at per-tensor FP8.

Run: `python -m benchmarks.bench_costs [--write docs/speed.md]`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import lru_cache

import simulator.analytic.training as training
from benchmarks.tables import publish
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.runspec import build_run, v3_pretraining

REPEATS = 40
SHIPPED = training._layer_ops


@lru_cache(maxsize=1024)
def _without_elementwise(*args):  # type: ignore[no-untyped-def]
    return tuple(op for op in SHIPPED(*args) if op.kind != "elementwise")


def main() -> None:
    run = v3_pretraining()
    profile = rates_for("published", run.node.gpu)
    lists = {"as shipped": SHIPPED, "without the element-wise kernels": _without_elementwise}
    ops = {}
    for name, layer_ops in lists.items():
        training._layer_ops = layer_ops
        ops[name] = len(training.block_ops(run, True))
        estimate(run, profile)  # warm: the fabric, the op lists
    best = dict.fromkeys(lists, float("inf"))
    for i in range(REPEATS):
        for name, layer_ops in lists.items():
            training._layer_ops = layer_ops
            spec = run.with_(expert_imbalance=1 + (i + 1) * 1e-9 + (name == "as shipped") * 0.5e-9)
            start = time.perf_counter()
            estimate(spec, profile)
            best[name] = min(best[name], time.perf_counter() - start)
    training._layer_ops = SHIPPED
    base = best["without the element-wise kernels"]
    lines = ["| V3 estimate, a new configuration each call | ops in a MoE layer's list | ms | / without | bar |"]
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    lines += [
        f"| op list {name} | {ops[name]} | {seconds * 1e3:.2f} | {seconds / base:.2f} | 1.20 |"
        for name, seconds in best.items()
    ]
    lines += ["", *gemm_lookup_lines()]
    publish("bench costs", lines)


def gemm_lookup_lines() -> list[str]:
    """Llama 3.1 70B on 64 H100 (TP4 PP2, per-tensor FP8), a new sequence length (so new GEMM shapes) each call,
    with the GEMM tables and without them (the profile's fits), alternating, best of REPEATS."""
    opts = {"model": "llama-3.1-70b", "gpu": "h100", "gpus": 64, "tp": 4, "pp": 2, "schedule": "1f1b",
            "fp8_recipe": "tensor", "seq_len": 4096, "global_batch_tokens": 64 * 4096, "zero_stage": 2}  # fmt: skip
    run = build_run(opts)
    tables = rates_for("published", run.node.gpu)
    rates = {"looked up by shape": tables, "the fits alone": replace(tables, gemm_tables={})}
    for r in rates.values():
        estimate(run, r)  # warm
    best = dict.fromkeys(rates, float("inf"))
    for i in range(REPEATS):
        for j, (name, r) in enumerate(rates.items()):
            seq = 4096 + 128 * (2 * i + j + 1)  # new GEMM shapes each call: nothing looked up is remembered
            spec = run.with_(seq_len=seq, global_batch_tokens=64 * seq)
            start = time.perf_counter()
            estimate(spec, r)
            best[name] = min(best[name], time.perf_counter() - start)
    base = best["the fits alone"]
    lines = ["| Llama 3.1 70B on 64 H100, a new configuration each call | dense GEMMs | ms | / fits | bar |"]
    lines.append("| --- | --- | ---: | ---: | ---: |")
    return lines + [f"| training GEMMs | {n} | {s * 1e3:.2f} | {s / base:.2f} | 1.20 |" for n, s in best.items()]


if __name__ == "__main__":
    main()

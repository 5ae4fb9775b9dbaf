"""`v3sim compare-trace TRACE.json`: a profiler trace beside the operation list v3sim prices, class by class."""

from __future__ import annotations

import argparse
from typing import Any

from simulator.cli import format as fmt
from simulator.cli.args import degree, name


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, positive) -> None:
    from simulator.cli.runopts import add_run_options

    p = sub.add_parser(
        "compare-trace", parents=[common], help="a PyTorch profiler trace beside v3sim's priced ops, class by class"
    )
    p.add_argument("trace", type=name, help="Chrome-trace JSON (e.g. deepseek-ai/profile-data train.json)")
    p.add_argument("--layers", type=degree, default=4, help="MoE layers per chunk in the trace (default 4, V3's)")
    add_run_options(p, positive)


def cmd_compare_trace(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.analytic.profile import rates_for
    from simulator.cli.runopts import run_from_args
    from simulator.explore.hosttrace import host_comparison
    from simulator.explore.trace import compare_trace

    run = run_from_args(args)
    if not run.model.is_moe:
        raise ValueError(f"{run.model.name} is dense: compare-trace holds MoE layers (a DualPipe chunk pair)")
    out = compare_trace(args.trace, run, rates_for(args.profile, run.node.gpu), args.layers)
    out["host"] = host_comparison(args.trace, run, args.layers)
    return out


def print_compare_trace(out: dict[str, Any]) -> None:
    print(
        f"{out['trace']}: {out['kernels']} kernels; v3sim ({out['profile']}): {out['layers']} MoE layers, one "
        "forward + one backward"
    )
    rows = [
        {
            "class": r["class"],
            "stream": r["stream"],
            "kernels": r["kernels"],
            "trace ms": f"{r['trace_s'] * 1e3:.2f}",
            "v3sim ms": f"{r['v3sim_s'] * 1e3:.2f}",
            "error": "-" if r["rel_error"] is None else f"{r['rel_error']:+.0%}",
        }
        for r in out["rows"]
    ]
    print(fmt.table(rows, ["class", "stream", "kernels", "trace ms", "v3sim ms", "error"]))
    t, m = out["compute_trace_s"], out["compute_v3sim_s"]
    print(f"compute kernels: trace {t * 1e3:.1f} ms, v3sim {m * 1e3:.1f} ms ({m / t - 1:+.1%})")
    host = out.get("host")
    if host:
        trace, model = host["trace_per_layer_s"], host["v3sim_per_layer_s"]
        print(
            "host launch time per layer (eager): trace "
            + ", ".join(f"{p} {trace[p] * 1e3:.2f} ms" for p in trace)
            + "; v3sim "
            + ", ".join(f"{p} {model[p] * 1e3:.2f} ms" for p in model)
        )

"""`v3sim sweep` and `v3sim best-layout`: design-space sweeps and the layout search, for the CLI."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hwmodels.files import check_output
from simulator.cli import format as fmt
from simulator.cli.args import name
from simulator.cli.runopts import add_run_options, run_options
from simulator.names import SWEEP_ENGINES as ENGINES

if TYPE_CHECKING:
    import pandas as pd

SHOWN = 10  # rows printed (the file has them all)


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, positive) -> None:
    p = sub.add_parser("sweep", parents=[common], help="evaluate a design-space sweep (TOML) and its Pareto front")
    p.add_argument("sweep", type=name, help="the sweep description, a TOML file (see docs/sweeps.md)")
    p.add_argument(
        "--out",
        type=name,
        default=None,
        help="write every point's inputs and outputs here (.parquet or .csv; default: none, the front printed)",
    )
    p.add_argument("--engine", choices=ENGINES, default=None, help="override the file's engine (default: the file's)")
    _add_execution(p, positive)
    p.add_argument("--top", type=positive, default=SHOWN, help=f"Pareto points to show (default {SHOWN})")

    p = sub.add_parser("best-layout", parents=[common], help="rank the parallel layouts of a run by step time")
    add_run_options(p, positive)
    p.add_argument("--top", type=positive, default=SHOWN, help=f"layouts to show (default {SHOWN})")
    p.add_argument("--processes", type=positive, default=None, help="local processes (default: all cores)")


def _add_execution(p: argparse.ArgumentParser, positive) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--processes", type=positive, default=None, help="local processes (default: all cores)")
    where.add_argument(
        "--workers", type=positive, default=None, help="start a local Dask cluster of N workers (default: none)"
    )
    where.add_argument(
        "--scheduler",
        type=name,
        default=None,
        help="send the points to a Dask scheduler, tcp://HOST:8786 (default: none)",
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def cmd_sweep(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.explore.sweep import RESULT_SUFFIXES, pareto_front, run_sweep, write_results
    from simulator.explore.sweepspec import load_sweep_data, sweep_from_dict

    if args.out:
        check_output(args.out, RESULT_SUFFIXES, "--out")  # before the work, not after it
    data = load_sweep_data(args.sweep)
    if "plan" in data:
        return cmd_plan_sweep(data, args)
    spec = sweep_from_dict(data)
    if args.engine:
        spec = replace(spec, engine=args.engine)
    frame = run_sweep(spec, args.processes, args.workers, args.scheduler, progress=not args.json)
    frame["pareto"] = pareto_front(frame, spec.objectives)
    if args.out:
        write_results(frame, args.out)
    first = next(iter(spec.objectives))
    front = frame[frame["pareto"]].sort_values(first, ascending=spec.objectives[first] == "min")
    invalid = frame.loc[~frame["valid"], "reason"]
    axes = [a.name for a in spec.axes]
    return {
        "engine": spec.engine,
        "method": spec.method,
        "points": len(frame),
        "valid": int(frame["valid"].sum()),
        "invalid": len(invalid),
        "reasons": {str(k): int(v) for k, v in invalid.value_counts().items()},
        "axes": axes,
        "objectives": dict(spec.objectives),
        "pareto": _records(front[list(dict.fromkeys([*axes, *spec.objectives, "step_time_s"]))]),
        "out": args.out,
        "top": args.top,
    }


def cmd_plan_sweep(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A sweep over a run plan's inputs (`simulator.explore.plansweep`): every point the whole plan priced."""
    from simulator.explore.plansweep import plan_sweep_from_dict, run_plan_sweep
    from simulator.explore.sweep import pareto_front, write_results

    if args.engine or args.workers or args.scheduler:
        raise ValueError("a plan sweep runs in this process: drop --engine, --workers and --scheduler")
    spec = plan_sweep_from_dict(data)
    frame = run_plan_sweep(spec)
    valid = frame[frame["valid"]]
    frame["pareto"] = pareto_front(frame, spec.objectives) if len(valid) else False
    if args.out:
        write_results(frame, args.out)
    first = next(iter(spec.objectives))
    on = frame[frame["pareto"]] if len(valid) else valid
    front = on.sort_values(first, ascending=spec.objectives[first] == "min") if len(valid) else valid
    invalid = frame.loc[~frame["valid"], "reason"]
    axes = [name for name, _ in spec.axes]
    return {
        "engine": "plan",
        "method": "grid",
        "points": len(frame),
        "valid": len(valid),
        "invalid": len(invalid),
        "reasons": {str(k): int(v) for k, v in invalid.value_counts().items()},
        "axes": axes,
        "objectives": dict(spec.objectives),
        "pareto": _records(front[list(dict.fromkeys([*axes, *spec.objectives]))]) if len(valid) else [],
        "out": args.out,
        "top": args.top,
    }


def print_sweep(out: dict[str, Any]) -> None:
    print(
        f"{out['points']:,} points ({out['method']}, {out['engine']} model): {out['valid']:,} valid, "
        f"{out['invalid']:,} invalid"
    )
    for reason, n in list(out["reasons"].items())[:5]:
        print(f"  {n:>6,} x {reason}")
    if len(out["reasons"]) > 5:
        print(f"  ... {len(out['reasons']) - 5} more reasons (see the reason column of --out)")
    goals = ", ".join(f"{k} ({v})" for k, v in out["objectives"].items())
    print(f"\nPareto front over {goals}: {len(out['pareto'])} points")
    rows = [{k: _cell(v) for k, v in row.items()} for row in out["pareto"][: out["top"]]]
    if rows:
        print(fmt.table(rows, list(rows[0])))
    if out["out"]:
        print(f"\nevery point: {out['out']}")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else fmt.si(value)
    return str(value)


class Ranked(list):
    """The ranked layouts (what --json prints), with how many were tried and valid."""

    tried = valid = 0


def cmd_best_layout(args: argparse.Namespace) -> Ranked:
    import pandas as pd

    from simulator.explore.bestlayout import LAYOUT_COLUMNS, best_layouts

    base = run_options(args)
    from simulator.runspec import RUN_DEFAULTS

    tokens, seq_len = base.get("tokens"), base.get("seq_len", RUN_DEFAULTS["seq_len"])
    if isinstance(tokens, int | float) and isinstance(seq_len, int):  # every layout's batch holds a sequence at least
        from simulator.cli.plausible import check_run_length

        check_run_length(tokens, seq_len, base.subject("tokens"), f"one {seq_len:,}-token sequence")
    frame = best_layouts(base, args.processes, progress=not args.json)
    valid = frame[frame["valid"]]
    if valid.empty:
        reasons = frame["reason"].value_counts()
        raise ValueError(
            f"no valid layout among {len(frame)} tried; most often: {reasons.index[0]} ({reasons.iloc[0]} layouts)"
        )
    columns = [
        "rank",
        *LAYOUT_COLUMNS,
        "micro_batch",
        "step_time_s",
        "gpu_hours",
        "cost_usd",
        "days",
        "mfu_bf16",
        "memory_per_gpu_bytes",
        "stage_split",
        "is_given",
    ]
    shown = pd.concat([valid.head(args.top), valid[valid["is_given"]]]).drop_duplicates(subset="rank")
    rows = Ranked(_records(shown[columns]))
    for row in rows:
        row["rank"] = int(row["rank"])
    rows.tried, rows.valid = len(frame), len(valid)
    return rows


def print_best_layout(rows: Ranked) -> None:
    best = rows[0]
    print(f"{rows.valid} valid layouts of {rows.tried} tried, by predicted step time:")
    table = [
        {
            "rank": r["rank"],
            "tp": r["tp"],
            "cp": r["cp"] if r["cp"] == 1 else f"{r['cp']} {r['cp_comm']}",
            "pp": r["pp"],
            "ep": r["ep"],
            "dp": r["dp"],
            "schedule": r["schedule"] + (f" v{r['virtual_stages']}" if r["schedule"] == "interleaved" else ""),
            "step s": f"{r['step_time_s']:.2f}",
            "vs best": f"{r['step_time_s'] / best['step_time_s'] - 1:+.1%}",
            "GPU-hours": fmt.si(r["gpu_hours"]),
            "MFU bf16": f"{r['mfu_bf16']:.1%}",
            "GB/GPU": f"{r['memory_per_gpu_bytes'] / 1e9:.1f}",
            "": "<- given" if r["is_given"] else "",
        }
        for r in rows
    ]
    print(fmt.table(table, list(table[0])))
    if not any(r["is_given"] for r in rows):
        print("\nthe layout given (or V3's default) is not valid here")

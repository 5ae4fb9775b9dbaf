"""`v3sim train` and `v3sim validate`: the training estimate and the published-figure check, for the CLI."""

from __future__ import annotations

import argparse
from typing import Any

from hwmodels.files import check_distinct_outputs, check_output, dumps_json, write_atomic
from simulator.cli import format as fmt
from simulator.cli.args import fraction, integer, name, nonnegative, positive_number
from simulator.cli.runopts import TRAIN_OPTIONS, add_run_options, add_save_spec, run_from_args
from simulator.names import NETWORKS


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, positive) -> None:
    p = sub.add_parser("train", parents=[common], help="step time, GPU-hours and cost of a training run")
    add_run_options(p, positive)
    add_save_spec(p)
    p.add_argument("--explain", action="store_true", help="show each headline figure's formula and inputs")
    p.add_argument("--sensitivity", action="store_true", help="GPU-hours with each key input moved +-20%%")
    p.add_argument(
        "--uncertainty", action="store_true", help="P10-P90 of GPU-hours, step and cost from the kernel sources' spread"
    )
    p.add_argument(
        "--plan",
        type=name,
        default=None,
        help="a run plan: phases (batch ramp, long context, post-training) priced one by one; deepseek-v3 or a "
        ".toml file (the run options go in its [run] table)",
    )
    add_goodput_options(p)

    p = sub.add_parser("simulate", parents=[common], help="one training step in the discrete-event model")
    add_run_options(p, positive)
    add_save_spec(p)
    p.add_argument("--trace", default=None, help="write the step as Chrome trace-event JSON (Perfetto) here")
    p.add_argument(
        "--seed", type=integer, default=0, help="seed of the expert-load, ECMP and straggler draws (default 0)"
    )
    p.add_argument(
        "--network",
        choices=NETWORKS,
        default="flow",
        help="flow: each MoE layer's all-to-all from drawn loads on the fabric (default); analytic: closed form",
    )
    p.add_argument(
        "--expert-cv",
        type=_expert_cv,
        default=0.0,
        help="coefficient of variation of expert popularity (default 0: a balanced router; 'uniform': no draw)",
    )
    p.add_argument("--samples", type=positive, default=8, help="drawn routing patterns per step (default 8)")
    p.add_argument("--straggler-rate", type=fraction, default=0.0, help="share of GPUs slow this step (default 0)")
    p.add_argument("--straggler-slowdown", type=positive_number, default=1.0, help="their compute time multiplier")
    p.add_argument("--links", default=None, help="write each link's EP bytes and utilization as CSV here")

    p = sub.add_parser("validate", parents=[common], help="predicted vs published figures, with errors")
    p.add_argument(
        "--row",
        type=name,
        default=None,
        help="one published run or result by its id (--json lists them): its figures, source and the command "
        "that prices it",
    )


def add_goodput_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("expected figures (failures, checkpoints, restarts)")
    g.add_argument(
        "--goodput",
        choices=("on", "off"),
        default="on",
        help="add the expected GPU-hours, cost and days with failures, checkpoints and restarts (default on); "
        "off: the steady state alone",
    )
    g.add_argument(
        "--failure-scale",
        type=nonnegative,
        default=1.0,
        help="failure rates x this (default 1: Llama 3's 419 interruptions in 54 days on 16,384 H100; 0: none)",
    )
    g.add_argument("--storage", type=name, default="3fs", help="checkpoint storage: 3fs (default) or tectonic")
    g.add_argument(
        "--checkpoint-interval-min",
        type=positive_number,
        default=None,
        help="minutes between checkpoints (default: the optimum)",
    )
    g.add_argument(
        "--goodput-draws",
        type=integer,
        default=0,
        help="also draw this many whole runs failure by failure (SimPy, seed 0) for P10/P50/P90 (default 0: none)",
    )
    g.add_argument(
        "--restart-s",
        type=nonnegative,
        default=None,
        help="seconds a restart takes besides reading the checkpoint (default 150, FlashRecovery's)",
    )
    g.add_argument(
        "--checkpointing",
        choices=("sync", "async"),
        default="sync",
        help="sync (default): training waits for the write; async: for a copy to host memory, the write goes on "
        "in the background",
    )
    g.add_argument(
        "--spare-nodes",
        type=integer,
        default=None,
        help="hot spares: a dedicated pool of the job's nodes and this many idle ones, billed (default: a healthy "
        "node is always at hand)",
    )
    g.add_argument(
        "--repair-h",
        type=positive_number,
        default=None,
        help="hours a failed node is out with --spare-nodes (default 24, ASSUMED: no published figure)",
    )


def goodput_inputs(args: argparse.Namespace):
    """The Reliability the goodput options ask for."""
    from simulator.analytic.goodput import RESTART_S, Reliability
    from simulator.analytic.spares import REPAIR_H

    interval = None if args.checkpoint_interval_min is None else args.checkpoint_interval_min * 60
    restart = RESTART_S if args.restart_s is None else args.restart_s
    if args.repair_h is not None and args.spare_nodes is None:
        raise ValueError("--repair-h prices hot spares: give --spare-nodes too")
    return Reliability(
        failure_scale=args.failure_scale,
        storage=args.storage,
        interval_s=interval,
        restart_s=restart,
        checkpointing=args.checkpointing,
        spare_nodes=args.spare_nodes,
        repair_h=REPAIR_H if args.repair_h is None else args.repair_h,
    )


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.analytic.profile import rates_for
    from simulator.analytic.report import estimate
    from simulator.explore.sensitivity import sensitivity

    if args.plan is not None:
        return cmd_plan(args)
    from simulator.analytic.fitting import fitting_run
    from simulator.runspec import share_note

    run = run_from_args(args)
    profile = rates_for(args.profile, run.node.gpu)
    fitted = fitting_run(run, profile)  # what the options leave to default and does not fit: the fitting choice
    run = fitted.run
    report = estimate(run, profile)
    out = report.to_dict()
    notes = [n for n in (fitted.note, share_note(run), _host_note(out)) if n]
    if notes:
        out["notes"] = notes
    if args.save_spec:
        out["saved_spec"] = args.save_spec
    if not args.explain:
        out.pop("explain")
    if args.sensitivity:
        out["sensitivity"] = sensitivity(run, profile)
    if args.uncertainty:
        from simulator.explore.uncertainty import uncertainty

        out["uncertainty"] = uncertainty(run, profile)
    if args.goodput == "on":
        from hwmodels.units import SECONDS_PER_DAY
        from simulator.analytic.goodput import run_goodput

        steady_s = report.days * SECONDS_PER_DAY
        expected = run_goodput(run, steady_s, report.gpu_hours, report.cost_usd, goodput_inputs(args))
        if args.goodput_draws:
            from simulator.events.goodput import run_bands

            expected["draws"] = run_bands(expected, steady_s, report.gpu_hours, args.goodput_draws)
        out["goodput"] = expected
    return out


def cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    """`train --plan`: the whole run, phase by phase; the run options live in the plan."""
    from simulator.analytic.runplan import price_plan
    from simulator.runplan import load_plan

    given = [f"--{opt.replace('_', '-')}" for opt in TRAIN_OPTIONS if getattr(args, opt) is not None]
    given += [f"--{k.replace('_', '-')}" for k in ("model", "gpu", "node", "spec", "save_spec") if getattr(args, k)]
    extras = [f"--{k}" for k in ("explain", "sensitivity", "uncertainty") if getattr(args, k)]
    if given or extras:
        raise ValueError(f"--plan takes its run from the plan's [run] and phases; drop {(given + extras)[0]}")
    reliability = goodput_inputs(args) if args.goodput == "on" else None
    return price_plan(load_plan(args.plan), args.profile, reliability)


def print_plan(out: dict[str, Any]) -> None:
    print(f"plan {out['plan']}: {out['source']}" if out["source"] else f"plan {out['plan']}")
    print(f"kernel profile: {out['profile']}")
    rows = []
    for p in out["phases"]:
        r = p["run"]
        rows.append(
            {
                "phase": p["name"],
                "layout": "given"
                if r is None
                else (f"tp{r['tp']} {_cp(r)} pp{r['pp']} ep{r['ep']} dp{r['dp']} {r['schedule']}, {r['seq_len']:,}"),
                "steps": "" if p["steps"] is None else f"{p['steps']:,.0f}",
                "step s": "" if p["step_time_s"] is None else f"{p['step_time_s']:.2f}",
                "GPU-hours": f"{p['gpu_hours'] / 1e3:,.1f} K",
                "days": f"{p['days']:.1f}",
                "$": f"{p['cost_usd'] / 1e6:,.2f} M",
            }
        )
    t = out["total"]
    blank = {"layout": "", "steps": "", "step s": ""}
    total_hours, total_cost = f"{t['gpu_hours'] / 1e3:,.1f} K", f"{t['cost_usd'] / 1e6:,.2f} M"
    rows.append({"phase": "total", **blank, "GPU-hours": total_hours, "days": f"{t['days']:.1f}", "$": total_cost})
    print(fmt.table(rows, list(rows[0])))
    for p in out["phases"]:
        if p["note"]:
            print(f"  {p['name']}: {p['note']}")
    if "expected_gpu_hours" in t:
        parts = ", ".join(
            f"{p['name']} {p['expected']['expected_gpu_hours'] / 1e3:,.1f} K" for p in out["phases"] if not p["given"]
        )
        print(
            f"\nexpected with failures, checkpoints and restarts: {t['expected_gpu_hours'] / 1e3:,.1f} K GPU-hours, "
            f"${t['expected_cost_usd'] / 1e6:,.2f} M, {t['expected_days']:.1f} days (goodput {t['goodput']:.1%}; "
            f"{parts}; given phases as given). --goodput off: the steady state alone"
        )
    if out["published"]:
        print("\nagainst the published figures (steady state, as published):")
        for name, e in [*out["published"].items(), *([("total", t)] if "error" in t else [])]:
            ours, theirs = e["gpu_hours"] / 1e3, e["published_gpu_hours"] / 1e3
            print(f"  {name}: {ours:,.1f} K vs {theirs:,.1f} K ({e['error']:+.1%})")


def _host_note(out: dict[str, Any]) -> str:
    """A note when the GPU waits for the host's kernel launches (`simulator.analytic.host`), else ""."""
    graphs = f"(CUDA graphs: {out['run']['cuda_graphs']}; --cuda-graphs captures them)"
    if out["pair_host_wait_s"] > 0:
        return (
            f"prices {out['pair_host_wait_s'] * 1e3:,.1f} ms of each overlapped F&B pair's "
            f"{out['chunk_s']['F&B'] * 1e3:,.1f} ms (busiest rank) as the GPU waiting for the host, which launches "
            f"both micro-batches' kernels one by one {graphs}"
        )
    if out["host_wait_s"] <= 0:
        return ""
    compute_s = out["chunk_s"]["F"] + out["chunk_s"]["B"]
    return (
        f"prices {out['host_wait_s'] * 1e3:,.1f} ms of each micro-batch's {compute_s * 1e3:,.1f} ms (F + B, busiest "
        f"rank) as the GPU waiting for the host to launch kernels one by one {graphs}"
    )


def print_train(out: dict[str, Any]) -> None:
    if "phases" in out:
        print_plan(out)
        return
    run = out["run"]
    schedule = run["schedule"] + (f" v{run['virtual_stages']}" if run["schedule"] == "interleaved" else "")
    schedule += " (all-to-all overlapped)" if run.get("ep_comm") == "overlapped" and "dualpipe" not in schedule else ""
    precision = run["precision"] + (f" ({run['fp8_recipe']} scaling)" if run["precision"] == "fp8" else "")
    print(
        f"{run['model']} on {run['gpus']} x {run['gpu']} ({run['topology']}), tp{run['tp']} pp{run['pp']} "
        f"ep{run['ep']}" + (f" {_cp(run)}" if run["cp"] > 1 else "") + f" dp{run['dp']} "
        f"ZeRO-{run['zero_stage']}, {schedule}, {precision}, "
        f"profile {run['profile']}"
    )
    rows = [
        {"": "step time", "value": f"{out['step_time_s']:.2f} s ({out['microbatches']} micro-batches)"},
        {"": "tokens/s per GPU", "value": f"{out['tokens_per_s_per_gpu']:,.0f}"},
        {"": "MFU (bf16 / fp8 peak)", "value": " / ".join(f"{v:.1%}" for v in out["mfu"].values())},
        {"": "GPU-hours", "value": f"{out['gpu_hours'] / 1e3:,.0f} K for {fmt.si(run['tokens'])} tokens"},
        {"": "cost", "value": f"${out['cost_usd'] / 1e6:,.2f} M at ${run['usd_per_gpu_hour']:.2f}/GPU-hour"},
        {"": "wall clock", "value": f"{out['days']:.1f} days"},
        {"": "memory per GPU", "value": f"{out['memory_per_gpu_bytes']['total'] / 1e9:.1f} GB"},
    ]
    print(fmt.table(rows, ["", "value"]))
    for note in out.get("notes", []):
        print(f"note: the engine {note}")
    if out.get("goodput"):
        g = out["goodput"]
        every = f", one every {g['mtbf_hours']:.1f} h" if g["mtbf_hours"] is not None else ""
        print(
            f"\nexpected with failures: {g['expected_gpu_hours'] / 1e3:,.0f} K GPU-hours, "
            f"${g['expected_cost_usd'] / 1e6:,.2f} M, {g['expected_days']:.1f} days (goodput {g['goodput']:.1%}; "
            f"{g['expected_failures']:.0f} failures{every}; a {g['checkpoint_bytes'] / 1e12:.1f} TB checkpoint "
            + (
                f"in {g['checkpoint_s']:.1f} s"
                if g["checkpointing"] == "sync"
                else f"pausing {g['checkpoint_s']:.2f} s, written in {g['checkpoint_write_s']:.1f} s behind"
            )
            + f" every {g['checkpoint_interval_min']:.0f} min; restarts of {g['restart_s']:.0f} s). --goodput off: "
            "the steady state alone"
        )
        if g.get("spares"):
            sp = g["spares"]
            print(
                f"  {sp['nodes']} hot spare nodes ({sp['idle_gpu_hours'] / 1e3:,.1f} K idle GPU-hours, in the "
                f"expected figures): a node failure finds none free {sp['shortfall_probability']:.1%} of the time "
                f"and waits {g['breakdown_hours']['waiting_for_nodes']:,.1f} h in all (repairs of "
                f"{sp['repair_h']:g} h); {sp['spares_for_99pct']} spares make that 1%"
            )
        if g.get("draws"):
            d = g["draws"]
            print(
                f"  {d['runs']} runs drawn (SimPy, seed {d['seed']}): P10 / P50 / P90 {d['days']['p10']:.1f} / "
                f"{d['days']['p50']:.1f} / {d['days']['p90']:.1f} days, {d['gpu_hours']['p10'] / 1e3:,.0f} / "
                f"{d['gpu_hours']['p50'] / 1e3:,.0f} / {d['gpu_hours']['p90'] / 1e3:,.0f} K GPU-hours"
            )
    step = out["step_time_s"]
    print()
    print(
        fmt.table(
            [{"part": k, "s per step": f"{v:.3f}", "share": f"{v / step:.1%}"} for k, v in out["breakdown"].items()],
            ["part", "s per step", "share"],
        )
    )
    if out.get("explain"):
        for item in out["explain"]:
            print(f"\n{item['figure']} = {_short(item['value'])}\n  = {item['formula']}")
            for name, (value, source) in item["inputs"].items():
                print(f"    {name}: {_short(value)}  [{source}]")
    if out.get("sensitivity"):
        print("\nGPU-hours (cost for price) with one input moved -20% / +20%:")
        rows = [
            {
                "input": r["input"],
                "low": r["low_value"],
                "change": f"{r['low_change']:+.1%}",
                "high": r["high_value"],
                "change ": f"{r['high_change']:+.1%}",
            }
            for r in out["sensitivity"]
        ]
        print(fmt.table(rows, ["input", "low", "change", "high", "change "]))
    if out.get("uncertainty"):
        u = out["uncertainty"]
        print(f"\nP10 / P50 / P90 over {u['draws']} draws of the kernel rates ({u['note']}):")
        for name, scale, unit in (
            ("gpu_hours", 1e3, " K GPU-hours"),
            ("step_time_s", 1, " s"),
            ("cost_usd", 1e6, " M$"),
        ):
            band = u[name]
            print(f"  {band['p10'] / scale:,.2f} / {band['p50'] / scale:,.2f} / {band['p90'] / scale:,.2f}{unit}")
    if out["defaults"]:
        print(
            "\nleft to the engine (V3's published set-up; what it chose to fit is in a note): "
            + ", ".join(out["defaults"])
        )
    _print_saved(out)


def _print_saved(out: dict[str, Any]) -> None:
    if out.get("saved_spec"):
        print(f"\nrun spec written to {out['saved_spec']} (run it again: v3sim train --spec {out['saved_spec']})")


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return str(value)


def _expert_cv(text: str) -> float | None:
    if text == "uniform":
        return None
    try:
        return nonnegative(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err} (give a number >= 0 or 'uniform')") from None


OUTPUTS = {"trace": ".json", "links": ".csv"}  # simulate's files: option -> suffix


def cmd_simulate(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.analytic.profile import rates_for
    from simulator.events.engine import to_chrome_trace
    from simulator.events.ep_comm import Routing
    from simulator.events.simulate import Stragglers, simulate

    paths = {option: getattr(args, option) for option in OUTPUTS}
    check_distinct_outputs({f"--{option}": path for option, path in paths.items()})
    for option, path in paths.items():
        if path:
            check_output(path, (OUTPUTS[option],), f"--{option}")
    from simulator.analytic.fitting import fitting_run
    from simulator.runspec import share_note

    fitted = fitting_run(run_from_args(args), args.profile)
    run = fitted.run
    if args.links and (args.network != "flow" or run.ep == 1 or not run.model.is_moe):
        raise ValueError("--links needs the flow network and expert parallelism (--network flow, ep > 1)")
    routing = Routing(args.expert_cv, args.samples, args.seed, run.ecmp)
    stragglers = Stragglers(args.straggler_rate, args.straggler_slowdown)
    sim = simulate(run, rates_for(args.profile, run.node.gpu), args.network, routing, stragglers)
    out = sim.to_dict()
    notes = [n for n in (fitted.note, share_note(run)) if n]
    if notes:
        out["notes"] = notes
    if args.save_spec:
        out["saved_spec"] = args.save_spec
    writers = {
        "trace": lambda p: p.write_text(dumps_json(to_chrome_trace(sim.timeline))),
        "links": lambda p: _links(sim).to_csv(p, index=False),
    }
    for option, path in paths.items():
        if not path:
            continue
        try:
            write_atomic(path, writers[option])
        except OSError as exc:
            raise ValueError(f"cannot write the {option} to {path}: {exc.strerror}") from None
        out[option] = path
    return out


def _links(sim):
    if sim.links is None:
        raise ValueError("--links needs the flow network and expert parallelism (--network flow, ep > 1)")
    return sim.links


def print_simulate(out: dict[str, Any]) -> None:
    print(f"event model: {out['step_time_s']:.3f} s per step ({out['ops']} pipeline ops simulated)")
    print(f"analytic:    {out['analytic_step_time_s']:.3f} s per step  (event model {out['difference']:+.1%})")
    print(f"pipeline {out['pipeline_s']:.3f} s + DP collectives and optimizer {out['dp_and_optimizer_s']:.3f} s")
    idle = out["idle_s"]
    print(f"idle per rank: min {min(idle):.3f} s, max {max(idle):.3f} s; stage split {out['stage_layers']}")
    cv = "uniform" if out["expert_cv"] is None else f"cv {out['expert_cv']:g}"
    if out["network"] == "analytic":
        print(f"network: closed form (no draws); seed {out['seed']} (stragglers only)")
    elif out["link_utilization"]:
        print(f"network: {out['network']}; expert loads {cv}, {out['samples']} samples, seed {out['seed']}")
    else:
        print(f"network: {out['network']}; no expert-parallel all-to-all to draw; seed {out['seed']}")
    if out["slow_ranks"]:
        print(f"stragglers on ranks {out['slow_ranks']} (x{out['straggler_slowdown']:g} compute)")
    for note in out.get("notes", []):
        print(f"note: the engine {note}")
    for kind, u in out["link_utilization"].items():
        print(f"{kind:>11} links: EP traffic {u['mean']:.0%} of the step on average, busiest {u['max']:.0%}")
    for option, what in (("trace", "trace (open in https://ui.perfetto.dev or chrome://tracing)"), ("links", "links")):
        if out.get(option):
            print(f"{what}: {out[option]}")
    _print_saved(out)


def cmd_validate(args: argparse.Namespace) -> list[dict[str, Any]] | dict[str, Any]:
    if args.row is not None:
        from simulator.explore.reproduce import row_detail

        return row_detail(args.row)
    from simulator.explore.validate import validation_rows

    return validation_rows()


def print_validate(rows: list[dict[str, Any]] | dict[str, Any]) -> None:
    if isinstance(rows, dict):
        _print_row(rows)
        return
    table = [
        {
            "figure": r["figure"],
            "published": f"{r['published']:.6g}",
            "predicted": f"{r['predicted']:.6g}",
            "error": f"{r['rel_error']:+.2%}",
            "tolerance": f"{r['tolerance']:.1%}",
            "ok": "ok" if r["ok"] else "MISS",
            "note": r["note"],
        }
        for r in rows
    ]
    print(fmt.table(table, ["figure", "published", "predicted", "error", "tolerance", "ok", "note"]))
    misses = sum(not r["ok"] for r in rows)
    print(f"\n{len(rows) - misses} of {len(rows)} within tolerance")
    from simulator.explore.validate import regime_summary

    summary = [
        {
            "published runs by regime": g["regime"],
            "runs": g["rows"],
            "within": g["within"],
            "v3sim speed, median": f"{g['median_speed_error']:+.1%}",
            "range": f"{g['min_speed_error']:+.1%} .. {g['max_speed_error']:+.1%}",
        }
        for g in regime_summary(rows)
    ]
    print("\nv3sim's speed against the published runs (+: faster than ran; a time's error inverted):")
    print(fmt.table(summary, list(summary[0]) if summary else []))
    print("\nOne published run with its source and the command that prices it: v3sim validate --row ID "
          "(each row's id is in --json)")  # fmt: skip


def _cp(run: dict) -> str:
    """`cp4`, with its exchange where it is not the default ring: `cp16 all-gather`."""
    return f"cp{run['cp']}" + (f" {run['cp_comm']}" if run["cp"] > 1 and run["cp_comm"] != "ring" else "")


def _print_row(r: dict[str, Any]) -> None:
    """One published run or result: its figures, where they come from, and the command that prices it."""
    within = "within" if r["ok"] else "OUTSIDE"
    sample = "in sample" if r["in_sample"] else "out of sample"
    print(r["figure"])
    print(f"  published     {r['published']:,.6g}")
    error = f"{r['rel_error']:+.1%}; {within} its ±{r['tolerance']:.0%}, {sample}"
    print(f"  v3sim         {r['predicted']:,.6g} ({error})")
    print(f"  source        {r['source']}")
    if r["quote"]:
        print(f"  quote         {r['quote']}")
    print(f"  posed         {r['note']}")
    print(f"  reproduce     {r['command']}")

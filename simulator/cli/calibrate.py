"""`v3sim calibrate flops|run|kernels|trace|show|refit|publish`: the FLOP oracle, kernel timing, profiles.

`calibration` (and torch with it) is imported only by the sub-commands that run layers, kernels or fits,
so the rest of the CLI starts without it; the engine itself never imports it (profiles are read through
hwmodels.profile).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hwmodels.bmmtables import timed_gpus as bmm_timed_gpus
from hwmodels.files import check_output, dumps_json, write_atomic
from hwmodels.gemmtables import timed_gpus
from hwmodels.profile import MAX_FIT_RMSE, PROFILE_DIR, Profile, write_profile
from simulator.analytic.profile import PROFILE_CHOICES, describe, load_profile, sample_sources, user_profile_dir
from simulator.cli import format as fmt
from simulator.cli.args import degree, name, seq_tokens
from simulator.cli.runopts import add_run_options
from workloads.registry import load_model


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, positive) -> None:
    p = sub.add_parser("calibrate", parents=[common], help="FLOP oracle, kernel timing and calibration profiles")
    cal = p.add_subparsers(dest="calibrate_command", required=True)
    q = cal.add_parser("flops", parents=[common], help="FLOPs counted on the real PyTorch layers vs the analytic")
    q.add_argument("model", type=name, help="preset slug or config.json")
    q.add_argument("--seq-len", type=seq_tokens, default=4096, help="tokens per sequence, e.g. 4096 or 32k")
    q = cal.add_parser("run", parents=[common], help="time the workload's kernels here and write a profile")
    q.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if present, else cpu")
    q.add_argument("--quick", action="store_true", help="a small case set (under a minute on a CPU)")
    q.add_argument("--model", type=name, default="deepseek-v3", help="whose GEMM shapes to time")
    q.add_argument(
        "--out", type=name, default=None, help="profile file (default: in $V3SIM_PROFILE_DIR or ~/.v3sim/profiles)"
    )
    q = cal.add_parser(
        "kernels", parents=[common], help="time the FP8 recipe's GEMM scalings and element-wise kernels here"
    )
    q.add_argument("--out", type=name, required=True, help="JSON file for the rows (written atomically)")
    q.add_argument("--small", action="store_true", help="tiny shapes: checks the code runs, measures nothing")
    q = cal.add_parser(
        "trace", parents=[common], help="a profile from a profiler trace: each class at the rate the trace ran it"
    )
    q.add_argument("trace", type=name, help="Chrome-trace JSON (e.g. deepseek-ai/profile-data train.json)")
    q.add_argument("--out", type=name, required=True, help="profile file to write (.json)")
    q.add_argument("--layers", type=degree, default=4, help="MoE layers per chunk in the trace (default 4, V3's)")
    add_run_options(q, positive)
    q = cal.add_parser("show", parents=[common], help="summarize a profile: fits, residuals, sources")
    q.add_argument(
        "profile", type=name, help=f"{', '.join(PROFILE_CHOICES[1:])}, a shipped profile's name, or a .json file"
    )
    q = cal.add_parser("refit", parents=[common], help="fit a measured profile again from its own samples")
    q.add_argument("profile", type=name, help="a measured profile: a shipped profile's name or a .json file")
    q.add_argument("--out", type=name, required=True, help="profile file to write (may be the one read)")
    q = cal.add_parser("publish", parents=[common], help="rebuild the shipped published profiles from their tables")
    q.add_argument(
        "--out-dir", type=name, default=str(PROFILE_DIR), help="where to write them (default: the shipped folder)"
    )


def cmd_calibrate(args: argparse.Namespace) -> dict[str, Any]:
    handlers = {"flops": _flops, "run": _run, "kernels": _kernels, "trace": _trace, "show": _show, "refit": _refit,
                "publish": _publish}  # fmt: skip
    return handlers[args.calibrate_command](args)


def _trace(args: argparse.Namespace) -> dict[str, Any]:
    """The trace's rate for every class it holds, the published profile's for the rest (explore.trace)."""
    from simulator.analytic.profile import published_for
    from simulator.cli.runopts import run_from_args
    from simulator.explore.trace import trace_profile

    check_output(args.out, (".json",), "--out")
    run = run_from_args(args)
    if not run.model.is_moe:
        raise ValueError(f"{run.model.name} is dense: calibrate trace holds MoE layers (a DualPipe chunk pair)")
    base = load_profile(published_for(run.node.gpu) if args.profile in (None, "published") else args.profile)
    profile = trace_profile(args.trace, run, base, args.layers)
    write_profile(profile, args.out)
    return {"command": "trace", "path": args.out, **_summary(profile)}


def _flops(args: argparse.Namespace) -> dict[str, Any]:
    from calibration.oracle import flop_comparison  # torch
    from simulator.cli.plausible import check_context

    spec = load_model(args.model)
    check_context(spec, args.seq_len, "--seq-len")
    return {
        "command": "flops",
        "model": spec.name,
        "seq_len": args.seq_len,
        "rows": flop_comparison(spec, args.seq_len),
    }


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    bar = "#" * (width * done // total) + "." * (width - width * done // total)
    print(f"\r[{bar}] {done}/{total} {label[:50]:<50}", end="" if done < total else "\n", file=sys.stderr)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from calibration.bench import default_device, device_info, run_benchmarks  # torch
    from calibration.fit import build_profile

    if args.out:
        check_output(args.out, (".json",), "--out")
    device = args.device or default_device()
    info = device_info(device)
    samples = run_benchmarks(device, quick=args.quick, model=args.model, progress=_progress)
    slug = (info["catalog_gpu"] or device).lower()
    profile = build_profile(
        samples,
        name=f"measured-{slug}",
        kind="measured",
        device=info["name"],
        catalog_gpu=info["catalog_gpu"],
        source=f"v3sim calibrate run --device {device}{' --quick' if args.quick else ''} --model {args.model}",
        torch_version=info["torch_version"],
        cuda_version=info["cuda_version"],
    )
    out = Path(args.out) if args.out else user_profile_dir() / f"{profile.name}.json"
    write_profile(profile, out)
    return {"command": "run", "path": str(out), **_summary(profile)}


def _kernels(args: argparse.Namespace) -> dict[str, Any]:
    check_output(args.out, (".json",), "--out")
    from calibration.kernels import measure  # torch

    result = measure(small=args.small, progress=_progress)
    text = dumps_json(result, indent=1) + "\n"
    write_atomic(args.out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return {"command": "kernels", "path": args.out, **result}


def _show(args: argparse.Namespace) -> dict[str, Any]:
    if args.profile == "sol":
        raise ValueError("sol is computed from a GPU's peaks, not stored; show a published or measured profile")
    profile = load_profile("h800-published" if args.profile == "published" else args.profile)
    return {"command": "show", **_summary(profile)}


def _refit(args: argparse.Namespace) -> dict[str, Any]:
    check_output(args.out, (".json",), "--out")
    from calibration.fit import refit_profile

    profile = refit_profile(load_profile(args.profile))
    write_profile(profile, args.out)
    return {"command": "refit", "path": args.out, **_summary(profile)}


def _publish(args: argparse.Namespace) -> dict[str, Any]:
    if not Path(args.out_dir).is_dir():
        raise ValueError(f"--out-dir {args.out_dir} is not a folder; create it first")
    from calibration.fit import PUBLISHED_DIR, published_profile

    written = []
    for table in sorted(PUBLISHED_DIR.glob("*.toml")):
        profile = published_profile(table)
        written.append(str(write_profile(profile, Path(args.out_dir) / f"{profile.name}.json")))
    return {"command": "publish", "written": written}


def _summary(profile: Profile) -> dict[str, Any]:
    """What a profile is, and its fits, as plain values."""
    return {
        "name": profile.name,
        "kind": profile.kind,
        "device": profile.device,
        "catalog_gpu": profile.catalog_gpu,
        "created": profile.created,
        "torch_version": profile.torch_version,
        "cuda_version": profile.cuda_version,
        "source": profile.source,
        "samples": len(profile.samples),
        "fits": describe(profile.fits, sample_sources(profile)),
        "elementwise_share": dict(profile.elementwise_share),
        "looked_up": looked_up(profile),
        "looked_up_decode": looked_up_decode(profile),
        "looked_up_gemms": timed_gpus() if profile.kind == "published" else {},
        "looked_up_bmms": bmm_timed_gpus() if profile.kind == "published" else {},
        "notes": list(profile.notes),
    }


def looked_up(profile: Profile) -> list[dict[str, Any]]:
    """The expert shapes a profile times as whole MoE operators (priced as timed in serving): per class, GPU and
    shape (hidden, expert width, experts on a GPU), the timings and their range of token-expert pairs."""
    shapes: dict[tuple[str, str, int, int, int], list[float]] = {}
    for s in profile.samples:
        if s.op == "moe":
            key = (s.kernel_class, s.timed_on or str(profile.catalog_gpu), s.k, s.n, s.groups)
            shapes.setdefault(key, []).append(s.m)
    return [
        {"class": c, "gpu": g, "hidden": h, "inter": i, "experts_per_gpu": e, "timings": len(m),
         "pairs_per_expert": [min(m), max(m)]}
        for (c, g, h, i, e), m in sorted(shapes.items())
    ]  # fmt: skip


def looked_up_decode(profile: Profile) -> list[dict[str, Any]]:
    """The decode-attention head shapes a profile times (priced as timed in serving's decode,
    `simulator.analytic.decodetables`): per class and shape (widths read per token and KV head, query heads a KV
    head), the timings and their range of cached lengths and (sequence, KV head) pairs."""
    shapes: dict[tuple[str, int, int, int], list[tuple[float, float]]] = {}
    for s in profile.samples:
        if s.op == "decode":
            shapes.setdefault((s.kernel_class, s.k, s.n, s.groups), []).append((s.m, s.items))
    return [
        {"class": c, "gpu": str(profile.catalog_gpu), "k": k, "n": n, "query_heads_per_kv_head": g,
         "timings": len(t), "cached_tokens": [min(m for m, _ in t), max(m for m, _ in t)],
         "pairs": [min(p for _, p in t), max(p for _, p in t)]}
        for (c, k, n, g), t in sorted(shapes.items())
    ]  # fmt: skip


def print_calibrate(out: dict[str, Any]) -> None:
    if out["command"] == "flops":
        print(f"{out['model']}: FLOPs per token, real PyTorch layers (FlopCounterMode) vs workloads.flops")
        rows = [
            {
                "component": r["component"],
                "analytic": f"{r['analytic_flops']:.6g}",
                "measured": f"{r['measured_flops']:.6g}",
                "rel error": f"{r['rel_error']:+.3%}",
            }
            for r in out["rows"]
        ]
        print(fmt.table(rows, ["component", "analytic", "measured", "rel error"]))
        print(f"note: {out['note']}")
        return
    if out["command"] == "kernels":
        print(f"wrote {out['path']}: {len(out['rows'])} kernels on {out['info']['device']}")
        rows = [
            {
                "class": r["kernel_class"],
                "kernel": r["name"],
                "shape": r["shape"],
                "how": r["how"],
                "us": f"{r['time_s'] * 1e6:.1f}",
                "TFLOPS": f"{r['tflops']:.4g}" if r["flops"] else "-",
                "GB/s": f"{r['gbytes_per_s']:.4g}",
            }
            for r in out["rows"]
        ]
        print(fmt.table(rows, ["class", "kernel", "shape", "how", "us", "TFLOPS", "GB/s"]))
        for note in out["skipped"]:
            print(f"skipped: {note}")
        return
    if out["command"] == "publish":
        print("\n".join(f"wrote {p}" for p in out["written"]))
        return
    if out["command"] in ("run", "refit", "trace"):
        print(f"wrote {out['path']}")
    print(f"{out['name']} ({out['kind']}): {out['device']}, {out['samples']} samples, created {out['created']}")
    if out["torch_version"]:
        print(f"torch {out['torch_version']}" + (f", CUDA {out['cuda_version']}" if out["cuda_version"] else ""))
    rows = [
        {
            "class": r["class"],
            "TFLOPS": "-" if r["tflops"] is None else f"{r['tflops']:.4g}",
            "GB/s": "-" if r["gb_per_s"] is None else f"{r['gb_per_s']:.4g}",
            "overhead us": f"{r['overhead_us']:.2f}",
            "ns per item": f"{r['item_ns']:.3g}" if r["item_ns"] else "-",
            "samples": r["samples"],
            "fit rms err": f"{r['rel_rmse']:.1%}",
            "fit": "passes" if r.get("passes", True) else "FAILS",
            "from": r["derived_from"] or r["source"],
        }
        for r in out["fits"]
    ]
    columns = ["class", "TFLOPS", "GB/s", "overhead us", "samples", "fit rms err", "fit", "from"]
    if any(r["item_ns"] for r in out["fits"]):  # a class that prices pieces of work one by one
        columns.insert(4, "ns per item")
    print(fmt.table(rows, columns))
    if any(not r.get("passes", True) for r in out["fits"]):
        print(
            f"a fit FAILS when it misses its own samples by more than {MAX_FIT_RMSE:.0%} rms: no run prices that class"
        )
    if out.get("looked_up"):
        by: dict[tuple[str, str], list[str]] = {}
        for r in out["looked_up"]:
            shape = f"{r['hidden']}x{r['inter']}/{r['experts_per_gpu']}"
            by.setdefault((r["class"], r["gpu"]), []).append(shape)
        for (cls, gpu), shapes in by.items():
            head = f"looked up (MoE operators timed on the {gpu}, hidden x width / experts a GPU): {cls}"
            print(f"{head} {', '.join(shapes)}")
    by_class: dict[tuple[str, str], list[str]] = {}
    for r in out.get("looked_up_decode", []):
        by_class.setdefault((r["class"], r["gpu"]), []).append(f"{r['k']}/{r['n']}x{r['query_heads_per_kv_head']}")
    for (cls, gpu), shapes in by_class.items():
        head = f"looked up (decode attention timed on the {gpu}, widths k/n x query heads a KV head): {cls}"
        print(f"{head} {', '.join(shapes)}")
    if out.get("looked_up_gemms"):
        timed = "; ".join(f"{gpu} {', '.join(c.removesuffix('_us') for c in cols)}"
                          for gpu, cols in out["looked_up_gemms"].items())  # fmt: skip
        print(f"looked up (dense GEMMs by shape, training's and TensorRT-LLM's; hwmodels/data/kernels/gemm): {timed}")
    if out.get("looked_up_bmms"):
        timed = "; ".join(f"{gpu} {', '.join(c.removesuffix('_us') for c in cols)}"
                          for gpu, cols in out["looked_up_bmms"].items())  # fmt: skip
        print(f"looked up (TensorRT-LLM's MLA decode BMMs by tokens and heads, hwmodels/data/kernels/mla_bmm): {timed}")
    if out["elementwise_share"]:
        shares = ", ".join(f"{cls} {share:.1%}" for cls, share in out["elementwise_share"].items())
        print(f"element-wise kernels, share of the HBM datasheet: {shares}")
    for note in out["notes"]:
        print(f"note: {note}")

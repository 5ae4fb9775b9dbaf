"""`v3sim ops MODEL --phase forward|backward|prefill|decode`: the operation list every model prices.

Training phases list one GPU's ops per micro-batch under a training layout (V3's EP and node limit by
default for a MoE model); serving phases one GPU's ops per step under the serving deployment `v3sim serve`
would pick (`simulator.presets`). FLOPs and bytes are for all the tokens the op runs on.
"""

from __future__ import annotations

import argparse
from typing import Any

from simulator.cli import format as fmt
from simulator.cli.args import degree, name, seq_tokens
from simulator.names import EP_DISPATCHERS, OPS_PHASES, PRECISIONS
from workloads.engines import engine_names


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, positive) -> None:
    p = sub.add_parser("ops", parents=[common], help="the operation list a model runs, op by op (what is priced)")
    p.add_argument("model", type=name, help="preset slug or config.json")
    p.add_argument("--phase", choices=OPS_PHASES, default="forward", help="default forward")
    p.add_argument("--tokens", type=positive, default=None, help="tokens per GPU (default: one sequence / a step)")
    p.add_argument("--seq-len", type=seq_tokens, default=4096, help="training sequence or serving context")
    p.add_argument("--tp", type=degree, default=None, help="tensor parallelism (serving: the deployment's)")
    p.add_argument("--ep", type=degree, default=None, help="expert parallelism (default: V3's 64, or serving's)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp8", help="GEMM precision (default fp8)")
    p.add_argument("--gpu", type=name, default=None, help="serving: the GPU whose node sets the deployment")
    p.add_argument(
        "--engine",
        choices=engine_names(),
        default="none",
        help="prefill or decode: the serving engine whose fusions launch the list (`v3sim serve --engine`)",
    )
    p.add_argument(
        "--ep-dispatcher", choices=EP_DISPATCHERS, default=None,
        help="forward or backward: the all-to-all dispatcher, as `v3sim train` takes it (default deepep-fp8, V3's)",
    )  # fmt: skip


def cmd_ops(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.analytic.serving import layer_fusions
    from simulator.cli.plausible import check_context
    from simulator.presets import V3_LAYOUT, V3_NODE_LIMIT, deployment, node_for
    from workloads.flops import cached_tokens, mean_attended_keys, windowed_keys
    from workloads.layout import ParallelLayout
    from workloads.ops import total, training_model_ops
    from workloads.registry import load_model
    from workloads.servingops import serving_model_ops

    spec = load_model(args.model)
    check_context(spec, args.seq_len, "--seq-len")
    node = node_for(args.gpu)
    if args.ep_dispatcher and args.phase not in ("forward", "backward"):
        raise ValueError(f"--ep-dispatcher sets a training all-to-all; --phase {args.phase} serves (drop it)")
    if args.engine != "none" and args.phase not in ("prefill", "decode"):
        raise ValueError(f"--engine sets how a serving engine launches the list; --phase {args.phase} trains (drop it)")
    if args.phase in ("forward", "backward"):
        dispatcher = args.ep_dispatcher or "deepep-fp8"
        tp = args.tp or 1
        ep = args.ep or (V3_LAYOUT.ep if spec.is_moe else 1)
        if spec.is_moe and spec.n_routed_experts % ep:
            raise ValueError(f"--ep {ep} does not divide {spec.n_routed_experts} routed experts")
        layout = ParallelLayout(tp=tp, ep=ep, dp=ep, gpus_per_node=node.gpus_per_node)
        tokens = args.tokens or args.seq_len / tp
        groups = training_model_ops(spec, args.phase, tokens, args.seq_len, layout, args.precision, V3_NODE_LIMIT,
                                    dispatcher)  # fmt: skip
        setup = {"tp": tp, "ep": ep, "precision": args.precision, "seq_len": args.seq_len}
        if spec.is_moe and ep > 1:
            setup["ep_dispatcher"] = dispatcher
    else:
        d = deployment(spec, node=node.name, tp=args.tp, engine=args.engine, **({"ep": args.ep} if args.ep else {}))
        ep = d.prefill_ep if args.phase == "prefill" else d.ep
        redundant = d.prefill_redundant if args.phase == "prefill" else d.redundant
        tokens = args.tokens or (args.seq_len if args.phase == "prefill" else 1)
        prefill = args.phase == "prefill"
        ctx = mean_attended_keys(spec, args.seq_len) if prefill else cached_tokens(spec, args.seq_len)
        groups = serving_model_ops(
            spec, args.phase, tokens, ctx, d.tp, ep, redundant, d.weight_dtype, d.kv_dtype, node.scaleup_domain_gpus,
            windowed_keys(spec, args.seq_len) if prefill else 0.0,
            layer_fusions(d.for_prefill() if prefill else d, args.phase, tokens),
        )  # fmt: skip
        setup = {"tp": d.tp, "ep": ep, "redundant": redundant, "weight_dtype": d.weight_dtype, "context": args.seq_len}
        if args.engine != "none":
            setup["engine"] = args.engine
    ops = [op.to_dict() | {"layer": g.layer, "count": g.count} for g in groups for op in g.ops]
    flops = sum(g.count * total(list(g.ops)) for g in groups)
    return {
        "model": spec.name,
        "phase": args.phase,
        "tokens": tokens,
        "setup": setup,
        "flops": flops,
        "flops_per_token": flops / tokens,
        "hbm_bytes": sum(g.count * total(list(g.ops), "hbm_bytes") for g in groups),
        "ops": ops,
    }


def print_ops(out: dict[str, Any]) -> None:
    setup = ", ".join(f"{k} {v}" for k, v in out["setup"].items())
    print(f"{out['model']} {out['phase']}: {out['tokens']:,.0f} tokens per GPU ({setup})")
    rows = [
        {
            "layer": f"{r['layer']} x{r['count']}",
            "op": r["name"] + ("" if r["launch"] == "own" else f" ({r['launch']})"),
            "kind": r["kind"],
            "phase": r["phase"],
            "prec": r["precision"],
            "shape m x n x k": f"{r['m']:,.0f} x {r['n']:,.0f} x {r['k']:,.0f}"
            + (f" x{r['groups']}" if r["groups"] > 1 else "")
            if r["m"]
            else "",
            "GFLOP": f"{r['flops'] / 1e9:,.2f}" if r["flops"] else "",
            "HBM MB": f"{r['hbm_bytes'] / 1e6:,.2f}" if r["hbm_bytes"] else "",
            "link MB (IB / NVLink)": f"{r['ib_bytes'] / 1e6:,.2f} / {r['nvlink_bytes'] / 1e6:,.2f}"
            if r["ib_bytes"] or r["nvlink_bytes"]
            else "",
        }
        for r in out["ops"]
    ]
    print(fmt.table(rows, list(rows[0])))
    print(
        f"total: {out['flops'] / 1e12:,.2f} TFLOP ({out['flops_per_token'] / 1e9:,.2f} GFLOP per token), "
        f"{out['hbm_bytes'] / 1e9:,.2f} GB of HBM traffic, every layer counted"
    )

"""`v3sim model|kv|memory|comm|hardware|topology|collective|report`: the workload, hardware and network
answers, and their printouts. Imported only when one of these commands runs (the engine with it)."""

from __future__ import annotations

import argparse
from typing import Any

from hwmodels.units import GIB
from simulator.analytic.summary import comm_summary, hardware_summary, kv_comparison, memory_summary, model_summary
from simulator.cli import format as fmt
from simulator.cli.plausible import check_context
from simulator.presets import V3_LAYOUT, V3_NODE_LIMIT
from workloads.layout import ParallelLayout
from workloads.registry import load_model
from workloads.spec import ModelSpec


def _model(model: str, **lengths: int) -> ModelSpec:
    """The model, once each of `lengths` ({flag: tokens per sequence}) is checked against its context."""
    spec = load_model(model)
    for flag, tokens in lengths.items():
        check_context(spec, tokens, flag)
    return spec


def cmd_model(args: argparse.Namespace) -> dict[str, Any]:
    return model_summary(_model(args.model, **{"--seq-len": args.seq_len}), args.seq_len, args.convention)


def print_model(out: dict[str, Any]) -> None:
    print(f"{out['model']}  ({out['source']})")
    print(
        f"  parameters  total {fmt.si(out['params_total'])}, activated {fmt.si(out['params_active'])} per token"
        f"  (with MTP: {fmt.si(out['params_total_with_mtp'])} / {fmt.si(out['params_active_with_mtp'])})"
    )
    print(
        f"  training    {fmt.si(out['train_flops_per_token'], 'FLOP')} per token at {out['seq_len']} tokens"
        f" ({out['convention']} convention); forward {fmt.si(out['forward_flops_per_token'], 'FLOP')}"
    )
    print(f"  KV cache    {out['kv_bytes_per_token']:,} B per token (bf16), {out['kv_bytes_per_token_fp8']:,} B (fp8)")
    b = out["breakdown"]
    rows = [
        {
            "component": c,
            "params": fmt.si(b["params_total"].get(c, 0)),
            "active": fmt.si(b["params_active"].get(c, 0)),
            "train FLOP/token": fmt.si(b["train_flops_per_token"].get(c, 0)),
        }
        for c in dict.fromkeys([*b["train_flops_per_token"], *b["params_total"]])
    ]
    print(fmt.table(rows, ["component", "params", "active", "train FLOP/token"]))


def cmd_kv(args: argparse.Namespace) -> list[dict[str, Any]]:
    specs = [_model(m, **{"--context": args.context}) for m in args.models]
    return kv_comparison(specs, args.context, args.batch, args.dtype)


def print_kv(rows: list[dict[str, Any]]) -> None:
    print(f"KV cache, {rows[0]['dtype']}, {rows[0]['batch']} x {rows[0]['context']} tokens")
    print(
        fmt.table(
            [
                {
                    "model": r["model"],
                    "attention": r["attention"],
                    "bytes/token": f"{r['kv_bytes_per_token']:,}",
                    "total": fmt.gib(r["kv_bytes_total"]),
                    "window": _window(r),
                }
                for r in rows
            ],
            ["model", "attention", "bytes/token", "total", "window"],
        )
    )


def _window(row: dict[str, Any]) -> str:
    """Which layers keep only their last tokens (bytes/token counts every layer; the total, what each keeps)."""
    if not row["sliding_window"]:
        return ""
    return f"{row['sliding_window_layers']} layers keep their last {row['sliding_window']:,}"


def _layout(args: argparse.Namespace) -> ParallelLayout:
    return ParallelLayout(
        tp=args.tp,
        pp=args.pp,
        dp=args.dp,
        ep=args.ep,
        zero_stage=args.zero,
        gpus_per_node=args.gpus_per_node,
        cp=args.cp,
    )


def cmd_memory(args: argparse.Namespace) -> dict[str, Any]:
    training = {
        "micro_batch": args.micro_batch,
        "recompute": args.recompute,
        "precision": args.precision,
        "inflight_microbatches": args.inflight,
        "param_copies": args.param_copies,
    }
    inference = {
        "batch": args.batch,
        "context": args.context,
        "weight_dtype": args.weight_dtype,
        "kv_dtype": args.kv_dtype,
    }
    spec = _model(args.model, **{"--seq-len": args.seq_len, "--context": args.context})
    return memory_summary(spec, _layout(args), args.seq_len, training, inference)


def print_memory(out: dict[str, Any]) -> None:
    lay = out["layout"]
    print(
        f"{out['model']} on {out['gpus']} GPUs: TP{lay['tp']} PP{lay['pp']} DP{lay['dp']} EP{lay['ep']}"
        f" ZeRO-{lay['zero_stage']}"
    )
    t = out["training"]
    print(
        f"  training, per GPU (stage {t['stage']}, the largest): "
        + ", ".join(
            f"{k} {fmt.gib(t[k])}" for k in ("weights", "gradients", "optimizer_states", "activations", "total")
        )
    )
    if "inference" in out:
        i = out["inference"]
        print(
            f"  inference, per GPU: weights {fmt.gib(i['weights'])}, KV cache {fmt.gib(i['kv_cache'])},"
            f" total {fmt.gib(i['total'])}"
        )


def cmd_comm(args: argparse.Namespace) -> dict[str, Any]:
    return comm_summary(load_model(args.model), _layout(args), args.node_limit, args.dispatch_dtype, args.combine_dtype)


def print_comm(out: dict[str, Any]) -> None:
    print(f"{out['model']}: communication volumes")
    ep = out["ep_bytes_per_token_per_moe_layer"]
    if ep:
        print(
            f"  EP per token and MoE layer ({out['ep_nodes_per_token']:.2f} nodes per token): "
            + ", ".join(f"{k} {fmt.si(v, 'B')}" for k, v in ep.items())
        )
    pp = out["pp_bytes_per_token_per_boundary"]
    print(
        f"  PP per token and stage boundary: forward {fmt.si(pp['forward'], 'B')},"
        f" backward {fmt.si(pp['backward'], 'B')}"
    )
    dp = out["dp_bytes_per_gpu_per_step"]
    print(f"  DP per GPU and step: gradients {fmt.gib(dp['payload'])}, sent {fmt.gib(dp['sent'])}")


def cmd_hardware(args: argparse.Namespace) -> list[dict[str, Any]]:
    return hardware_summary(args.kind, args.names)


def print_hardware(rows: list[dict[str, Any]]) -> None:
    if "peak_bf16_flop_per_s" in rows[0]:
        columns = ["name", "bf16 TFLOPS", "fp8 TFLOPS", "HBM", "HBM TB/s", "scale-up GB/s (bidir)", "SMs", "$/h"]
        table = [
            {
                "name": r["name"],
                "bf16 TFLOPS": f"{r['peak_bf16_flop_per_s'] / 1e12:g}",
                "fp8 TFLOPS": f"{r['peak_fp8_flop_per_s'] / 1e12:g}",
                "HBM": fmt.si(r["hbm_bytes"], "B")
                + (f" (datasheet {r['hbm_datasheet_bytes'] / 1e9:g} GB)" if r["hbm_datasheet_bytes"] else ""),
                "HBM TB/s": f"{r['hbm_bw_bytes_per_s'] / 1e12:g}",
                "scale-up GB/s (bidir)": f"{r['scaleup_bw_bytes_per_s_bidir'] / 1e9:g}",
                "SMs": r["sm_count"],
                "$/h": r["price_usd_per_gpu_hour"],
            }
            for r in rows
        ]
    elif "line_rate_bits_per_s" in rows[0]:
        columns = ["name", "Gb/s", "effective GB/s"]
        table = [
            {
                "name": r["name"],
                "Gb/s": f"{r['line_rate_bits_per_s'] / 1e9:g}",
                "effective GB/s": f"{r['effective_bw_bytes_per_s'] / 1e9:g}",
            }
            for r in rows
        ]
    elif "ports" in rows[0]:
        columns = ["name", "ports", "Gb/s", "latency ns", "price $", "link $"]
        table = [
            {
                "name": r["name"],
                "ports": r["ports"],
                "Gb/s": f"{r['port_rate_bits_per_s'] / 1e9:g}",
                "latency ns": f"{r['latency_s'] * 1e9:g}",
                "price $": f"{r['price_usd']:,.0f}",
                "link $": f"{r['isl_price_usd']:,.0f}",
            }
            for r in rows
        ]
    else:
        columns = ["name", "gpu", "gpus_per_node", "scaleup_domain_gpus", "nic", "nics_per_node"]
        table = rows
    print(fmt.table(table, columns))


def cmd_topology(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.network.summary import topology_summary  # networkx and scipy: only for this command

    return topology_summary(args.kind, args.radix, args.endpoints, args.planes, args.oversubscription, args.switch)


def print_topology(out: dict[str, Any]) -> None:
    tiers = ", ".join(f"{n:,} {t}" for t, n in out["switches_by_tier"].items())
    print(
        f"{out['kind']}  radix {out['radix']}, {out['planes']} plane(s), oversubscription {out['oversubscription']:g}"
    )
    print(f"  endpoints     {out['endpoints']:,}")
    print(f"  switches      {out['switches']:,} ({tiers})")
    print(f"  links         {out['links']:,} switch-to-switch")
    print(f"  cost          ${out['cost_usd'] / 1e6:,.1f}M, ${out['cost_per_endpoint_usd']:,.0f} per endpoint")
    print(f"  bisection     {fmt.si(out['bisection_bytes_per_s'], 'B/s')} one way")
    print(f"  diameter      {out['diameter_hops']} switch hops, {out['ecmp_paths']} equal-cost paths at that distance")


def cmd_collective(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.network.summary import collective_summary

    return collective_summary(
        args.collective,
        args.topology,
        args.gpus,
        args.bytes_per_gpu,
        radix=args.radix,
        planes=args.planes,
        oversubscription=args.oversubscription,
        node=args.node,
        switch=args.switch,
        ecmp=args.ecmp,
        seed=args.seed,
        forwarding=not args.no_forwarding,
    )


def print_collective(out: dict[str, Any]) -> None:
    ab = out["alpha_beta"]
    print(
        f"{out['collective']} of {fmt.si(out['bytes_per_gpu'], 'B')} per GPU on {out['gpus']} GPUs ({out['topology']})"
    )
    print(
        f"  flow-level   {out['time_s'] * 1e3:.3f} ms   algbw {fmt.si(out['algo_bytes_per_s'], 'B/s')}"
        f"   busbw {fmt.si(out['bus_bytes_per_s'], 'B/s')}   ({out['flows']:,} flows)"
    )
    if out["fast_time_s"] is not None:
        print(f"  fast model   {out['fast_time_s'] * 1e3:.3f} ms   (busiest link of the same routed transfers)")
    print(
        f"  alpha-beta   {ab['time_s'] * 1e3:.3f} ms   algbw {fmt.si(ab['algo_bytes_per_s'], 'B/s')}"
        f"   busbw {fmt.si(ab['bus_bytes_per_s'], 'B/s')}"
    )
    if out["timed_s"] is not None:
        where = "nccl-tests in one node: hwmodels/data/kernels/collectives.toml"
        print(f"  as timed     {out['timed_s'] * 1e3:.3f} ms   ({where})")


def cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    """DeepSeek-V3 on its published 2,048 x H800 layout: the default the dashboard will open on."""
    spec = load_model("deepseek-v3")
    from simulator.analytic.profile import rates_for
    from simulator.analytic.report import estimate
    from simulator.runspec import v3_pretraining

    run = v3_pretraining()
    training = estimate(run, rates_for(args.profile, run.node.gpu)).to_dict()
    training.pop("explain")
    return {
        "model": model_summary(spec, 4096, "exact"),
        "comm": comm_summary(spec, V3_LAYOUT, V3_NODE_LIMIT),
        "training": training,
    }


def print_report(out: dict[str, Any]) -> None:
    print("DeepSeek-V3 on 2,048 H800 GPUs (PP16, EP64 over 8 nodes, ZeRO-1 DP, DualPipe, 4K sequences)\n")
    print_model(out["model"])
    print()
    print_comm(out["comm"])
    print("\nTraining estimate (v3sim train for options, --explain for sources):")
    from simulator.cli.train import print_train

    print_train(out["training"])
    mem = out["training"]["memory_per_gpu_bytes"]
    print("memory on the fullest GPU: " + ", ".join(f"{k} {v / GIB:.2f} GiB" for k, v in mem.items()))

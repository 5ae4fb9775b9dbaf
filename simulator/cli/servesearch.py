"""`v3sim serve-search`: every deployment of a model on a node at an SLO, ranked by $ per million output
tokens, beside DeepSeek's published one."""

from __future__ import annotations

import argparse
from typing import Any

from simulator.cli import format as fmt
from simulator.cli.args import fraction, name, positive_number, seq_tokens
from simulator.cli.serve import add_step_options

SHOWN = 10  # rows printed by default


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, positive) -> None:
    p = sub.add_parser(
        "serve-search", parents=[common], help="rank serving deployments (EP, redundancy, TP, MTP) at an SLO"
    )
    p.add_argument("--model", type=name, default="deepseek-v3", help="preset slug or config.json (default deepseek-v3)")
    p.add_argument(
        "--gpu", type=name, default=None, help="GPU: its '<gpu>-ib' node, or gb200's NVL72 rack (default h800)"
    )
    p.add_argument("--node", type=name, default=None, help="node catalog name or TOML file (default: the --gpu's node)")
    p.add_argument("--tpot-ms", type=positive_number, required=True, help="decode target: time per output token")
    p.add_argument(
        "--ttft-ms", type=positive_number, default=None, help="prefill target: time to first token (default: none)"
    )
    p.add_argument(
        "--context", type=seq_tokens, default=4096, help="tokens per sequence, e.g. 4096 or 128k (default 4096)"
    )
    p.add_argument(
        "--output-tokens",
        type=positive,
        default=None,
        help="output tokens per request: sizes prefill vs decode pools (default: none given)",
    )
    p.add_argument("--cache-hit", type=fraction, default=0.0, help="share of prompt tokens from the prompt cache")
    p.add_argument("--mtp-acceptance", type=fraction, default=None, help="MTP draft acceptance rate (default 0.85)")
    p.add_argument(
        "--colocated",
        action="store_true",
        help="rank co-located pools: prefill chunks ride each layout's decode steps, no prefill pool (needs "
        "--output-tokens)",
    )
    add_step_options(p, positive)
    p.add_argument("--top", type=positive, default=SHOWN, help=f"deployments to show (default {SHOWN})")
    p.add_argument(
        "--profile",
        type=name,
        default=None,
        help="kernel profile: sol, published, measured, a .json file (default: published for the GPU)",
    )


def cmd_serve_search(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.cli.plausible import check_context
    from simulator.explore.servesearch import search
    from workloads.registry import load_model

    check_context(load_model(args.model), args.context, "--context")

    report = search(
        args.model,
        args.gpu,
        args.node,
        tpot_ms=args.tpot_ms,
        ttft_ms=args.ttft_ms,
        context=args.context,
        output_tokens=args.output_tokens,
        cache_hit=args.cache_hit,
        mtp_acceptance=args.mtp_acceptance,
        profile=args.profile,
        top=args.top,
        mtp_tokens=args.mtp_tokens or 1,
        overlap=args.overlap,
        expert_imbalance=args.expert_imbalance,
        expert_tp=args.expert_tp,
        offload_weights=args.offload_weights,
        attention_dtype=args.attention_dtype,
        activation_dtype=args.activation_dtype,
        window_kv=args.window_kv,
        weight_dtype=args.weight_dtype,
        dense_weight_dtype=args.dense_weight_dtype,
        colocated=args.colocated,
        engine=args.engine,
        fp8_recipe=args.fp8_recipe,
    )
    return {"tpot_target_s": args.tpot_ms / 1e3, **report.to_dict()}


def _layout(row: dict[str, Any]) -> str:
    """EP144+32 / TP1 / MTP: the decode layout in one cell."""
    mtp = " / MTP" if row["mtp"] else ""
    return f"EP{row['ep']}+{row['redundant']} / TP{row['tp']}{mtp}"


def _summary(row: dict[str, Any]) -> str:
    return (
        f"{_layout(row)}, batch {row['batch_per_gpu']}, TPOT {row['tpot_s'] * 1e3:.1f} ms, "
        f"{row['output_tokens_per_s_per_gpu']:,.0f} tok/s per GPU, ${row['usd_per_million_output_tokens']:.3f}/M output"
    )


def print_serve_search(out: dict[str, Any]) -> None:
    ranked, skipped = out["ranked"], out["skipped"]
    eps = out["eps_tried"]
    sizes = f"EP{eps[0]}" if len(eps) == 1 else f"EP {eps[0]}-{eps[-1]}, {len(eps)} sizes"
    colocated = not out["prefill"]
    print(
        f"{out['tried']} {'co-located' if colocated else 'decode'} layouts tried ({sizes}) in "
        f"{out['search_s'] * 1e3:.0f} ms, TPOT <= {out['tpot_target_s'] * 1e3:g} ms; ranked by $ per million output "
        "tokens:"
    )
    for reason, n in skipped.items():
        print(f"  {n:>5} skipped: {reason}")
    rows = [
        {
            "rank": r["rank"],
            "decode EP+redundant / TP / MTP": _layout(r),
            "batch": r["batch_per_gpu"],
            "TPOT ms": f"{r['tpot_s'] * 1e3:.1f}",
            "tok/s/GPU": f"{r['output_tokens_per_s_per_gpu']:,.0f}",
            "tok/s/node": f"{r['output_tokens_per_s_per_node']:,.0f}",
            "tok/s/user": f"{r['output_tokens_per_s_per_user']:.1f}",
            "$/M output": f"{r['usd_per_million_output_tokens']:.3f}",
            **(
                {"TTFT ms": f"{r['ttft_s'] * 1e3:,.0f}"}
                if colocated
                else {"prefill EP": f"EP{r['prefill_ep']}+{r['prefill_redundant']}"}
            ),
            "": "<- frontier" if r["frontier"] else "",
        }
        for r in ranked
    ]
    print("\n".join(line.rstrip() for line in fmt.table(rows, list(rows[0])).splitlines()))
    best, published = ranked[0], out["published"]
    if "prefill_gpus_per_decode_gpu" in best:
        print(
            f"\nbest: {best['prefill_gpus_per_decode_gpu']:.2f} prefill GPUs per decode GPU, "
            f"${best['usd_per_request']:.5f} per request"
        )
    if colocated:
        print(
            f"\nbest: one pool, {best['prefill_chunk_tokens_per_gpu']:,.0f} prompt tokens per GPU each step, "
            f"{best['input_tokens_per_s_per_gpu']:,.0f} input tok/s per GPU, ${best['usd_per_request']:.5f} per request"
        )
        return
    if published is None:
        print(
            "\nDeepSeek's published deployment (EP144 +32, prefill EP32) is not a candidate here (another model or "
            "node) or misses the targets"
        )
        return
    gain = published["usd_per_million_output_tokens"] / best["usd_per_million_output_tokens"]
    print(
        f"\nDeepSeek's published deployment (EP144 +32, prefill EP32) as priced here: {_summary(published)} "
        f"(rank {published['rank']}); best found: {_summary(best)} ({gain:.2f}x better)"
    )

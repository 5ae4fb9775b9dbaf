"""`v3sim serve`: the serving model's options, defaults per model and GPU, and its printout."""

from __future__ import annotations

import argparse
from typing import Any

from hwmodels.names import TOPOLOGY_KINDS
from simulator.cli.args import degree, fraction, integer, name, nonnegative, positive_number, seq_tokens, sequences
from simulator.names import SERVE_PHASES as PHASES
from simulator.servespec import CACHE_TIERS
from workloads.dtypes import DTYPE_BYTES


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, positive) -> None:
    p = sub.add_parser("serve", parents=[common], help="serving throughput, latency, KV capacity and cost per token")
    p.add_argument("--model", type=name, default="deepseek-v3", help="preset slug or config.json (default deepseek-v3)")
    p.add_argument(
        "--gpu", type=name, default=None, help="GPU: its '<gpu>-ib' node, or gb200's NVL72 rack (default h800)"
    )
    p.add_argument("--node", type=name, default=None, help="node catalog name or TOML file")
    p.add_argument("--phase", choices=PHASES, default="both", help="prefill, decode, or both (disaggregated pools)")
    p.add_argument("--ep", type=degree, default=None, help="decode expert parallelism (V3 on H800: 320)")
    p.add_argument("--redundant", type=integer, default=None, help="extra expert slots in the decode pool (V3: 64)")
    p.add_argument("--prefill-ep", type=degree, default=None, help="prefill expert parallelism (V3 on H800: 32)")
    p.add_argument("--prefill-redundant", type=integer, default=None, help="extra expert slots in prefill (V3: 32)")
    p.add_argument("--tp", type=degree, default=None, help="attention tensor parallelism (default: MLA 1, GQA 8)")
    p.add_argument("--batch", type=sequences, default=None, help="decode sequences per GPU (default: cache and TPOT)")
    p.add_argument("--tpot-ms", type=positive_number, default=None, help="decode target: picks the largest batch")
    p.add_argument("--ttft-ms", type=positive_number, default=None, help="prefill target: picks the tokens per forward")
    p.add_argument(
        "--prefill-tokens", type=seq_tokens, default=None, help="new prompt tokens per GPU per prefill forward (16384)"
    )
    p.add_argument(
        "--cache-tier",
        choices=CACHE_TIERS,
        default="auto",
        help="where cached prompt KV is read from (auto: storage "
        "where the node has a shared store, e.g. 3FS on h800-ib, else host memory over PCIe)",
    )
    p.add_argument("--topology", choices=TOPOLOGY_KINDS, default=None, help="fabric the prefill->decode KV crosses")
    p.add_argument("--oversubscription", type=positive_number, default=1.0, help="the fabric's taper (with --topology)")
    p.add_argument("--context", type=seq_tokens, default=4096, help="tokens per sequence (default 4096)")
    p.add_argument("--mtp-acceptance", type=fraction, default=None, help="MTP draft acceptance rate (V3: 0.85-0.9)")
    p.add_argument("--cache-hit", type=fraction, default=0.0, help="share of prompt tokens from the prompt cache")
    p.add_argument(
        "--output-tokens", type=positive, default=None, help="output tokens per request: sizes prefill vs decode pools"
    )
    p.add_argument("--weight-dtype", choices=list(DTYPE_BYTES), default=None, help="default fp8 where supported")
    p.add_argument("--kv-dtype", choices=list(DTYPE_BYTES), default="bf16")
    p.add_argument("--no-overlap", action="store_true", help="no two-micro-batch overlap of compute and comm")
    p.add_argument("--price-per-gpu-hour", type=nonnegative, default=None, help="USD (default: the catalog price)")
    p.add_argument("--profile", type=name, default=None, help="kernel profile: sol, published, measured, a .json file")


def cmd_serve(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.analytic.serving import serve
    from simulator.presets import SERVING_LAYOUT_OPTIONS, deployment

    s = deployment(
        args.model,
        args.gpu,
        args.node,
        args.weight_dtype,
        overlap=not args.no_overlap,
        batch=args.batch,
        context=args.context,
        mtp_acceptance=args.mtp_acceptance,
        kv_dtype=args.kv_dtype,
        cache_hit=args.cache_hit,
        output_tokens=args.output_tokens,
        price_per_gpu_hour=args.price_per_gpu_hour,
        tpot_ms=args.tpot_ms,
        ttft_ms=args.ttft_ms,
        prefill_tokens=args.prefill_tokens,
        cache_tier=args.cache_tier,
        topology=args.topology,
        oversubscription=args.oversubscription,
        **{name: getattr(args, name) for name in SERVING_LAYOUT_OPTIONS},
    )
    return serve(s, args.profile, args.phase)


LIMIT_WORDS = {
    "kv": "the KV cache is full",
    "tpot": "the TPOT target binds",
    "batch": "as given",
    "ttft": "the TTFT target binds",
    "given": "as given",
    "default": "default",
}


def print_serve(out: dict[str, Any]) -> None:
    print(f"{out['model']} on {out['node']} ({out['gpu']}), context {out['context']:,} tokens, phase {out['phase']}")
    layout = f"  layout        attention tp{out['tp']}, decode ep{out['ep']}, prefill ep{out['prefill_ep']}"
    if out["redundant"] or out["prefill_redundant"]:
        layout += f" (+{out['redundant']} / +{out['prefill_redundant']} redundant expert slots)"
    print(layout)
    for note in out["notes"]:
        print(f"  note          {note}")
    weights, kv = out["weights_gb_per_gpu"], out["kv_gb_per_sequence"]
    print(f"  memory/GPU    {weights:.1f} GB weights; {kv:.3f} GB KV per sequence")
    print(f"  KV capacity   {out['max_concurrent_sequences_per_gpu']:,} concurrent sequences per GPU")
    if "tpot_s" in out:
        per_gpu, per_node = out["output_tokens_per_s_per_gpu"], out["output_tokens_per_s_per_node"]
        print(
            f"  decode        batch {out['batch_per_gpu']} per GPU ({LIMIT_WORDS[out['decode_limit']]}; step "
            f"{out['decode_bound']}-bound): TPOT {out['tpot_s'] * 1e3:.1f} ms, {per_gpu:,.0f} tok/s per GPU, "
            f"{per_node:,.0f} per node of {out['gpus_per_node']}"
        )
        if "mtp_throughput_gain" in out:
            step, gain = out["mtp_tokens_per_step"], out["mtp_throughput_gain"]
            print(f"  MTP           {step:.2f} tokens per step, throughput x{gain:.2f}")
        print(f"  output cost   ${out['usd_per_million_output_tokens']:.3f} per million tokens")
    if "input_tokens_per_s_per_gpu" in out:
        print(
            f"  prefill       {out['input_tokens_per_s_per_gpu']:,.0f} tok/s per GPU, "
            f"{out['input_tokens_per_s_per_node']:,.0f} per node (cache hits {out['cache_hit']:.0%} included); "
            f"{out['prefill_tokens_per_gpu']:,} new tokens per GPU per forward ({LIMIT_WORDS[out['prefill_limit']]}), "
            f"TTFT {out['ttft_s'] * 1e3:,.0f} ms"
        )
        print(f"  input cost    ${out['usd_per_million_input_tokens']:.3f} per million tokens")
    if "kv_transfer" in out:
        kv_move = out["kv_transfer"]
        print(
            f"  KV transfer   {kv_move['gb_per_request']:.3f} GB per request, {kv_move['s_per_request'] * 1e3:.1f} ms "
            f"({kv_move['topology']}); {kv_move['prefill_nic_share']:.1%} of a prefill GPU's NIC"
        )
    if "usd_per_request" in out:
        ratio, usd = out["prefill_gpus_per_decode_gpu"], out["usd_per_request"]
        print(f"  disaggregated {ratio:.2f} prefill GPUs per decode GPU; ${usd:.5f} per request")
    if out["network_bound_tpot_s"] is not None:
        bound = out["network_bound_tpot_s"] * 1e3
        print(f"  network bound TPOT {bound:.2f} ms (ISCA 2025 method: EP traffic of 32 tokens per GPU)")

"""`v3sim serve`: the serving model's options, defaults per model and GPU, and its printout."""

from __future__ import annotations

import argparse
from typing import Any

from hwmodels.names import TOPOLOGY_KINDS
from simulator.cli.args import (
    batch_sizes,
    degree,
    fraction,
    fractions,
    integer,
    name,
    nonnegative,
    positive_number,
    positive_up_to,
    seq_tokens,
    sequences,
)
from simulator.limits import MAX_SERVE_REQUESTS
from simulator.names import HARNESSES
from simulator.names import SERVE_PHASES as PHASES
from simulator.servespec import ATTENTION_DTYPES, CACHE_TIERS, OVERLAP_MODES, SERVING_FP8_RECIPES, WINDOW_KV_MODES
from workloads.dtypes import ACTIVATION_DTYPES, KV_DTYPES, WEIGHT_DTYPES
from workloads.engines import engine_names

REQUESTS = positive_up_to(MAX_SERVE_REQUESTS, " requests (one simulation stays within seconds)")
# the event model's, with --rate (or --offline)
LOAD_OPTIONS = ("input_len", "output_len", "requests", "seed", "prefill_instances", "cuda_graph_batches")
HARNESS_SETS = ("batch", "batch_per_instance", "tpot_ms", "ttft_ms", "prefill_tokens", "cuda_graph_batches")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, positive) -> None:
    p = sub.add_parser("serve", parents=[common], help="serving throughput, latency, KV capacity and cost per token")
    p.add_argument("--model", type=name, default="deepseek-v3", help="preset slug or config.json (default deepseek-v3)")
    p.add_argument(
        "--gpu", type=name, default=None, help="GPU: its '<gpu>-ib' node, or gb200's NVL72 rack (default h800)"
    )
    p.add_argument("--node", type=name, default=None, help="node catalog name or TOML file (default: the --gpu's node)")
    p.add_argument("--phase", choices=PHASES, default="both", help="prefill, decode, or both (disaggregated pools)")
    p.add_argument(
        "--ep",
        type=degree,
        default=None,
        help="decode expert parallelism (default: V3 on 8-GPU nodes 320, on an NVL72 rack 72; another MoE "
        "the node's GPUs; dense 1)",
    )
    p.add_argument(
        "--redundant",
        type=integer,
        default=None,
        help="extra expert slots in the decode pool (default: V3 on 8-GPU nodes 64, NVL72 32; with --ep alone, "
        "the fewest that spread the experts evenly)",
    )
    p.add_argument(
        "--prefill-ep",
        type=degree,
        default=None,
        help="prefill expert parallelism (default: V3 on 8-GPU nodes 32, NVL72 72; as --ep otherwise)",
    )
    p.add_argument(
        "--prefill-redundant",
        type=integer,
        default=None,
        help="extra expert slots in prefill (default: V3 32; as --redundant otherwise)",
    )
    p.add_argument(
        "--tp",
        type=degree,
        default=None,
        help="attention tensor parallelism (default: MLA 1; GQA the largest of 8, 4, 2 that divides the node "
        "and the heads)",
    )
    p.add_argument("--batch", type=sequences, default=None, help="decode sequences per GPU (default: cache and TPOT)")
    p.add_argument(
        "--batch-per-instance",
        type=sequences,
        default=None,
        help="decode sequences per instance (the EP group, or the TP group when larger): e.g. 1 for one stream "
        "(default: from --batch)",
    )
    p.add_argument(
        "--tpot-ms",
        type=positive_number,
        default=None,
        help="decode target: picks the largest batch (default: none, the KV cache sets the batch)",
    )
    p.add_argument(
        "--ttft-ms",
        type=positive_number,
        default=None,
        help="prefill target: picks the tokens per forward (default: none)",
    )
    p.add_argument(
        "--prefill-tokens",
        type=seq_tokens,
        default=None,
        help="new prompt tokens per GPU per prefill forward, e.g. 16k (default: chosen, 16384 without --ttft-ms)",
    )
    p.add_argument(
        "--cache-tier",
        choices=CACHE_TIERS,
        default="auto",
        help="where cached prompt KV is read from (auto: storage "
        "where the node has a shared store, e.g. 3FS on h800-ib, else host memory over PCIe)",
    )
    p.add_argument(
        "--topology",
        choices=TOPOLOGY_KINDS,
        default=None,
        help="fabric the prefill->decode KV crosses (default: none, at the NIC's rate)",
    )
    p.add_argument("--oversubscription", type=positive_number, default=1.0, help="the fabric's taper (with --topology)")
    p.add_argument(
        "--context", type=seq_tokens, default=4096, help="tokens per sequence, e.g. 4096 or 128k (default 4096)"
    )
    p.add_argument(
        "--mtp-acceptance",
        type=fractions,
        default=None,
        help="MTP draft acceptance (V3: 0.85-0.9), or one per draft depth, each given the ones before: 0.85,0.7 "
        "(default: none, no speculative decoding)",
    )
    p.add_argument("--cache-hit", type=fraction, default=0.0, help="share of prompt tokens from the prompt cache")
    p.add_argument(
        "--output-tokens",
        type=positive,
        default=None,
        help="output tokens per request: sizes prefill vs decode pools (default: none given)",
    )
    p.add_argument("--kv-dtype", choices=list(KV_DTYPES), default="bf16", help="KV cache")
    p.add_argument(
        "--colocated",
        action="store_true",
        help="prefill and decode on the same GPUs: each decode step carries a chunk of prompt tokens through the "
        "same weights (needs --output-tokens; the decode --ep and --redundant serve both)",
    )
    add_step_options(p, positive)
    p.add_argument("--price-per-gpu-hour", type=nonnegative, default=None, help="USD (default: the catalog price)")
    p.add_argument(
        "--profile",
        type=name,
        default=None,
        help="kernel profile: sol, published, measured, a .json file (default: published for the GPU)",
    )
    p.add_argument(
        "--rate",
        type=positive_number,
        default=None,
        help="requests/s at one decode instance: simulate the load (default: none, the analytic answer alone)",
    )
    p.add_argument(
        "--input-len",
        type=name,
        default=None,
        help="prompt lengths: N, uniform:LO-HI, exp:MEAN, lognormal:MEDIAN,SIGMA or trace:FILE.csv "
        "(default: the context less the mean output)",
    )
    p.add_argument(
        "--output-len", type=name, default=None, help="output lengths, as --input-len (default: --output-tokens)"
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="every request queued at once at the co-located pool, run to the last token (trtllm-bench's "
        "throughput run): output tokens over the whole run, ramp-up and drain included (needs --colocated)",
    )
    p.add_argument(
        "--harness",
        choices=HARNESSES,
        default=None,
        help="with --offline: the pool as trtllm-bench sets it up when its options leave them unset (its heuristic's "
        "max batch and max tokens per step, whole prompts, decode steps padded to CUDA graphs) (default: none)",
    )
    p.add_argument(
        "--no-chunked-prefill",
        dest="chunked_prefill",
        action="store_false",
        help="with --rate or --offline: a prompt enters a step whole (TensorRT-LLM's default) (default: chunked)",
    )
    p.add_argument(
        "--cuda-graph-batches",
        type=batch_sizes,
        default=None,
        help="with --rate or --offline: batch sizes with captured CUDA graphs, e.g. 1,2,4,8,...,512,1024; a step of "
        "decoding alone runs padded to the next (default: none, each step at its own batch)",
    )
    p.add_argument(
        "--requests", type=REQUESTS, default=None, help="requests simulated with --rate or --offline (default 2000)"
    )
    p.add_argument(
        "--seed", type=integer, default=None, help="seed of the arrival, length and routing draws (default 0)"
    )
    p.add_argument(
        "--prefill-instances", type=degree, default=None, help="prefill instances (default: the fewest that keep up)"
    )


def add_step_options(p: argparse.ArgumentParser, positive) -> None:
    """How a serving step runs, shared by `serve` and `serve-search`: weight dtype, overlap, MTP depth, expert
    imbalance, expert TP, weight offload, attention dtype, the KV pool of sliding-window layers."""
    p.add_argument(
        "--weight-dtype",
        choices=list(WEIGHT_DTYPES),
        default=None,
        help="weights (default: fp8 where the GPU has fp8, else bf16); fp4 is NVFP4 with its block scales "
        "(Blackwell: b200, gb200; its GEMMs at the fp8 fits times the FP4/FP8 datasheet ratio, ASSUMED)",
    )
    p.add_argument(
        "--dense-weight-dtype",
        choices=list(WEIGHT_DTYPES),
        default=None,
        help="the GEMMs outside the MoE blocks (attention, the dense layers' MLPs) where the checkpoint keeps them "
        "wider than its experts: NVIDIA's FP4 DeepSeek-R1 fp8, GPT-OSS's MXFP4 bf16 (default: --weight-dtype)",
    )
    p.add_argument(
        "--activation-dtype",
        choices=ACTIVATION_DTYPES,
        default=None,
        help="the quantized weights' GEMM activations and compute (default: the weights' own, W8A8 / W4A4): fp8 "
        "under fp4 weights (W4A8: MXFP8 x MXFP4 runs at the FP8 rate), bf16 for weight-only kernels (W4A16)",
    )
    p.add_argument(
        "--overlap",
        choices=OVERLAP_MODES,
        default="auto",
        help="dispatch/combine vs compute: auto (the faster of one "
        "and two micro-batches), two-batch (DeepSeek's), single-batch (combine under the shared expert), none",
    )
    p.add_argument(
        "--mtp-tokens", type=positive, default=None, help="MTP draft tokens per step (default 1; with --mtp-acceptance)"
    )
    p.add_argument(
        "--expert-imbalance",
        type=positive_number,
        default=1.0,
        help="busiest GPU's routed-expert load / mean (its experts and all-to-all)",
    )
    p.add_argument(
        "--fp8-recipe",
        choices=SERVING_FP8_RECIPES,
        default="block",
        help="how the checkpoint's FP8 GEMMs scale their operands: block (DeepSeek's, Qwen3's 1x128 / 128x128 "
        "blocks) or tensor (one scale per tensor, NVIDIA's ModelOpt FP8 checkpoints); picks the timed kernel "
        "where the engine's GEMMs are looked up (--engine trtllm)",
    )
    p.add_argument(
        "--attention-dtype",
        choices=ATTENTION_DTYPES,
        default="bf16",
        help="prefill attention compute: bf16, or fp8 (FlashAttention-3's fp8 forward)",
    )
    p.add_argument(
        "--window-kv",
        choices=WINDOW_KV_MODES,
        default="window",
        help="what the KV pool holds of a sliding-window layer: its last window (default), or the whole context "
        "as an engine with one pool does (the attention reads the window either way)",
    )
    p.add_argument("--expert-tp", type=degree, default=1, help="GPUs each expert is split over, inside a node")
    p.add_argument(
        "--attn-tp-scattered",
        action="store_true",
        help="with --tp > 1: attention's input scattered over the TP group, MLA's down projections on each GPU's "
        "share of the tokens and their latent all-gathered (SGLang --enable-attn-tp-input-scattered) (default: "
        "every GPU runs them on all the tokens)",
    )
    p.add_argument(
        "--offload-weights", action="store_true", help="prefill streams the weights that do not fit from host memory"
    )
    p.add_argument(
        "--engine",
        choices=engine_names(),
        default="none",
        help="the serving engine: which kernels it fuses (MLA's down projections, the norms into the all-reduces) "
        "and runs on a second stream (the shared experts), as workloads/data/engines.toml sources each (default "
        "none: every kernel apart)",
    )


def cmd_serve(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.analytic.serving import serve
    from simulator.cli.plausible import check_context
    from simulator.presets import SERVING_LAYOUT_OPTIONS, deployment
    from workloads.registry import load_model

    if args.rate is not None and args.phase != "both":
        raise ValueError(f"--rate simulates the prefill and decode pools together; use --phase both, not {args.phase}")
    if args.offline and (args.rate is not None or args.prefill_instances is not None or not args.colocated):
        wrong = "--rate" if args.rate is not None else "--prefill-instances" if args.prefill_instances else None
        raise ValueError(f"--offline queues every request at once: drop {wrong}" if wrong else
                         "--offline runs one co-located pool: add --colocated")  # fmt: skip
    if (
        args.rate is None
        and not args.offline
        and (given := [f"--{k.replace('_', '-')}" for k in LOAD_OPTIONS if getattr(args, k) is not None])
    ):
        raise ValueError(f"{', '.join(given)} describe the load: give --rate QPS (or --offline) too")
    if not args.chunked_prefill and args.rate is None and not args.offline:
        raise ValueError("--no-chunked-prefill shapes the event model's steps: give --rate QPS (or --offline) too")
    if args.harness is not None:
        if not args.offline:
            raise ValueError(f"--harness {args.harness} sets up an offline run: add --offline")
        if given := [f"--{k.replace('_', '-')}" for k in HARNESS_SETS if getattr(args, k) is not None] + (
            [] if args.chunked_prefill else ["--no-chunked-prefill"]
        ):
            raise ValueError(f"--harness {args.harness} sets the batch, steps and CUDA graphs: drop {', '.join(given)}")
    check_context(load_model(args.model), args.context, "--context")
    depths = args.mtp_acceptance or ()
    if len(depths) > 1 and args.mtp_tokens not in (None, len(depths)):
        raise ValueError(f"--mtp-acceptance gives {len(depths)} depths but --mtp-tokens {args.mtp_tokens}; drop one")
    s = deployment(
        args.model,
        args.gpu,
        args.node,
        args.weight_dtype,
        dense_weight_dtype=args.dense_weight_dtype,
        overlap=args.overlap,
        mtp_tokens=len(depths) if len(depths) > 1 else args.mtp_tokens or 1,
        mtp_acceptance_by_depth=depths if len(depths) > 1 else None,
        expert_imbalance=args.expert_imbalance,
        offload_weights=args.offload_weights,
        expert_tp=args.expert_tp,
        attn_tp_scattered=args.attn_tp_scattered,
        engine=args.engine,
        batch=args.batch,
        batch_per_instance=args.batch_per_instance,
        context=args.context,
        mtp_acceptance=depths[0] if depths else None,
        kv_dtype=args.kv_dtype,
        attention_dtype=args.attention_dtype,
        fp8_recipe=args.fp8_recipe,
        activation_dtype=args.activation_dtype,
        window_kv=args.window_kv,
        cache_hit=args.cache_hit,
        output_tokens=args.output_tokens,
        price_per_gpu_hour=args.price_per_gpu_hour,
        tpot_ms=args.tpot_ms,
        ttft_ms=args.ttft_ms,
        prefill_tokens=args.prefill_tokens,
        cache_tier=args.cache_tier,
        topology=args.topology,
        oversubscription=args.oversubscription,
        colocated=args.colocated,
        chunked_prefill=args.chunked_prefill,
        graph_batches=args.cuda_graph_batches or (),
        **{name: getattr(args, name) for name in SERVING_LAYOUT_OPTIONS},
    )
    if args.colocated and args.phase != "both":
        raise ValueError(f"--colocated prices one pool running both phases; drop --phase {args.phase}")
    out = serve(s, args.profile, args.phase)
    if args.rate is not None:
        out["load"] = _load(s, args)
    if args.offline:
        out["offline"] = _offline(s, args)
    return out


def _offline(s: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The offline run of --requests (default 2000) queued at once (the lengths and seed it was given)."""
    from simulator.analytic.profile import rates_for
    from simulator.events.offline import simulate_offline

    given = {k: getattr(args, k) for k in ("input_len", "output_len", "seed") if getattr(args, k) is not None}
    rates = rates_for(args.profile, s.node.gpu)
    return simulate_offline(s, rates, args.requests or 2000, **given, harness=args.harness)


def _load(s: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The serving event model at --rate (the options it was given; the others at its defaults)."""
    from simulator.analytic.profile import rates_for
    from simulator.events.serving import simulate_serving

    given = {k: getattr(args, k) for k in LOAD_OPTIONS if getattr(args, k) is not None}
    return simulate_serving(s, rates_for(args.profile, s.node.gpu), args.rate, **given)


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
    if out.get("colocated"):  # one pool: the decode layout serves both
        extra = f" (+{out['redundant']} redundant expert slots)" if out["redundant"] else ""
        layout = f"  layout        attention tp{out['tp']}, ep{out['ep']}{extra}, prefill and decode on the same GPUs"
    if out.get("engine", "none") != "none":  # the kernels it fuses or runs aside (workloads/data/engines.toml)
        layout += f"; engine {out['engine']}"
    print(layout)
    for note in out["notes"]:
        print(f"  note          {note}")
    weights, kv = out["weights_gb_per_gpu"], out["kv_gb_per_sequence"]
    print(f"  memory/GPU    {weights:.1f} GB weights; {kv:.3f} GB KV per sequence")
    print(f"  KV capacity   {out['max_concurrent_sequences_per_gpu']:,} concurrent sequences per GPU")
    if out.get("colocated"):
        chunk, alone = out["prefill_chunk_tokens_per_gpu"], out["decode_only_step_s"] * 1e3
        tok_out, tok_in = out["output_tokens_per_s_per_gpu"], out["input_tokens_per_s_per_gpu"]
        piece = out["prompt_piece_tokens_per_gpu"]
        pieces = f" ({piece:,.0f} in a step that carries a prompt's piece)" if piece > chunk else ""
        print(
            f"  co-located    batch {out['batch_per_gpu']:g} per GPU and {chunk:,.0f} prompt tokens per step"
            f"{pieces}: TPOT {out['tpot_s'] * 1e3:.1f} ms (decode alone {alone:.1f} ms a step), {tok_out:,.0f} "
            f"output and {tok_in:,.0f} input tok/s per GPU, TTFT {out['ttft_s'] * 1e3:,.0f} ms"
        )
        print(f"  output cost   ${out['usd_per_million_output_tokens']:.3f} per million tokens")
    elif "tpot_s" in out:
        per_gpu, per_node = out["output_tokens_per_s_per_gpu"], out["output_tokens_per_s_per_node"]
        print(
            f"  decode        batch {out['batch_per_gpu']:g} per GPU, {out['batch_per_instance']:g} per instance of "
            f"{out['instance_gpus']} ({LIMIT_WORDS[out['decode_limit']]}; step "
            f"{out['decode_bound']}-bound): TPOT {out['tpot_s'] * 1e3:.1f} ms, {per_gpu:,.0f} tok/s per GPU, "
            f"{per_node:,.0f} per node of {out['gpus_per_node']}"
        )
        if "mtp_throughput_gain" in out:
            step, gain = out["mtp_tokens_per_step"], out["mtp_throughput_gain"]
            print(f"  MTP           {step:.2f} tokens per step, throughput x{gain:.2f}")
        print(f"  output cost   ${out['usd_per_million_output_tokens']:.3f} per million tokens")
    if "input_tokens_per_s_per_gpu" in out and not out.get("colocated"):
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
    if "prefill_gpus_per_decode_gpu" in out:
        ratio, usd = out["prefill_gpus_per_decode_gpu"], out["usd_per_request"]
        print(f"  disaggregated {ratio:.2f} prefill GPUs per decode GPU; ${usd:.5f} per request")
    if out["network_bound_tpot_s"] is not None:
        bound = out["network_bound_tpot_s"] * 1e3
        print(f"  network bound TPOT {bound:.2f} ms (ISCA 2025 method: EP traffic of 32 tokens per GPU)")
    if "load" in out:
        _print_load(out["load"])
    if "offline" in out:
        _print_offline(out["offline"])


def _print_offline(run: dict[str, Any]) -> None:
    """The offline run's lines: its requests, the whole run, throughput against the steady point."""
    rate = run["output_tokens_per_s_per_gpu"] / run["steady_output_tokens_per_s_per_gpu"] - 1
    tpot = "n/a" if run["mean_tpot_s"] is None else f"{run['mean_tpot_s'] * 1e3:,.1f} ms"
    print(
        f"  offline       {run['requests']:,} requests queued at once (input {run['input_len']}, output "
        f"{run['output_len']} tokens) on {run['gpus']} GPU{'s' if run['gpus'] > 1 else ''}: the last token at "
        f"{run['makespan_s']:,.1f} s"
    )
    if run["harness"] is not None:
        cap = run["max_batch_per_gpu"]
        print(
            f"  harness       {run['harness']}: batch {'as the KV cache holds' if cap is None else f'at most {cap:,}'}"
            f", {run['step_tokens_per_gpu']:,} tokens per step (per GPU), whole prompts, decode steps padded to its "
            "CUDA graphs"
        )
    output, given = run["output_tokens_per_s_per_gpu"], run["input_tokens_per_s_per_gpu"]
    print(
        f"  throughput    {output:,.0f} output and {given:,.0f} "
        f"input tok/s per GPU over the whole run ({rate:+.0%} against the steady point's "
        f"{run['steady_output_tokens_per_s_per_gpu']:,.0f}: ramp-up and drain)"
    )
    print(
        f"  batch         {run['mean_batch_per_gpu']:,.0f} per GPU on average (the steady point's "
        f"{run['steady_batch_per_gpu']:,.0f}); mean TTFT {run['mean_ttft_s']:,.1f} s, mean TPOT {tpot}"
    )


def _ms(p: dict[str, float] | None, keys: tuple[str, ...] = ("p50", "p90", "p99")) -> str:
    return "n/a" if p is None else ", ".join(f"{k.upper()} {p[k] * 1e3:,.1f} ms" for k in keys)


def _print_load(load: dict[str, Any]) -> None:
    """The event model's lines: the load, latencies, queueing, batch, throughput and goodput."""
    share = load["offered_qps"] / load["analytic_capacity_qps"]
    print(
        f"  load          {load['offered_qps']:,g} requests/s offered ({share:.0%} of the analytic decode capacity "
        f"{load['analytic_capacity_qps']:,.1f}), {load['completed_qps']:,.1f} completed"
    )
    if load.get("colocated"):
        print(f"  pool          {load['decode_gpus']} GPUs, prefill and decode co-located (prompt chunks on its steps)")
    else:
        print(
            f"  pools         {load['decode_gpus']} decode GPUs, {load['prefill_instances']} prefill instances "
            f"({load['prefill_gpus']} GPUs, offered {load['prefill_load']:.0%} of their analytic input rate)"
        )
    print(f"  lengths       input {load['input_len']}, output {load['output_len']} tokens")
    print(f"  TTFT          {_ms(load['ttft_s'])}")
    print(f"  TPOT          {_ms(load['tpot_s'])}")
    print(f"  queueing      {_ms(load['queueing_s'], ('p50', 'p99'))}")
    if load["mean_decode_batch_per_gpu"] is not None:
        print(
            f"  decode batch  {load['mean_decode_batch_per_gpu']:.1f} per GPU "
            f"(busiest {load['mean_busiest_batch_per_gpu']:.1f}), "
            f"drawn expert imbalance x{load['mean_expert_imbalance']:.2f}; analytic TPOT there "
            f"{load['analytic_tpot_s'] * 1e3:.1f} ms"
        )
    where = "of the pool" if load.get("colocated") else "of the prefill pool"
    print(
        f"  throughput    {load['output_tokens_per_s_per_gpu']:,.0f} output tok/s per decode GPU, "
        f"{load['input_tokens_per_s_per_gpu']:,.0f} input tok/s per GPU {where}"
    )
    if load["goodput"] is not None:
        slo = " and ".join(f"{k[:4].upper()} {v * 1e3:,.0f} ms" for k, v in load["slo"].items() if v is not None)
        print(
            f"  goodput       {load['goodput']:.0%} of requests meet {slo}: "
            f"{load['goodput_output_tokens_per_s_per_gpu']:,.0f} output tok/s per decode GPU"
        )
    print(
        f"  simulated     {load['requests']:,} requests, seed {load['seed']}, {load['decode_steps']:,} decode steps; "
        f"measured {load['measured_requests']:,} ({load['warmup']})"
    )

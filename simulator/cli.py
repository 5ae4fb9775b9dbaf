"""The `v3sim` command: one table of sub-commands, each a thin adapter over simulator/workloads.

Every sub-command takes `--json`. Bad input ends in one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from typing import Any, NoReturn

from hwmodels.files import clean_text, dumps_json
from hwmodels.routing import ECMP_MODES
from hwmodels.topology import KINDS
from simulator import format as fmt
from simulator.argtypes import (
    degree,
    endpoints,
    gpu_count,
    integer,
    name,
    planes,
    positive,
    positive_number,
    radix,
    seq_tokens,
    sequences,
)
from simulator.calibratecli import add_parsers as add_calibrate_parsers
from simulator.calibratecli import cmd_calibrate, print_calibrate
from simulator.netsummary import COLLECTIVE_NAMES, collective_summary, topology_summary
from simulator.presets import V3_LAYOUT, V3_NODE_LIMIT
from simulator.profile import rates_for
from simulator.report import estimate
from simulator.runspec import v3_pretraining
from simulator.servecli import add_parsers as add_serve_parsers
from simulator.servecli import cmd_serve, print_serve
from simulator.summary import comm_summary, hardware_summary, kv_comparison, memory_summary, model_summary
from simulator.sweepcli import add_parsers as add_sweep_parsers
from simulator.sweepcli import cmd_best_layout, cmd_sweep, print_best_layout, print_sweep
from simulator.traincli import add_parsers as add_train_parsers
from simulator.traincli import cmd_simulate, cmd_train, cmd_validate, print_simulate, print_train, print_validate
from workloads.activations import RECOMPUTE_MODES
from workloads.dtypes import DTYPE_BYTES
from workloads.flops import FLOP_CONVENTIONS
from workloads.layout import ParallelLayout
from workloads.precision import TRAINING_PRECISIONS
from workloads.registry import load_model

MAX_MESSAGE_CHARS = 2000  # an error line longer than this is cut: it is for a person to read


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage is one `-h` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def cmd_model(args: argparse.Namespace) -> dict[str, Any]:
    return model_summary(load_model(args.model), args.seq_len, args.convention)


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
    return kv_comparison([load_model(m) for m in args.models], args.context, args.batch, args.dtype)


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
                }
                for r in rows
            ],
            ["model", "attention", "bytes/token", "total"],
        )
    )


def _layout(args: argparse.Namespace) -> ParallelLayout:
    return ParallelLayout(
        tp=args.tp, pp=args.pp, dp=args.dp, ep=args.ep, zero_stage=args.zero, gpus_per_node=args.gpus_per_node
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
    return memory_summary(load_model(args.model), _layout(args), args.seq_len, training, inference)


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
                "HBM": fmt.si(r["hbm_bytes"], "B"),
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
    print(
        f"  alpha-beta   {ab['time_s'] * 1e3:.3f} ms   algbw {fmt.si(ab['algo_bytes_per_s'], 'B/s')}"
        f"   busbw {fmt.si(ab['bus_bytes_per_s'], 'B/s')}"
    )


def cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    """DeepSeek-V3 on its published 2,048 x H800 layout: the default the dashboard will open on."""
    spec = load_model("deepseek-v3")
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
    print_train(out["training"])
    mem = out["training"]["memory_per_gpu_bytes"]
    print("memory on the fullest GPU: " + ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in mem.items()))


def _add_layout(p: argparse.ArgumentParser) -> None:
    for option, default in (("tp", 1), ("pp", 1), ("dp", 1), ("ep", 1), ("gpus-per-node", 8)):
        p.add_argument(f"--{option}", type=degree, default=default)
    p.add_argument("--zero", type=integer, default=1, help="ZeRO stage 0-3 (default 1)")


def _add_topology(p: argparse.ArgumentParser) -> None:
    p.add_argument("--radix", type=radix, default=64, help="switch ports (default 64)")
    p.add_argument("--planes", type=planes, default=None, help="planes (multi-plane) or rails (multi-rail); 8")
    p.add_argument("--oversubscription", type=positive_number, default=1.0, help="leaf down:up ports (default 1)")
    p.add_argument("--switch", type=name, default="ib-ndr-64", help="switch catalog name or TOML file")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    parser = _Parser(prog="v3sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("model", parents=[common], help="parameters, FLOPs per token and KV bytes of a model")
    p.add_argument("model", type=name, help="preset slug (deepseek-v3, llama-3.1-405b, ...) or a config.json path")
    p.add_argument("--seq-len", type=seq_tokens, default=4096)
    p.add_argument("--convention", choices=list(FLOP_CONVENTIONS), default="exact")

    p = sub.add_parser("kv", parents=[common], help="compare KV-cache memory across models")
    p.add_argument("models", type=name, nargs="+")
    p.add_argument("--context", type=seq_tokens, default=4096)
    p.add_argument("--batch", type=sequences, default=1)
    p.add_argument("--dtype", choices=list(DTYPE_BYTES), default="bf16")

    p = sub.add_parser("memory", parents=[common], help="training and inference memory per GPU for a layout")
    p.add_argument("model", type=name)
    _add_layout(p)
    p.add_argument("--seq-len", type=seq_tokens, default=4096)
    p.add_argument("--micro-batch", type=sequences, default=1)
    p.add_argument("--recompute", choices=RECOMPUTE_MODES, default="none")
    p.add_argument("--precision", choices=list(TRAINING_PRECISIONS), default="bf16-mixed")
    p.add_argument("--inflight", type=degree, default=None, help="micro-batches in flight (default: pp)")
    p.add_argument("--param-copies", type=degree, default=1, help="2 for DualPipe")
    p.add_argument("--batch", type=sequences, default=1, help="sequences served (inference)")
    p.add_argument("--context", type=seq_tokens, default=4096, help="tokens per sequence (inference)")
    p.add_argument("--weight-dtype", choices=list(DTYPE_BYTES), default="bf16")
    p.add_argument("--kv-dtype", choices=list(DTYPE_BYTES), default="bf16")

    p = sub.add_parser("comm", parents=[common], help="EP, PP and DP communication volumes for a layout")
    p.add_argument("model", type=name)
    _add_layout(p)
    p.add_argument("--node-limit", type=degree, default=None, help="max nodes per token (V3: 4)")
    p.add_argument("--dispatch-dtype", choices=list(DTYPE_BYTES), default="fp8")
    p.add_argument("--combine-dtype", choices=list(DTYPE_BYTES), default="bf16")

    p = sub.add_parser("hardware", parents=[common], help="the GPU, NIC and node catalog")
    p.add_argument("kind", nargs="?", choices=["gpus", "nics", "nodes", "switches"], default="gpus")
    p.add_argument("names", type=name, nargs="*", help="catalog names or TOML files (default: the whole catalog)")

    p = sub.add_parser("topology", parents=[common], help="size, cost, bisection and hops of a cluster network")
    p.add_argument("kind", choices=KINDS)
    _add_topology(p)
    p.add_argument("--endpoints", type=endpoints, default=None, help="NIC ports (default: the largest instance)")

    p = sub.add_parser("collective", parents=[common], help="a collective's time on a topology (flow-level)")
    p.add_argument("collective", choices=COLLECTIVE_NAMES)
    p.add_argument("--topology", choices=KINDS, default="multi-plane")
    _add_topology(p)
    p.add_argument("--gpus", type=gpu_count, default=256)
    p.add_argument("--bytes-per-gpu", type=positive_number, default=256e6)
    p.add_argument("--node", type=name, default="h800-ib", help="node catalog name or TOML file")
    p.add_argument("--ecmp", choices=ECMP_MODES, default="hash")
    p.add_argument("--seed", type=integer, default=0)
    p.add_argument("--no-forwarding", action="store_true", help="cross nodes directly, not via NVLink (DeepEP)")

    p = sub.add_parser("report", parents=[common], help="the DeepSeek-V3 / 2,048 x H800 default, in the terminal")
    p.add_argument(
        "--profile", type=name, default="published", help="kernel profile: sol, published, measured or a .json file"
    )
    add_train_parsers(sub, common, positive)
    add_calibrate_parsers(sub, common, positive)
    add_serve_parsers(sub, common, positive)
    add_sweep_parsers(sub, common, positive)
    return parser


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], Any], Callable[[Any], None]]] = {
    "model": (cmd_model, print_model),
    "kv": (cmd_kv, print_kv),
    "memory": (cmd_memory, print_memory),
    "comm": (cmd_comm, print_comm),
    "hardware": (cmd_hardware, print_hardware),
    "topology": (cmd_topology, print_topology),
    "collective": (cmd_collective, print_collective),
    "report": (cmd_report, print_report),
    "train": (cmd_train, print_train),
    "validate": (cmd_validate, print_validate),
    "simulate": (cmd_simulate, print_simulate),
    "calibrate": (cmd_calibrate, print_calibrate),
    "serve": (cmd_serve, print_serve),
    "sweep": (cmd_sweep, print_sweep),
    "best-layout": (cmd_best_layout, print_best_layout),
}


def _say(command: str, what: str, err: BaseException) -> None:
    """One line on stderr: the command, what happened, and the error's text without control characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    print(f"v3sim {command}: {what}{clean_text(text, MAX_MESSAGE_CHARS)}", file=sys.stderr)


def _output(args: argparse.Namespace, out: Any) -> str | None:
    """The strict JSON text of `out` for --json (None: print the human form)."""
    if not args.json:
        return None
    try:
        return dumps_json(out, indent=2)
    except ValueError as err:  # a NaN or an infinity: a bug in the model, never printed as `NaN`
        raise NonFiniteOutput(f"the result holds a number JSON cannot carry ({err})") from None


class NonFiniteOutput(RuntimeError):
    """A result with NaN or infinity in it: a failure of v3sim, not of the input."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command. Exit status: 0 done, 2 bad input (one line naming the fix), 1 a failure of v3sim
    (one line; --debug shows the traceback), 130 interrupted; quiet when the reader of stdout goes away."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error, already printed in one line (2)
        return done.code if isinstance(done.code, int) else 2
    run, show = COMMANDS[args.command]
    try:
        out = run(args)
        text = _output(args, out)
        if text is None:  # the human form, without any control character a name from a file may carry
            with redirect_stdout(io.StringIO()) as shown:
                show(out)
            text = clean_text(shown.getvalue(), None, keep="\n").rstrip("\n")
        print(text)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print(f"v3sim {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (`| head`) has gone: say nothing, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except ValueError as err:  # every bad input is a ValueError with a message that names the fix
        if args.debug:
            raise
        _say(args.command, "error: ", err)
        return 2
    except MemoryError:
        if args.debug:
            raise
        print(f"v3sim {args.command}: failed: out of memory; try a smaller case", file=sys.stderr)
        return 1
    except Exception as err:  # a failure of v3sim itself: one line, the traceback with --debug
        if args.debug:
            raise
        _say(args.command, f"failed ({type(err).__name__}, please report; --debug shows where): ", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

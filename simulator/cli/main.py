"""The `v3sim` command: one table of sub-commands, each a thin adapter over simulator/workloads.

Every sub-command takes `--json`. Bad input ends in one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from typing import Any, NoReturn

from hwmodels.files import clean_text, dumps_json
from hwmodels.names import ECMP_MODES
from hwmodels.names import TOPOLOGY_KINDS as KINDS
from simulator.cli.args import (
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
from simulator.cli.calibrate import add_parsers as add_calibrate_parsers
from simulator.cli.helpfmt import DefaultsHelp
from simulator.cli.ops import add_parsers as add_ops_parsers
from simulator.cli.serve import add_parsers as add_serve_parsers
from simulator.cli.servesearch import add_parsers as add_serve_search_parsers
from simulator.cli.sweep import add_parsers as add_sweep_parsers
from simulator.cli.trace import add_parsers as add_trace_parsers
from simulator.cli.train import add_parsers as add_train_parsers
from simulator.names import COLLECTIVE_NAMES
from workloads.activations import RECOMPUTE_MODES
from workloads.dtypes import KV_DTYPES, WEIGHT_DTYPES
from workloads.flops import FLOP_CONVENTIONS
from workloads.precision import TRAINING_PRECISIONS

MAX_MESSAGE_CHARS = 2000  # an error line longer than this is cut: it is for a person to read


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage is one `-h` away), and `--help` shows defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelp)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


LAYOUT_OPTIONS = (  # memory and comm take a layout as it is (no presets): option, default, help
    ("tp", 1, "tensor parallelism"),
    ("pp", 1, "pipeline stages"),
    ("dp", 1, "data-parallel ranks"),
    ("ep", 1, "expert parallelism"),
    ("cp", 1, "context parallelism"),
    ("gpus-per-node", 8, "GPUs per node"),
)


def _add_layout(p: argparse.ArgumentParser) -> None:
    for option, default, what in LAYOUT_OPTIONS:
        p.add_argument(f"--{option}", type=degree, default=default, help=what)
    p.add_argument("--zero", type=integer, default=1, help="ZeRO stage 0-3")


def _add_topology(p: argparse.ArgumentParser) -> None:
    p.add_argument("--radix", type=radix, default=64, help="switch ports")
    p.add_argument(
        "--planes", type=planes, default=None, help="planes (multi-plane) or rails (multi-rail) (default: 8 for those)"
    )
    p.add_argument("--oversubscription", type=positive_number, default=1.0, help="leaf down:up ports (1: non-blocking)")
    p.add_argument("--switch", type=name, default="ib-ndr-64", help="switch catalog name or TOML file")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    parser = _Parser(prog="v3sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("model", parents=[common], help="parameters, FLOPs per token and KV bytes of a model")
    p.add_argument("model", type=name, help="preset slug (deepseek-v3, llama-3.1-405b, ...) or a config.json path")
    p.add_argument("--seq-len", type=seq_tokens, default=4096, help="tokens per sequence, e.g. 4096 or 32k")
    p.add_argument("--convention", choices=list(FLOP_CONVENTIONS), default="exact", help="how FLOPs are counted")

    p = sub.add_parser("kv", parents=[common], help="compare KV-cache memory across models")
    p.add_argument("models", type=name, nargs="+", help="preset slugs or config.json paths")
    p.add_argument("--context", type=seq_tokens, default=4096, help="tokens per sequence, e.g. 4096 or 128k")
    p.add_argument("--batch", type=sequences, default=1, help="sequences held")
    p.add_argument("--dtype", choices=list(KV_DTYPES), default="bf16", help="KV-cache element type")

    p = sub.add_parser("memory", parents=[common], help="training and inference memory per GPU for a layout")
    p.add_argument("model", type=name, help="preset slug or config.json path")
    _add_layout(p)
    p.add_argument("--seq-len", type=seq_tokens, default=4096, help="tokens per training sequence, e.g. 4096 or 32k")
    p.add_argument("--micro-batch", type=sequences, default=1, help="sequences per micro-batch (training)")
    p.add_argument("--recompute", choices=RECOMPUTE_MODES, default="none", help="activation recomputation")
    p.add_argument("--precision", choices=list(TRAINING_PRECISIONS), default="bf16-mixed", help="training precision")
    p.add_argument("--inflight", type=degree, default=None, help="micro-batches in flight (default: pp)")
    p.add_argument("--param-copies", type=degree, default=1, help="copies of the weights: 2 for DualPipe")
    p.add_argument("--batch", type=sequences, default=1, help="sequences served (inference)")
    p.add_argument("--context", type=seq_tokens, default=4096, help="tokens per sequence (inference), e.g. 128k")
    p.add_argument("--weight-dtype", choices=list(WEIGHT_DTYPES), default="bf16", help="weights (inference)")
    p.add_argument("--kv-dtype", choices=list(KV_DTYPES), default="bf16", help="KV cache (inference)")

    p = sub.add_parser("comm", parents=[common], help="EP, PP and DP communication volumes for a layout")
    p.add_argument("model", type=name, help="preset slug or config.json path")
    _add_layout(p)
    p.add_argument("--node-limit", type=degree, default=None, help="max nodes per token (V3: 4; default: no limit)")
    p.add_argument("--dispatch-dtype", choices=list(KV_DTYPES), default="fp8", help="expert dispatch payload")
    p.add_argument("--combine-dtype", choices=list(KV_DTYPES), default="bf16", help="expert combine payload")

    p = sub.add_parser("hardware", parents=[common], help="the GPU, NIC and node catalog")
    p.add_argument("kind", nargs="?", choices=["gpus", "nics", "nodes", "switches"], default="gpus", help="catalog")
    p.add_argument("names", type=name, nargs="*", help="catalog names or TOML files (default: the whole catalog)")

    p = sub.add_parser("topology", parents=[common], help="size, cost, bisection and hops of a cluster network")
    p.add_argument("kind", choices=KINDS, help="topology kind")
    _add_topology(p)
    p.add_argument("--endpoints", type=endpoints, default=None, help="NIC ports (default: the largest instance)")

    p = sub.add_parser("collective", parents=[common], help="a collective's time on a topology (flow-level)")
    p.add_argument("collective", choices=COLLECTIVE_NAMES, help="the collective")
    p.add_argument("--topology", choices=KINDS, default="multi-plane", help="scale-out network")
    _add_topology(p)
    p.add_argument("--gpus", type=gpu_count, default=256, help="GPUs taking part, e.g. 256 or 2Ki")
    p.add_argument("--bytes-per-gpu", type=positive_number, default=256e6, help="bytes each GPU sends, e.g. 256M")
    p.add_argument("--node", type=name, default="h800-ib", help="node catalog name or TOML file")
    p.add_argument("--ecmp", choices=ECMP_MODES, default="hash", help="equal-cost path choice")
    p.add_argument("--seed", type=integer, default=0, help="seed of the ECMP draws")
    p.add_argument("--no-forwarding", action="store_true", help="cross nodes directly, not via NVLink (DeepEP)")

    p = sub.add_parser("report", parents=[common], help="the DeepSeek-V3 / 2,048 x H800 default, in the terminal")
    p.add_argument(
        "--profile", type=name, default="published", help="kernel profile: sol, published, measured or a .json file"
    )
    add_ops_parsers(sub, common, positive)
    add_train_parsers(sub, common, positive)
    add_calibrate_parsers(sub, common, positive)
    add_serve_parsers(sub, common, positive)
    add_serve_search_parsers(sub, common, positive)
    add_sweep_parsers(sub, common, positive)
    add_trace_parsers(sub, common, positive)
    return parser


def _lazy(module: str, function: str) -> Callable[..., Any]:
    """`module.function`, imported when first called: `v3sim --help` loads no engine."""

    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(module), function)(*args)

    call.__name__ = function
    return call


def _command(module: str, name: str) -> tuple[Callable[[argparse.Namespace], Any], Callable[[Any], None]]:
    return _lazy(f"simulator.cli.{module}", f"cmd_{name}"), _lazy(f"simulator.cli.{module}", f"print_{name}")


# sub-command -> (handler, printer); the handler's module (and the engine under it) loads on first use.
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], Any], Callable[[Any], None]]] = {
    "model": _command("inspect", "model"),
    "kv": _command("inspect", "kv"),
    "memory": _command("inspect", "memory"),
    "comm": _command("inspect", "comm"),
    "hardware": _command("inspect", "hardware"),
    "topology": _command("inspect", "topology"),
    "collective": _command("inspect", "collective"),
    "report": _command("inspect", "report"),
    "ops": _command("ops", "ops"),
    "train": _command("train", "train"),
    "validate": _command("train", "validate"),
    "simulate": _command("train", "simulate"),
    "calibrate": _command("calibrate", "calibrate"),
    "serve": _command("serve", "serve"),
    "serve-search": _command("servesearch", "serve_search"),
    "sweep": _command("sweep", "sweep"),
    "best-layout": _command("sweep", "best_layout"),
    "compare-trace": _command("trace", "compare_trace"),
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

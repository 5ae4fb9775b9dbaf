"""The run options `train`, `simulate`, `best-layout`, `compare-trace` and `calibrate trace` share: their flags
and help (defaults said in words where presets derive them), run-spec files beside them (`--spec`, overridden
by the flags given; `--save-spec`), the implausible inputs refused before the run is built, and the RunSpec."""

from __future__ import annotations

import argparse

from hwmodels.files import check_output, write_atomic
from hwmodels.names import ECMP_MODES
from hwmodels.names import TOPOLOGY_KINDS as KINDS
from simulator.cli.args import (
    count,
    int_list,
    integer,
    name,
    nonnegative,
    number,
    positive_number,
    seq_tokens,
    whole_count,
)
from simulator.names import (
    CP_COMM_MODES,
    CUDA_GRAPH_SCOPES,
    EP_COMM_MODES,
    EP_DISPATCHERS,
    FP8_RECIPES,
    PRECISIONS,
    TP_COMM_MODES,
)
from simulator.schedules import SCHEDULES
from workloads.activations import RECOMPUTE_MODES

# option -> RunSpec field; None (the argparse default) means "take the published / RunSpec default"
TRAIN_OPTIONS = {
    "gpus": "gpus",
    "topology": "topology",
    "oversubscription": "oversubscription",
    "ecmp": "ecmp",
    "tp": "tp",
    "pp": "pp",
    "ep": "ep",
    "cp": "cp",
    "cp_comm": "cp_comm",
    "zero": "zero_stage",
    "virtual_stages": "virtual_stages",
    "stage_layers": "stage_layers",
    "seq_len": "seq_len",
    "global_batch_tokens": "global_batch_tokens",
    "micro_batch": "micro_batch",
    "schedule": "schedule",
    "precision": "precision",
    "recompute": "recompute",
    "node_limit": "node_limit",
    "comm_sms": "comm_sms",
    "tp_comm": "tp_comm",
    "ep_comm": "ep_comm",
    "ep_dispatcher": "ep_dispatcher",
    "cuda_graphs": "cuda_graphs",
    "fp8_recipe": "fp8_recipe",
    "expert_imbalance": "expert_imbalance",
    "mtp_layers": "mtp_layers",
    "tokens": "tokens",
    "price_per_gpu_hour": "price_per_gpu_hour",
}


# option -> its help; a default the engine derives (presets) is said in words. tests/simulator/test_cli_inputs.py
# holds each "(default N)" here to RunSpec's own default, so the two cannot drift apart.
RUN_HELP = {
    "gpus": "GPUs in the run (default 2048, V3's)",
    "topology": "scale-out network (default multi-plane, V3's multi-plane fat tree)",
    "oversubscription": "leaf down:up ports (default 1: non-blocking)",
    "ecmp": "equal-cost path choice: hash (static ECMP, default), random, spray",
    "tp": "tensor parallelism (default 1)",
    "pp": "pipeline stages (default 16, V3's)",
    "ep": "expert parallelism (default: V3's 64, or the largest degree below it that divides the routed experts "
    "and tp x dp; 1 for a dense model)",
    "cp": "context parallelism: each sequence split over this many ranks (default 1)",
    "cp_comm": "how CP ranks exchange attention inputs: ring (default), passing K/V chunks under the attention; "
    "all-gather, K/V gathered first, exposed (Llama 3); all-to-all, heads swapped for sequence (Ulysses)",
    "zero": "ZeRO stage 0-3 (default 1)",
    "virtual_stages": "pipeline chunks per GPU (default: with --schedule interleaved the most the layers allow, "
    "else 1)",
    "stage_layers": "transformer layers per pipeline stage, first to last, e.g. 4,4,4,1 (default: balanced by "
    "compute time)",
    "seq_len": "tokens per training sequence, e.g. 4096 or 32k (default 4096, V3's)",
    "global_batch_tokens": "tokens per step, e.g. 60Mi = 15,360 x 4,096 (default: V3's 15,360 sequences, or "
    "the nearest batch that splits into whole micro-batches over dp and fills the schedule)",
    "micro_batch": "sequences per micro-batch (default 1)",
    "schedule": "pipeline schedule (default dualpipe, V3's)",
    "precision": "GEMM precision (default: fp8 where the GPU has fp8 tensor cores, else bf16)",
    "recompute": "activation recomputation (default selective)",
    "node_limit": "most nodes a token's experts span (default 4, V3's)",
    "comm_sms": "SMs kept for the expert all-to-all beside compute, and DeepEP's kernels' SMs (default 20, V3's "
    "20 of 132; 0 in turn with compute: DeepEP's default 20)",
    "tp_comm": "TP+SP collectives: exposed (default) or overlapped",
    "ep_comm": "expert all-to-all under 1f1b and interleaved: exposed (default), in turn with compute, or "
    "overlapped, each forward merged with an adjacent micro-batch's backward (Megatron's "
    "overlap_moe_expert_parallel_comm); DualPipe always overlaps it",
    "ep_dispatcher": "how the all-to-all moves tokens: deepep-fp8 (default), V3's: one InfiniBand copy per remote "
    "node, forwarded over NVLink, fp8 dispatch under --precision fp8; deepep (DeepEP under Megatron: bf16 "
    "dispatch), hybridep (NVIDIA's HybridEP under Megatron: bf16, at its torch API's published rate), alltoall "
    "(Megatron's NCCL all-to-all: a copy per remote expert, bf16)",
    "cuda_graphs": "what CUDA graphs capture, launched without the host's cost per kernel: none (default), as "
    "V3's eager trace; router, attn, attn+router (Megatron's scopes) or full (the whole iteration)",
    "fp8_recipe": "how FP8 GEMMs scale their operands: block (default), V3's 1x128 / 128x128 blocks; tensor, one "
    "scale per tensor (Transformer Engine's delayed or current scaling: cuBLAS); mx, MXFP8 (Blackwell)",
    "expert_imbalance": "busiest GPU's routed tokens / mean (default 1)",
    "mtp_layers": "multi-token prediction modules trained, 0 for none (default: the model's own, V3's 1)",
    "tokens": "tokens to train, e.g. 14.8T (default 14.8T, V3's); a budget under one step's batch is refused",
    "price_per_gpu_hour": "USD per GPU-hour (default: the GPU's catalog price)",
}


def add_run_options(p: argparse.ArgumentParser, positive) -> None:
    """The RunSpec options `train`, `simulate`, `best-layout` and `compare-trace` share; None (not given)
    means the default, V3's published set-up."""
    choices = {
        "topology": KINDS, "ecmp": ECMP_MODES, "schedule": SCHEDULES, "precision": PRECISIONS,
        "tp_comm": TP_COMM_MODES, "ep_comm": EP_COMM_MODES,
        "ep_dispatcher": EP_DISPATCHERS, "cp_comm": CP_COMM_MODES, "recompute": RECOMPUTE_MODES,
        "cuda_graphs": CUDA_GRAPH_SCOPES, "fp8_recipe": FP8_RECIPES,
    }  # fmt: skip
    types = {
        "gpus": positive, "oversubscription": positive_number, "global_batch_tokens": whole_count,
        "expert_imbalance": number, "tokens": count, "price_per_gpu_hour": nonnegative, "seq_len": seq_tokens,
        "stage_layers": int_list,
    }  # fmt: skip
    p.add_argument("--model", type=name, default=None, help="preset slug or config.json (default deepseek-v3)")
    p.add_argument("--gpu", type=name, default=None, help="GPU name: uses the '<gpu>-ib' node (default h800)")
    p.add_argument(
        "--node", type=name, default=None, help="node catalog name or TOML file (default: the --gpu's node, h800-ib)"
    )
    for option in TRAIN_OPTIONS:
        flag = f"--{option.replace('_', '-')}"
        if option in choices:
            p.add_argument(flag, choices=choices[option], help=RUN_HELP[option])
        else:
            p.add_argument(flag, type=types.get(option, integer), help=RUN_HELP[option])
    p.add_argument(
        "--profile",
        type=name,
        default=None,
        help="kernel profile: sol, published, measured, a shipped name or a .json file (default: published; with "
        "--plan, the plan's own)",
    )
    p.add_argument(
        "--spec",
        type=name,
        default=None,
        help="a run-spec TOML file (model, gpu or node, and any run option; see docs/cli.md); options given "
        "beside it on the command line override the file's",
    )


def add_save_spec(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--save-spec",
        type=name,
        default=None,
        help="write this run's options as a run-spec TOML file (after the run is built, so it always loads "
        "back); run it again with --spec",
    )


def _flag(field: str) -> str:
    option = next((o for o, f in TRAIN_OPTIONS.items() if f == field), field)
    return f"--{option.replace('_', '-')}"


class _Options(dict):
    """build_run options, and where each came from: a flag, the run-spec file, or the default."""

    given: frozenset[str] = frozenset()
    spec_name = ""

    def origin(self, field: str) -> str:
        """How an error names a run option: '--tokens', 'tokens in run spec x.toml' or 'the default --tokens'."""
        if field in self.given:
            return _flag(field)
        if field in self:
            return f"{field} in run spec {self.spec_name}"
        return f"the default {_flag(field)}"

    def subject(self, field: str) -> str:
        """How an error starts on a run option, its value to follow: '--tokens' or 'run spec x.toml: tokens ='."""
        if field in self and field not in self.given:
            return f"run spec {self.spec_name}: {field} ="
        return _flag(field)


def run_options(args: argparse.Namespace) -> _Options:
    """The run options: those of --spec's file, overridden by those given on the command line (model, gpu /
    node, RunSpec fields), for `build_run`; refused here where implausible (simulator.cli.plausible)."""
    given = {field: getattr(args, opt) for opt, field in TRAIN_OPTIONS.items() if getattr(args, opt) is not None}
    given |= {k: getattr(args, k) for k in ("model", "gpu", "node") if getattr(args, k) is not None}
    spec: dict[str, object] = {}
    if getattr(args, "spec", None):
        from simulator.runspecfile import load_spec

        spec = load_spec(args.spec)
        if "gpu" in given or "node" in given:  # the command line's hardware replaces the file's, either way named
            spec = {k: v for k, v in spec.items() if k not in ("gpu", "node")}
    options = _Options({**spec, **given})
    options.given, options.spec_name = frozenset(given), str(args.spec)
    _check_options(options)
    return options


def _check_options(options: _Options) -> None:
    """The traps refused before a run is built: a batch under one sequence, a sequence beyond the model's
    positions, a token budget under the batch given (under the batch a run is built with: run_from_args)."""
    from simulator.cli.plausible import check_batch, check_context, check_run_length
    from simulator.runspec import RUN_DEFAULTS

    seq_len = options.get("seq_len", RUN_DEFAULTS["seq_len"])
    batch = options.get("global_batch_tokens")
    if isinstance(seq_len, int) and isinstance(batch, int):
        check_batch(batch, seq_len, options.subject("global_batch_tokens"))
    model = options.get("model", "deepseek-v3")
    if isinstance(model, str) and isinstance(seq_len, int):
        from workloads.registry import load_model

        check_context(load_model(model), seq_len, options.subject("seq_len"))
    tokens = options.get("tokens")
    if isinstance(tokens, int | float) and isinstance(batch, int):
        step = f"one step's global batch of {batch:,} tokens ({options.origin('global_batch_tokens')})"
        check_run_length(tokens, batch, options.subject("tokens"), step)


def run_from_args(args: argparse.Namespace):
    """The RunSpec the options ask for; what they leave out keeps V3's published set-up. With --save-spec, the
    options written as a run-spec file once the run is built (so the file always loads back)."""
    from simulator.cli.plausible import check_run_length
    from simulator.runspec import build_run

    if args.node and args.gpu:
        raise ValueError("give --gpu or --node, not both")
    save = getattr(args, "save_spec", None)
    if save:
        check_output(save, (".toml",), "--save-spec")  # before the work, not after it
    options = run_options(args)
    run = build_run(options)
    step = f"one step's global batch of {run.global_batch_tokens:,} tokens ({options.origin('global_batch_tokens')})"
    check_run_length(run.tokens, run.global_batch_tokens, options.subject("tokens"), step)
    if save:
        _save_spec(options, save)
    return run


def _save_spec(options: dict[str, object], path: str) -> None:
    """Write the options as a run-spec file; a model or node given as a file is written as its absolute path,
    so the spec runs from any folder."""
    from pathlib import Path

    from hwmodels.files import path_is
    from simulator.runspecfile import load_spec, looks_like_path, spec_toml

    saved = dict(options)
    for key in ("model", "node"):
        value = saved.get(key)
        if isinstance(value, str) and looks_like_path(value) and path_is(Path(value), Path.exists):
            saved[key] = str(Path(value).resolve())
    text = spec_toml(saved)
    try:
        write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot write the run spec to {path}: {exc.strerror}") from None
    load_spec(path)  # a written spec always loads back

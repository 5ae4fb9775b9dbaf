"""RunSpec: one training run (model, cluster, parallel layout, batch, precision, schedule, budget).

`v3_pretraining()` is DeepSeek-V3's published pre-training set-up (V3 report,
sections 3.1-3.3 and 4.2): 2,048 H800 in nodes of 8, a multi-plane fat tree,
PP16 with DualPipe, EP64 over 8 nodes, ZeRO-1 data parallelism, no TP, fp8
GEMMs, 4K sequences, a 15,360-sequence batch, 14.8T tokens, $2 per GPU-hour,
20 SMs for communication, at most 4 nodes per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

from hwmodels.files import is_finite_number
from hwmodels.names import ECMP_MODES
from hwmodels.registry import load_node
from hwmodels.specs import NodeSpec, job_share
from hwmodels.topology import KINDS, TopologySpec, design_topology, topology_kind
from simulator import limits
from simulator.names import (
    CP_COMM_MODES,
    CUDA_GRAPH_SCOPES,
    EP_COMM_MODES,
    EP_DISPATCHERS,
    FP8_RECIPES,
    PRECISIONS,
    TP_COMM_MODES,
)
from simulator.presets import (
    V3_BATCH_SEQUENCES,
    V3_LAYOUT,
    interleaved_virtual_stages,
    node_for,
    training_batch_sequences,
    training_ep,
    training_gpus,
)
from simulator.schedules import BIDIRECTIONAL, check_schedule
from workloads.activations import RECOMPUTE_MODES
from workloads.layout import ParallelLayout, check_layout
from workloads.registry import load_model
from workloads.spec import MAX_SIZES, ModelSpec

MAX_RUN_INTS = {  # see simulator/limits.py
    "gpus": limits.MAX_GPUS,
    "tp": limits.MAX_DEGREE,
    "pp": limits.MAX_DEGREE,
    "ep": limits.MAX_DEGREE,
    "cp": limits.MAX_DEGREE,
    "virtual_stages": limits.MAX_VIRTUAL_STAGES,
    "micro_batch": limits.MAX_SEQUENCES,
    "global_batch_tokens": limits.MAX_BATCH_TOKENS,
    "seq_len": limits.MAX_SEQ_TOKENS,
}


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything that sets a training run's step time and cost."""

    model: ModelSpec
    node: NodeSpec
    gpus: int = 2048
    topology: str = "multi-plane"
    radix: int = 64
    oversubscription: float = 1.0
    ecmp: str = "hash"  # how switches pick among equal-cost paths: hash (static ECMP), random or spray (adaptive)
    tp: int = 1
    pp: int = 16
    ep: int = 64
    cp: int = 1  # context parallelism: each sequence split over cp ranks
    cp_comm: str = "ring"  # how CP ranks exchange attention inputs (simulator.names.CP_COMM_MODES)
    zero_stage: int = 1
    virtual_stages: int = 1
    stage_layers: tuple[int, ...] | None = None  # None: balanced by FLOPs (see training.balanced_layout)
    micro_batch: int = 1  # sequences
    global_batch_tokens: int = V3_BATCH_SEQUENCES * 4096
    seq_len: int = 4096
    precision: str = "fp8"
    schedule: str = "dualpipe"
    recompute: str = "selective"
    node_limit: int | None = 4
    comm_sms: int = 20  # SMs kept for all-to-all when the schedule overlaps it (V3: 20 of 132)
    tp_comm: str = "exposed"  # TP+SP collectives in turn with compute, or "overlapped" under its GEMMs
    ep_comm: str = "exposed"  # 1F1B / interleaved: the all-to-all in turn, or "overlapped" (simulator.names)
    ep_dispatcher: str = "deepep-fp8"  # how the all-to-all moves tokens (simulator.names.EP_DISPATCHERS)
    cuda_graphs: str = "none"  # what of each layer CUDA graphs capture (simulator.names.CUDA_GRAPH_SCOPES)
    fp8_recipe: str = "block"  # how FP8 GEMMs scale their operands (simulator.names.FP8_RECIPES)
    expert_imbalance: float = 1.0  # busiest GPU's routed tokens / the mean
    mtp_layers: int | None = None  # MTP modules trained (Megatron's mtp_num_layers); None: the model's own
    tokens: float = 14.8e12
    price_per_gpu_hour: float | None = None  # None: the GPU's catalog price
    defaults: tuple[str, ...] = field(default=(), compare=False)  # options the caller left to their default

    def __post_init__(self) -> None:
        for name in ("gpus", "tp", "pp", "ep", "cp", "virtual_stages", "micro_batch", "seq_len", "global_batch_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
            if value > MAX_RUN_INTS[name]:
                raise ValueError(f"{name}={value:,} is beyond the model's limit of {MAX_RUN_INTS[name]:,}")
        for name in ("zero_stage", "radix", "comm_sms", "node_limit", "mtp_layers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name}={value!r} must be an integer")
        for name, limit in (("radix", limits.MAX_RADIX), ("node_limit", limits.MAX_DEGREE)):
            value = getattr(self, name)
            if value is not None and value > limit:
                raise ValueError(f"{name}={value:,} is beyond the model's limit of {limit:,}")
        if self.mtp_layers is not None and not 0 <= self.mtp_layers <= MAX_SIZES["num_nextn_predict_layers"]:
            raise ValueError(
                f"mtp_layers={self.mtp_layers} must be from 0 (no MTP) to {MAX_SIZES['num_nextn_predict_layers']}"
            )
        if self.mtp_layers is not None and self.mtp_layers != self.model.num_nextn_predict_layers:
            object.__setattr__(self, "model", replace(self.model, num_nextn_predict_layers=self.mtp_layers))
        for name in ("oversubscription", "expert_imbalance"):
            _check_number(name, getattr(self, name))
        if self.oversubscription > limits.MAX_OVERSUBSCRIPTION:
            raise ValueError(f"oversubscription={self.oversubscription:g} is beyond {limits.MAX_OVERSUBSCRIPTION}:1")
        if self.expert_imbalance > max(self.ep, 1):
            raise ValueError(
                f"expert_imbalance={self.expert_imbalance:g} exceeds ep={self.ep}: the busiest GPU cannot take more "
                "than every routed token"
            )
        check_run_length(self.tokens, self.price_per_gpu_hour)
        chunks, layers = self.pp * self.virtual_stages, self.model.num_hidden_layers
        if self.schedule == "interleaved" and self.virtual_stages == 1:
            most = layers // self.pp
            fix = f"give virtual_stages between 2 and {most}" if most >= 2 else f"pp={self.pp} leaves under 2 layers"
            raise ValueError(f"interleaved with virtual_stages=1 is 1F1B: {fix}, or use the 1f1b schedule")
        if self.virtual_stages > 1 and chunks > layers:
            raise ValueError(
                f"pp={self.pp} x virtual_stages={self.virtual_stages} = {chunks} pipeline chunks for {layers} "
                f"layers; use virtual_stages <= {max(1, layers // self.pp)}"
            )
        if self.topology not in KINDS:
            raise ValueError(f"unknown topology {self.topology!r}; use one of {', '.join(KINDS)}")
        if self.ecmp not in ECMP_MODES:
            raise ValueError(f"ecmp={self.ecmp!r}; use one of {', '.join(ECMP_MODES)}")
        if self.tp_comm not in TP_COMM_MODES:
            raise ValueError(f"tp_comm={self.tp_comm!r}; use one of {', '.join(TP_COMM_MODES)}")
        if self.ep_dispatcher not in EP_DISPATCHERS:
            raise ValueError(f"ep_dispatcher={self.ep_dispatcher!r}; use one of {', '.join(EP_DISPATCHERS)}")
        if self.ep_comm not in EP_COMM_MODES:
            raise ValueError(f"ep_comm={self.ep_comm!r}; use one of {', '.join(EP_COMM_MODES)}")
        if self.ep_merged:
            _check_ep_overlap(self)
        if self.cp_comm not in CP_COMM_MODES:
            raise ValueError(f"cp_comm={self.cp_comm!r}; use one of {', '.join(CP_COMM_MODES)}")
        if self.cuda_graphs not in CUDA_GRAPH_SCOPES:
            raise ValueError(f"cuda_graphs={self.cuda_graphs!r}; use one of {', '.join(CUDA_GRAPH_SCOPES)}")
        heads = self.model.num_attention_heads
        if self.cp > 1 and self.cp_comm == "all-to-all" and heads % (self.tp * self.cp):
            raise ValueError(
                f"cp_comm all-to-all splits the {heads} attention heads over tp x cp = {self.tp * self.cp} ranks: "
                "use a cp that divides them, or cp_comm ring or all-gather"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}; use fp8 or bf16")
        if self.precision == "fp8" and self.node.gpu.peak_fp8_flop_per_s <= 0:
            raise ValueError(f"{self.node.gpu.name} has no fp8 tensor cores; use --precision bf16")
        if self.fp8_recipe not in FP8_RECIPES:
            raise ValueError(f"fp8_recipe={self.fp8_recipe!r}; use one of {', '.join(FP8_RECIPES)}")
        if self.fp8_recipe != "block" and self.precision != "fp8":
            raise ValueError(
                f"fp8_recipe={self.fp8_recipe} scales FP8 GEMMs but this run's precision is {self.precision}: drop "
                "it, or use precision fp8"
            )
        if self.fp8_recipe == "mx" and self.node.gpu.peak_fp4_flop_per_s <= 0:
            raise ValueError(
                f"fp8_recipe mx needs block-scaled (MX) tensor cores, which the {self.node.gpu.name} lacks; use block "
                "or tensor"
            )
        if self.recompute not in RECOMPUTE_MODES:
            raise ValueError(f"recompute={self.recompute!r}; use one of {', '.join(RECOMPUTE_MODES)}")
        object.__setattr__(self, "node", job_share(self.node, self.gpus))  # GB200: 64 of each rack's 72, ...
        if self.gpus % self.node.gpus_per_node:
            trays = f", nor of its {self.node.tray_gpus}-GPU trays" if self.node.tray_gpus else ""
            raise ValueError(f"gpus={self.gpus} is not a multiple of {self.node.gpus_per_node} GPUs per node{trays}")
        if self.gpus % (self.tp * self.pp * self.cp):
            if self.cp == 1:
                raise ValueError(f"tp*pp={self.tp * self.pp} must divide gpus={self.gpus} (dp = gpus / (tp*pp))")
            raise ValueError(
                f"tp*cp*pp={self.tp * self.cp * self.pp} must divide gpus={self.gpus} (dp = gpus / (tp*cp*pp))"
            )
        if self.seq_len % (2 * self.cp) and self.cp > 1:
            raise ValueError(
                f"seq_len={self.seq_len} must split into 2 x cp={2 * self.cp} equal chunks (each CP rank takes one "
                "from each end, balancing the causal mask)"
            )
        if not 0 <= self.comm_sms < self.node.gpu.sm_count:
            raise ValueError(f"comm_sms={self.comm_sms} must be in [0, {self.node.gpu.sm_count}) SMs")
        if self.comm_sms == 0 and self.ep_overlapped and self.model.is_moe and self.ep > 1:
            how = self.schedule if self.schedule in BIDIRECTIONAL else "ep_comm overlapped"
            raise ValueError(
                f"{how} runs the expert all-to-all on comm_sms SMs beside compute: give comm_sms >= 1 "
                "(V3: 20), or run it in turn (1f1b, ep_comm exposed)"
            )
        if not self.expert_imbalance >= 1:
            raise ValueError(f"expert_imbalance={self.expert_imbalance} must be >= 1 (busiest GPU / mean)")
        if self.node_limit is not None and self.node_limit <= 0:
            raise ValueError(f"node_limit={self.node_limit} must be a positive integer (or None: no limit)")
        check_schedule(self.schedule, self.pp, self.virtual_stages)
        check_layout(self.model, self.layout)
        self.topology_spec  # noqa: B018  (raises if the topology cannot hold the GPUs)
        # last: a sweep prices many batches of one run, checking each with `batch_error` alone
        why = batch_error(self.global_batch_tokens, self.seq_len, self.dp, self.micro_batch, self.schedule, self.pp)
        if why:
            raise ValueError(why)

    @property
    def ep_merged(self) -> bool:
        """Whether 1F1B (or the interleaved schedule) merges each steady forward with an adjacent micro-batch's
        backward (ep_comm overlapped: Megatron's overlap_moe_expert_parallel_comm)."""
        return self.ep_comm == "overlapped" and self.schedule not in BIDIRECTIONAL

    @property
    def ep_overlapped(self) -> bool:
        """Whether the expert all-to-all runs beside compute, under the other micro-batch's half of a forward and
        backward pair: DualPipe's own pairs, or 1F1B's merged ones."""
        return self.schedule in BIDIRECTIONAL or self.ep_merged

    @property
    def dp(self) -> int:
        """Data-parallel ranks over the batch (context-parallel ranks share their sequences)."""
        return self.gpus // (self.tp * self.pp * self.cp)

    @property
    def layout(self) -> ParallelLayout:
        return _layout(*self._layout_key(), self.stage_layers)

    @property
    def microbatches(self) -> int:
        """Micro-batches each pipeline runs per step."""
        return self.global_batch_tokens // self.seq_len // (self.dp * self.micro_batch)

    @property
    def topology_spec(self) -> TopologySpec:
        planes = self.node.nics_per_node if topology_kind(self.topology).planes != "none" else None
        return design_topology(self.topology, self.radix, self.gpus, planes, self.oversubscription)

    @property
    def usd_per_gpu_hour(self) -> float:
        return self.node.gpu.price_usd_per_gpu_hour if self.price_per_gpu_hour is None else self.price_per_gpu_hour

    def with_(self, **changes) -> RunSpec:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def with_split(self, stage_layers: tuple[int, ...]) -> RunSpec:
        """A copy with a stage split the model chose: the split checked (its layout), the other fields not
        again, as nothing else changes (the stage balancer asks for many; `with_` validates all ~40 checks)."""
        check_layout(self.model, _layout(*self._layout_key(), tuple(stage_layers)))
        copy = object.__new__(RunSpec)
        for name in RunSpec.__slots__:  # type: ignore[attr-defined]
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "stage_layers", tuple(stage_layers))
        return copy

    def _layout_key(self) -> tuple[int, int, int, int, int, int, int]:
        return self.tp, self.pp, self.dp, self.ep, self.zero_stage, self.node.gpus_per_node, self.cp


@lru_cache(maxsize=4096)
def _layout(
    tp: int, pp: int, dp: int, ep: int, zero_stage: int, gpus_per_node: int, cp: int,
    stage_layers: tuple[int, ...] | None,
) -> ParallelLayout:  # fmt: skip
    """A run's ParallelLayout, built and checked once per distinct layout (the models ask for it often)."""
    return ParallelLayout(tp, pp, dp, ep, zero_stage, gpus_per_node, stage_layers, cp)


def least_microbatches(schedule: str, pp: int) -> int:
    """Micro-batches a step needs at least: one per stage, two for a bidirectional pipeline's two directions."""
    return 2 * pp if schedule in BIDIRECTIONAL else pp


def batch_error(global_batch_tokens: int, seq_len: int, dp: int, micro_batch: int, schedule: str, pp: int) -> str:
    """Why a global batch cannot run on a pipeline of this shape ('' when it can): whole sequences, split
    evenly over dp x micro_batch, enough micro-batches for the schedule (an even count for the two
    directions of a bidirectional one). The run's other fields are checked before."""
    if global_batch_tokens <= 0:
        return f"global_batch_tokens={global_batch_tokens!r} must be a positive integer"
    if global_batch_tokens > limits.MAX_BATCH_TOKENS:
        return f"global_batch_tokens={global_batch_tokens:,} is beyond the model's limit of {limits.MAX_BATCH_TOKENS:,}"
    seqs, rem = divmod(global_batch_tokens, seq_len)
    if rem:
        return f"global_batch_tokens={global_batch_tokens} is not whole {seq_len}-token sequences"
    if seqs % (dp * micro_batch):
        return (
            f"the batch of {seqs} sequences does not split into dp={dp} x micro_batch={micro_batch}; "
            f"use a multiple of {dp * micro_batch} sequences"
        )
    n, need = seqs // (dp * micro_batch), least_microbatches(schedule, pp)
    if n < need:
        return f"{n} micro-batches per step; {schedule} with pp={pp} needs >= {need}"
    if schedule in BIDIRECTIONAL and n % 2:
        return f"{schedule} splits micro-batches into two directions: {n} is odd"
    return ""


def _check_ep_overlap(run: RunSpec) -> None:
    """Megatron's overlap_moe_expert_parallel_comm as its config checks it (megatron/core/transformer/
    transformer_config.py): expert parallelism, no full recomputation, and with a pipeline the interleaved
    schedule (1F1B's merged pairs need PP 1)."""
    if run.schedule not in ("1f1b", "interleaved"):
        raise ValueError(
            f"ep_comm overlapped merges each forward with an adjacent micro-batch's backward (Megatron's "
            f"overlap_moe_expert_parallel_comm); {run.schedule} has no such pairs: use interleaved, or 1f1b at pp 1"
        )
    if run.schedule == "1f1b" and run.pp > 1:
        raise ValueError(
            f"ep_comm overlapped with pp={run.pp} needs the interleaved schedule (Megatron requires virtual "
            "pipeline stages for it when pp > 1): use --schedule interleaved, or pp 1"
        )
    if not run.model.is_moe or run.ep == 1:
        raise ValueError("ep_comm overlapped hides the expert all-to-all: it needs an MoE model with ep > 1")
    if run.recompute == "full":
        raise ValueError("ep_comm overlapped does not run with full recomputation (Megatron refuses it): use "
                         "recompute selective or none")  # fmt: skip


def _check_number(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be a number")
    if not is_finite_number(value):
        raise ValueError(f"{name}={value:.3g} must be a finite number")


def check_run_length(tokens: object, price_per_gpu_hour: object) -> None:
    """Raise ValueError unless `tokens` is a finite positive number and the price (None: the catalog's)
    a finite number >= 0: the two inputs that only scale GPU-hours, dollars and days."""
    _check_number("tokens", tokens)
    if not tokens > 0:  # type: ignore[operator]
        raise ValueError(f"tokens={tokens} must be positive")
    if tokens > limits.MAX_TRAIN_TOKENS:  # type: ignore[operator]
        raise ValueError(f"tokens={tokens:.3g} is beyond the model's limit of {limits.MAX_TRAIN_TOKENS:.0e}")
    if price_per_gpu_hour is not None:
        _check_number("price_per_gpu_hour", price_per_gpu_hour)
        if not 0 <= price_per_gpu_hour <= limits.MAX_USD_PER_GPU_HOUR:  # type: ignore[operator]
            raise ValueError(
                f"price_per_gpu_hour={price_per_gpu_hour} must be from 0 to {limits.MAX_USD_PER_GPU_HOUR:,.0f}"
            )


def v3_pretraining(**changes) -> RunSpec:
    """DeepSeek-V3's pre-training run as published, with `changes` applied."""
    return RunSpec(**{"model": load_model("deepseek-v3"), "node": load_node("h800-ib"), **changes})


# The RunSpec fields a caller sets by value (the model and node are named, see `build_run`), and their defaults.
RUN_FIELDS = tuple(f.name for f in fields(RunSpec) if f.name not in ("model", "node", "defaults"))
RUN_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(RunSpec) if f.name in RUN_FIELDS}


def default_ep(model: ModelSpec, options: Mapping[str, object]) -> int:
    """The EP a run gets when `options` give none (presets.training_ep over their tp x dp = gpus / pp)."""
    given: dict[str, Any] = {**RUN_DEFAULTS, **options}
    try:
        tp_dp = int(given["gpus"]) // int(given["pp"])
    except (TypeError, ValueError, ArithmeticError):
        return V3_LAYOUT.ep  # a bad gpus or pp: RunSpec names it
    return training_ep(model, max(tp_dp, 1))


def default_virtual_stages(model: ModelSpec, options: Mapping[str, object]) -> int:
    """The virtual stages a run gets when `options` give none: interleaved, the most the layers allow
    (presets.interleaved_virtual_stages); any other schedule, 1."""
    given: dict[str, Any] = {**RUN_DEFAULTS, **options}
    if given["schedule"] != "interleaved":
        return 1
    try:
        return interleaved_virtual_stages(model.num_hidden_layers, int(given["pp"]))
    except (TypeError, ValueError, ArithmeticError):
        return 1  # a bad pp: RunSpec names it


def default_batch_tokens(options: Mapping[str, object]) -> int:
    """The global batch a run gets when `options` give none (presets.training_batch_sequences)."""
    given: dict[str, Any] = {**RUN_DEFAULTS, **options}
    try:
        dp = int(given["gpus"]) // (int(given["tp"]) * int(given["pp"]) * int(given["cp"]))
        bidirectional = given["schedule"] in BIDIRECTIONAL
        seqs = training_batch_sequences(max(dp, 1), int(given["micro_batch"]), bidirectional, int(given["pp"]))
        return seqs * int(given["seq_len"])
    except (TypeError, ValueError, ArithmeticError):
        return RUN_DEFAULTS["global_batch_tokens"]  # a bad input: RunSpec names it


def share_note(run: RunSpec) -> str:
    """What the run takes of each node, where it is not whole nodes (`hwmodels.specs.job_share`); else ""."""
    node = run.node
    if node.rack is None:
        return ""
    return (
        f"takes {node.gpus_per_node} of the {node.rack.gpus_per_node} GPUs of each of {run.gpus // node.gpus_per_node} "
        f"{node.name} nodes ({node.tray_gpus}-GPU trays), each share one NVLink domain"
    )


def build_run(options: Mapping[str, object]) -> RunSpec:
    """A RunSpec from plain options: `model` (slug, config.json or a ModelSpec), `gpu` or `node` (resolved by
    presets.node_for) and any RUN_FIELDS; what they leave out keeps V3's published set-up (dense: ep=1)."""
    opts: dict[str, Any] = dict(options)
    model = opts.pop("model", "deepseek-v3")
    if not isinstance(model, ModelSpec):
        model = load_model(str(model))
    node_spec = node_for(opts.pop("gpu", None), opts.pop("node", None))
    unknown = sorted(set(opts) - set(RUN_FIELDS))
    if unknown:
        raise ValueError(f"unknown run option(s) {', '.join(unknown)}; use model, gpu, node, {', '.join(RUN_FIELDS)}")
    if opts.get("stage_layers") is not None:
        opts["stage_layers"] = tuple(opts["stage_layers"])
    defaults = tuple(name for name in RUN_FIELDS if name not in opts)
    if "gpus" not in opts:
        opts["gpus"] = training_gpus(node_spec)
    if "ep" not in opts:
        opts["ep"] = default_ep(model, opts)
    if "global_batch_tokens" not in opts:
        opts["global_batch_tokens"] = default_batch_tokens(opts)
    if "virtual_stages" not in opts:
        opts["virtual_stages"] = default_virtual_stages(model, opts)
    if "precision" not in opts and node_spec.gpu.peak_fp8_flop_per_s <= 0:
        opts["precision"] = "bf16"  # V3's fp8 where the GPU has it (presets: as serving's weights)
    return RunSpec(model=model, node=node_spec, defaults=defaults, **opts)

"""ServeSpec: one serving deployment (model, node, parallelism, load, prices), checked where it is built.

A spec, not a model: `simulator.presets` builds the deployments `v3sim serve` runs and
`simulator.analytic.serving` prices them.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace

from hwmodels.names import TOPOLOGY_KINDS as KINDS
from hwmodels.registry import catalog, load_gpu
from hwmodels.specs import NodeSpec
from simulator import limits
from workloads.dtypes import ACTIVATION_DTYPES, QUANTIZED_WEIGHTS, WEIGHT_DTYPES, dtype_bytes
from workloads.engines import engine_names
from workloads.spec import ModelSpec

# How dispatch and combine meet compute: the faster of one and two micro-batches (auto); two micro-batches, one's
# compute hiding the other's communication (two-batch, DeepSeek's); one batch whose combine runs under its shared
# expert (single-batch, SGLang's); or in turn (none).
OVERLAP_MODES = ("auto", "two-batch", "single-batch", "none")
ATTENTION_DTYPES = ("bf16", "fp8")
SERVING_FP8_RECIPES = ("block", "tensor")  # a serving checkpoint's FP8 scaling (`ServeSpec.fp8_recipe`)
# How the engine's KV pool holds a sliding-window layer: its last window (vLLM's hybrid allocator, SGLang's SWA
# pool, TensorRT-LLM given max_attention_window), or the whole context like every other layer (one pool: the
# attention still reads only the window).
WINDOW_KV_MODES = ("window", "full")
CACHE_TIERS = ("auto", "host", "storage")  # where cached prompt KV is read from (auto: storage where the node has one)


@dataclass(frozen=True, slots=True)
class ServeSpec:
    """One serving deployment: model, GPUs, parallelism, load and prices."""

    model: ModelSpec
    node: NodeSpec
    batch: int | None = None  # decode sequences per GPU; None: as many as the KV cache holds
    # decode sequences per instance (the EP group, or the TP group when larger): a TP8 instance with one stream
    batch_per_instance: int | None = None
    context: int = 4096  # tokens per sequence (prompt + output) whose KV the decode step reads
    tp: int = 1  # attention tensor parallelism (dense models: the whole layer)
    # attention's input scattered over the tp group: MLA's down projections on each GPU's share of the tokens, their
    # latent all-gathered (SGLang --enable-attn-tp-input-scattered); False: every GPU runs them on all the tokens
    attn_tp_scattered: bool = False
    ep: int = 1  # decode pool's expert parallelism (MoE)
    redundant: int = 0  # extra expert slots in the decode pool
    prefill_ep: int = 1
    prefill_redundant: int = 0
    mtp_acceptance: float | None = None  # None: no speculative decoding; else each draft's acceptance
    mtp_tokens: int = 1  # draft tokens per step (the MTP module run again for each)
    # each depth's acceptance given the drafts before it were accepted; (): every depth at `mtp_acceptance`
    mtp_acceptance_by_depth: tuple[float, ...] = ()
    overlap: str = "auto"  # OVERLAP_MODES
    expert_imbalance: float = 1.0  # the busiest GPU's routed-expert load over the mean
    expert_tp: int = 1  # GPUs each expert is split over (inside a node), in both pools
    offload_weights: bool = False  # prefill streams the weights that do not fit in HBM from host memory
    weight_dtype: str = "fp8"
    # the GEMMs outside the MoE blocks (attention, the dense layers' MLPs) where the checkpoint keeps them wider than
    # its experts (NVIDIA's FP4 DeepSeek-R1: FP8; GPT-OSS's MXFP4: bf16); None: weight_dtype
    dense_weight_dtype: str | None = None
    # how the checkpoint's FP8 GEMMs scale their operands (SERVING_FP8_RECIPES): block (DeepSeek's and Qwen3's
    # 1x128 / 128x128 blocks), tensor (one scale per tensor, as NVIDIA's ModelOpt FP8 Llama checkpoints); it picks
    # the timed kernel where the engine's GEMMs are looked up (`Op.library`)
    fp8_recipe: str = "block"
    kv_dtype: str = "bf16"
    attention_dtype: str = "bf16"  # prefill attention's compute: bf16, or fp8 (FlashAttention-3's fp8 forward)
    # quantized weights' GEMMs: their activations and compute (ACTIVATION_DTYPES); None: the weights' own
    activation_dtype: str | None = None
    window_kv: str = "window"  # WINDOW_KV_MODES: what the KV pool holds of a sliding-window layer
    colocated: bool = False  # one pool: prefill chunks ride the decode steps (simulator.analytic.colocated)
    cache_hit: float = 0.0  # share of prompt tokens served from the prompt cache (no prefill compute)
    output_tokens: int | None = None  # per request (the rest of `context` is its prompt): sizes the two pools
    price_per_gpu_hour: float | None = None
    tpot_ms: float | None = None  # decode SLO: the largest batch whose time per output token meets it
    ttft_ms: float | None = None  # prefill SLO: the tokens per forward with the most throughput that meet it
    prefill_tokens: int | None = None  # new prompt tokens per GPU per prefill forward; None: chosen
    cache_tier: str = "auto"  # where cached prompt KV is read from: host memory (PCIe) or the node's storage
    topology: str | None = None  # the fabric the prefill -> decode KV transfer crosses; None: at the NIC's rate
    oversubscription: float = 1.0
    # The event model's steps (`--rate`, `--offline`; the analytic answer keeps smooth chunks): False, a prompt
    # enters a step whole (TensorRT-LLM's default, enable_chunked_prefill off); CUDA graphs captured at these
    # batch sizes pad a decode-only step's batch up to the next (TensorRT-LLM's cuda_graph_config enable_padding);
    # (): every step at its own batch
    chunked_prefill: bool = True
    graph_batches: tuple[int, ...] = ()
    # the serving engine (workloads/data/engines.toml): which of a layer's kernels it fuses or runs on a second
    # stream; "none": every kernel of the operation list apart
    engine: str = "none"
    notes: tuple[str, ...] = ()  # what the preset chose for the user (e.g. the redundant slots an --ep needs)

    def __post_init__(self) -> None:
        spec, g = self.model, self.node.gpus_per_node
        if self.overlap not in OVERLAP_MODES:
            raise ValueError(f"overlap={self.overlap!r}; use one of {', '.join(OVERLAP_MODES)}")
        if self.engine not in engine_names():
            raise ValueError(f"engine={self.engine!r}; use one of {', '.join(engine_names())}")
        if self.fp8_recipe not in SERVING_FP8_RECIPES:
            raise ValueError(f"fp8_recipe={self.fp8_recipe!r}; use one of {', '.join(SERVING_FP8_RECIPES)}")
        if not (isinstance(self.mtp_tokens, int) and 1 <= self.mtp_tokens <= 8):
            raise ValueError(f"mtp_tokens={self.mtp_tokens!r} must be an integer from 1 to 8")
        if not 1 <= self.expert_imbalance <= 64:
            raise ValueError(f"expert_imbalance={self.expert_imbalance!r} must be from 1 (balanced) to 64")
        if not isinstance(self.expert_tp, int) or self.expert_tp < 1:
            raise ValueError(f"expert_tp={self.expert_tp!r} must be a positive integer")
        if self.expert_tp > 1:
            if not spec.is_moe:
                raise ValueError(f"{spec.name} is dense: expert TP needs experts (drop --expert-tp)")
            domain = self.node.scaleup_domain_gpus
            for ep in (self.ep, self.prefill_ep):
                if ep % self.expert_tp or domain % self.expert_tp:
                    raise ValueError(
                        f"expert_tp={self.expert_tp} must divide the EP size ({ep}) and the {domain}-GPU NVLink domain"
                    )
        for name in ("tpot_ms", "ttft_ms"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and 0 < value <= 1e7):
                raise ValueError(f"{name}={value!r} must be a positive number of milliseconds")
        given = [f"--{n.replace('_', '-')}" for n in ("batch", "batch_per_instance", "tpot_ms") if getattr(self, n)]
        if len(given) > 1:
            raise ValueError(
                f"give one of --batch, --batch-per-instance and --tpot-ms, not both {' and '.join(given)}: each "
                "sets the decode batch (a TPOT target picks it)"
            )
        if self.prefill_tokens is not None and self.ttft_ms is not None:
            raise ValueError("give prefill_tokens or a TTFT target (ttft_ms), not both: the target picks the chunk")
        if self.prefill_tokens is not None and not (
            isinstance(self.prefill_tokens, int) and 0 < self.prefill_tokens <= limits.MAX_SEQ_TOKENS
        ):
            raise ValueError(f"prefill_tokens={self.prefill_tokens!r} must be from 1 to {limits.MAX_SEQ_TOKENS:,}")
        if self.cache_tier not in CACHE_TIERS:
            raise ValueError(f"cache_tier={self.cache_tier!r}; use one of {', '.join(CACHE_TIERS)}")
        if self.cache_tier == "storage" and not self.node.storage_bw_bytes_per_s:
            raise ValueError(f"{self.node.name} has no shared KV store (storage_gb_per_s); use cache_tier host")
        if self.topology is not None and self.topology not in KINDS:
            raise ValueError(f"unknown topology {self.topology!r}; use one of {', '.join(KINDS)}")
        if not 1 <= self.oversubscription <= limits.MAX_OVERSUBSCRIPTION:
            raise ValueError(
                f"oversubscription={self.oversubscription!r} must be from 1 to {limits.MAX_OVERSUBSCRIPTION:,}"
            )
        for name in ("context", "tp", "ep", "prefill_ep"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        for name in ("batch", "batch_per_instance"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.tp > g or g % self.tp:
            raise ValueError(f"tp={self.tp} must divide the {g} GPUs of a {self.node.name} node")
        if spec.num_attention_heads % self.tp:
            raise ValueError(f"tp={self.tp} must divide {spec.num_attention_heads} attention heads")
        for ep, extra, pool in (
            (self.ep, self.redundant, "--ep"),
            (self.prefill_ep, self.prefill_redundant, "prefill"),
        ):
            if not spec.is_moe:
                if ep != 1:
                    raise ValueError(f"{spec.name} is dense: use ep=1 (got {pool} {ep})")
                continue
            slots = spec.n_routed_experts + extra
            if extra < 0 or slots % ep:
                flag = "--redundant" if pool == "--ep" else "--prefill-redundant"
                raise ValueError(
                    f"{pool} ep={ep} does not divide the {spec.n_routed_experts} experts + {extra} redundant slots "
                    f"({slots}); pass {flag} {fewest_redundant(spec.n_routed_experts, ep)} (the fewest that divide) "
                    f"or leave it out"
                )
        if self.mtp_acceptance_by_depth:
            depths = self.mtp_acceptance_by_depth
            if not all(isinstance(a, float | int) and 0 <= a <= 1 for a in depths):
                raise ValueError(f"each MTP depth's acceptance must be in [0, 1] (got {list(depths)})")
            if self.mtp_tokens != len(depths) or self.mtp_acceptance != depths[0]:
                raise ValueError(
                    f"{len(depths)} per-depth acceptances mean {len(depths)} MTP draft tokens starting at "
                    f"{depths[0]}: got mtp_tokens={self.mtp_tokens}, mtp_acceptance={self.mtp_acceptance}"
                )
        if self.mtp_acceptance is not None:
            if not 0 <= self.mtp_acceptance <= 1:
                raise ValueError(f"mtp_acceptance={self.mtp_acceptance} must be in [0, 1]")
            if not spec.num_nextn_predict_layers:
                raise ValueError(f"{spec.name} has no multi-token prediction module; drop --mtp-acceptance")
        if self.output_tokens is not None and not 0 < self.output_tokens < self.context:
            raise ValueError(f"output_tokens={self.output_tokens} must be between 1 and context-1={self.context - 1}")
        if not 0 <= self.cache_hit < 1:
            raise ValueError(f"cache_hit={self.cache_hit} must be in [0, 1)")
        if self.weight_dtype not in WEIGHT_DTYPES:
            raise ValueError(f"weight_dtype={self.weight_dtype!r}; use one of {', '.join(WEIGHT_DTYPES)}")
        self._check_activation_dtype()
        self._check_dense_weight_dtype()
        if self.gemm_dtype == "fp8" and self.node.gpu.peak_fp8_flop_per_s <= 0:
            flag = "--weight-dtype bf16" if self.activation_dtype is None else "--activation-dtype bf16"
            raise ValueError(f"{self.node.gpu.name} has no fp8 tensor cores; use {flag}")
        if self.gemm_dtype == "fp4" and self.node.gpu.peak_fp4_flop_per_s <= 0:
            with_fp4 = ", ".join(g for g in catalog("gpus") if load_gpu(g).peak_fp4_flop_per_s > 0)
            raise ValueError(
                f"{self.node.gpu.name} has no fp4 tensor cores (GPUs with them: {with_fp4}); use --weight-dtype fp8, "
                "or --activation-dtype fp8 or bf16 (fp4 weights under wider activations)"
            )
        if self.colocated and self.output_tokens is None:
            raise ValueError("--colocated needs --output-tokens N: the share of prompt to output sets each chunk")
        if self.window_kv not in WINDOW_KV_MODES:
            raise ValueError(f"window_kv={self.window_kv!r}; use one of {', '.join(WINDOW_KV_MODES)}")
        if self.attention_dtype not in ATTENTION_DTYPES:
            raise ValueError(f"attention_dtype={self.attention_dtype!r}; use one of {', '.join(ATTENTION_DTYPES)}")
        if self.attention_dtype == "fp8" and self.node.gpu.peak_fp8_flop_per_s <= 0:
            raise ValueError(f"{self.node.gpu.name} has no fp8 tensor cores; use --attention-dtype bf16")
        if self.price_per_gpu_hour is not None and self.price_per_gpu_hour < 0:
            raise ValueError(f"price_per_gpu_hour={self.price_per_gpu_hour} must be >= 0")
        if not isinstance(self.chunked_prefill, bool):
            raise ValueError(f"chunked_prefill={self.chunked_prefill!r} must be true or false")
        if not isinstance(self.attn_tp_scattered, bool):
            raise ValueError(f"attn_tp_scattered={self.attn_tp_scattered!r} must be true or false")
        sizes = self.graph_batches
        if not (
            isinstance(sizes, tuple)
            and all(isinstance(b, int) and not isinstance(b, bool) and 0 < b <= limits.MAX_SEQUENCES for b in sizes)
            and list(sizes) == sorted(set(sizes))
        ):
            raise ValueError(
                f"graph_batches={sizes!r} must be increasing batch sizes from 1 to {limits.MAX_SEQUENCES:,}, "
                "e.g. 1,2,4,8"
            )

    @property
    def gemm_dtype(self) -> str:
        """What the quantized weights' GEMMs compute in: their activations' dtype, else the weights' own."""
        return self.activation_dtype or self.weight_dtype

    @property
    def dense_dtype(self) -> str:
        """The weight dtype of the GEMMs outside the MoE blocks: `dense_weight_dtype`, else the weights'."""
        return self.dense_weight_dtype or self.weight_dtype

    def _check_dense_weight_dtype(self) -> None:
        """A known dtype, on a model with experts, never narrower than the experts', on tensor cores the GPU has."""
        dense = self.dense_weight_dtype
        if dense is None:
            return
        if dense not in WEIGHT_DTYPES:
            raise ValueError(f"dense_weight_dtype={dense!r}; use one of {', '.join(WEIGHT_DTYPES)}")
        if not self.model.is_moe:
            raise ValueError(f"{self.model.name} is dense: every GEMM takes --weight-dtype (drop --dense-weight-dtype)")
        if dtype_bytes(dense) < dtype_bytes(self.weight_dtype):
            raise ValueError(
                f"--dense-weight-dtype {dense} is narrower than the experts' {self.weight_dtype}: it names what a "
                "checkpoint keeps wider than its experts"
            )
        if dense == "fp8" and self.node.gpu.peak_fp8_flop_per_s <= 0:
            raise ValueError(f"{self.node.gpu.name} has no fp8 tensor cores; use --dense-weight-dtype bf16")

    def _check_activation_dtype(self) -> None:
        """Activations of a known dtype, only under quantized weights, never narrower than the weights."""
        act = self.activation_dtype
        if act is None:
            return
        if act not in ACTIVATION_DTYPES:
            raise ValueError(f"activation_dtype={act!r}; use one of {', '.join(ACTIVATION_DTYPES)}")
        if self.weight_dtype not in QUANTIZED_WEIGHTS:
            raise ValueError(f"{self.weight_dtype} weights run {self.weight_dtype} GEMMs; drop --activation-dtype")
        if dtype_bytes(act) < dtype_bytes(self.weight_dtype):
            raise ValueError(
                f"--activation-dtype {act} is narrower than the {self.weight_dtype} weights; use "
                f"{' or '.join(a for a in ACTIVATION_DTYPES if dtype_bytes(a) >= dtype_bytes(self.weight_dtype))}"
            )

    @property
    def verify_tokens(self) -> int:
        """Tokens per sequence through the model each decode step: the next one and the drafts to verify."""
        return 1 + self.mtp_tokens if self.mtp_acceptance is not None else 1

    @property
    def attention_units(self) -> int:
        """Attention units of one decode instance, each scheduling its own sequences: its data-parallel GPUs, or
        its tp groups."""
        return max(self.ep, self.tp) // self.tp

    @property
    def instance_gpus(self) -> int:
        """GPUs of one decode instance: the EP group, or the attention TP group when larger."""
        return math.lcm(self.ep, self.tp)

    @property
    def decode_batch(self) -> float | None:
        """The given decode sequences per GPU (a fraction where an instance holds fewer than its GPUs)."""
        if self.batch_per_instance is not None:
            return self.batch_per_instance / self.instance_gpus
        return self.batch

    @property
    def acceptances(self) -> tuple[float, ...]:
        """Each draft depth's acceptance, given the drafts before it were accepted (() without MTP)."""
        if self.mtp_acceptance is None:
            return ()
        return self.mtp_acceptance_by_depth or (self.mtp_acceptance,) * self.mtp_tokens

    @property
    def tokens_per_step(self) -> float:
        """Tokens a sequence emits per decode step on average: 1 + a1 + a1 a2 + ... for the drafts' per-depth
        acceptances (1 + a + a^2 + ... + a^N with one acceptance for every depth)."""
        total, chain = 1.0, 1.0
        for a in self.acceptances:
            chain *= a
            total += chain
        return total

    @property
    def cache_bw_bytes_per_s_per_gpu(self) -> float:
        """The rate one GPU reads cached prompt KV at: its share of the node's store, or its PCIe link."""
        node = self.node
        store = self.cache_tier == "storage" or (self.cache_tier == "auto" and node.storage_bw_bytes_per_s > 0)
        return node.storage_bw_bytes_per_s / node.gpus_per_node if store else node.pcie_bw_bytes_per_s

    def graph_batch(self, batch: float) -> float:
        """The batch a decode-only step of `batch` sequences per attention unit runs at: the smallest captured CUDA
        graph that holds it (`graph_batches`); its own batch past the largest (run eagerly) or without any."""
        i = bisect.bisect_left(self.graph_batches, math.ceil(batch - 1e-9))
        return float(self.graph_batches[i]) if batch > 0 and i < len(self.graph_batches) else batch

    def for_prefill(self) -> ServeSpec:
        """The prefill pool: its own expert parallelism and redundant slots."""
        return replace(self, ep=self.prefill_ep, redundant=self.prefill_redundant)

    @property
    def usd_per_gpu_hour(self) -> float:
        gpu = self.node.gpu
        return gpu.price_usd_per_gpu_hour if self.price_per_gpu_hour is None else self.price_per_gpu_hour


def fewest_redundant(experts: int, ep: int) -> int:
    """The fewest redundant expert slots that make experts + slots divide over `ep` GPUs (EP144: 32)."""
    return -experts % ep

"""ServeSpec: one serving deployment (model, node, parallelism, load, prices), checked where it is built.

A spec, not a model: `simulator.presets` builds the deployments `v3sim serve` runs and
`simulator.analytic.serving` prices them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwmodels.specs import NodeSpec
from workloads.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class ServeSpec:
    """One serving deployment: model, GPUs, parallelism, load and prices."""

    model: ModelSpec
    node: NodeSpec
    batch: int | None = None  # decode sequences per GPU; None: as many as the KV cache holds
    context: int = 4096  # tokens per sequence (prompt + output) whose KV the decode step reads
    tp: int = 1  # attention tensor parallelism (dense models: the whole layer)
    ep: int = 1  # decode pool's expert parallelism (MoE)
    redundant: int = 0  # extra expert slots in the decode pool
    prefill_ep: int = 1
    prefill_redundant: int = 0
    mtp_acceptance: float | None = None  # None: no speculative decoding
    overlap: bool = True  # two micro-batches hide communication under compute
    weight_dtype: str = "fp8"
    kv_dtype: str = "bf16"
    cache_hit: float = 0.0  # share of prompt tokens served from the prompt cache (no prefill compute)
    output_tokens: int | None = None  # per request (the rest of `context` is its prompt): sizes the two pools
    price_per_gpu_hour: float | None = None

    def __post_init__(self) -> None:
        spec, g = self.model, self.node.gpus_per_node
        for name in ("context", "tp", "ep", "prefill_ep"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.batch is not None and (not isinstance(self.batch, int) or self.batch <= 0):
            raise ValueError(f"batch={self.batch!r} must be a positive integer")
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
                raise ValueError(
                    f"{pool} ep={ep} must divide the {spec.n_routed_experts} experts + {extra} redundant slots "
                    f"({slots}); try a divisor of {slots}"
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
        if self.weight_dtype == "fp8" and self.node.gpu.peak_fp8_flop_per_s <= 0:
            raise ValueError(f"{self.node.gpu.name} has no fp8 tensor cores; use --weight-dtype bf16")
        if self.price_per_gpu_hour is not None and self.price_per_gpu_hour < 0:
            raise ValueError(f"price_per_gpu_hour={self.price_per_gpu_hour} must be >= 0")

    def for_prefill(self) -> ServeSpec:
        """The prefill pool: its own expert parallelism and redundant slots."""
        return replace(self, ep=self.prefill_ep, redundant=self.prefill_redundant)

    @property
    def usd_per_gpu_hour(self) -> float:
        gpu = self.node.gpu
        return gpu.price_usd_per_gpu_hour if self.price_per_gpu_hour is None else self.price_per_gpu_hour

"""Memory counts in bytes: KV cache per token, and training / inference memory per GPU.

KV cache per token and layer (elements): MLA caches the compressed latent
and the shared RoPE key, kv_lora_rank + qk_rope_head_dim, whatever the head
count (DeepSeek-V2 report, section 2.1.2); MHA/GQA cache a key and a value per
KV head, 2 * num_key_value_heads * head_dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from workloads.activations import logits_bytes_per_token, recompute_working_elems, stage_activation_elems
from workloads.dtypes import QUANTIZED_WEIGHTS, dtype_bytes
from workloads.flops import cached_tokens, context_for_cached
from workloads.layout import ParallelLayout, check_layout, is_moe_layer, stage_blocks
from workloads.params import attention_proj_params, layer_params
from workloads.precision import TrainingPrecision, training_precision
from workloads.spec import ModelSpec

FP8_BLOCK = 128  # V3 quantizes weights in 128x128 blocks, one fp32 scale each (V3 report, section 3.3)


def kv_elems_per_token_per_layer(spec: ModelSpec) -> int:
    """Elements one token adds to one layer's KV cache."""
    if spec.attention == "mla":
        return spec.kv_lora_rank + spec.qk_rope_head_dim
    return 2 * spec.kv_heads * spec.qk_head_dim


def kv_bytes_per_token(spec: ModelSpec, dtype: str = "bf16", include_mtp: bool = False) -> int:
    """KV-cache bytes per token over all layers (and the MTP layers, if asked)."""
    layers = spec.num_hidden_layers + (spec.num_nextn_predict_layers if include_mtp else 0)
    return int(layers * kv_elems_per_token_per_layer(spec) * dtype_bytes(dtype))


def kv_bytes_per_token_per_layer(spec: ModelSpec, dtype: str = "bf16") -> int:
    """KV-cache bytes per token of one layer."""
    return int(kv_elems_per_token_per_layer(spec) * dtype_bytes(dtype))


def layer_fp8_scale_elems(spec: ModelSpec, moe: bool, block: int = FP8_BLOCK) -> dict[str, int]:
    """fp32 scales of one layer's block-quantized projection weights: `dense` and `expert` parts.

    V3's released checkpoint stores every attention and MLP projection of the
    decoder layers (the MTP block included) in fp8 with one `weight_scale_inv`
    per block x block tile; embedding, head, router, norms and eh_proj stay bf16.
    """

    def tiles(rows: int, cols: int) -> int:
        return -(-rows // block) * -(-cols // block)

    def mlp(inter: int) -> int:
        return 2 * tiles(inter, spec.hidden_size) + tiles(spec.hidden_size, inter) if inter else 0

    attn = sum(tiles(n // d, d) for n, d in _attention_weight_shapes(spec))
    if not moe:
        return {"dense": attn + mlp(spec.intermediate_size), "expert": 0}
    return {
        "dense": attn + mlp(spec.shared_intermediate_size),
        "expert": spec.n_routed_experts * mlp(spec.moe_intermediate_size),
    }


def fp8_block_scale_elems(spec: ModelSpec, include_mtp: bool = False) -> int:
    """fp32 block scales of the whole model in V3's fp8 checkpoint format."""
    kinds = [is_moe_layer(spec, k) for k in range(spec.num_hidden_layers)]
    kinds += [spec.is_moe] * (spec.num_nextn_predict_layers if include_mtp else 0)
    return sum(sum(layer_fp8_scale_elems(spec, moe).values()) for moe in kinds)


def _attention_weight_shapes(spec: ModelSpec) -> list[tuple[int, int]]:
    """(elements, input width) of each attention projection weight, biases left out."""
    h, heads = spec.hidden_size, spec.num_attention_heads
    if spec.attention == "mla":
        params = attention_proj_params(spec)
        inputs = {
            "q_a_proj": h,
            "q_b_proj": spec.q_lora_rank,
            "q_proj": h,
            "kv_a_proj_with_mqa": h,
            "kv_b_proj": spec.kv_lora_rank,
            "o_proj": heads * spec.v_dim,
        }
        return [(params[k], inputs[k]) for k in params]
    qk, v, kv = spec.qk_head_dim, spec.v_dim, spec.kv_heads
    return [(h * heads * qk, h), (h * kv * qk, h), (h * kv * v, h), (heads * v * h, heads * v)]


def stage_params(spec: ModelSpec, layout: ParallelLayout, stage: int, include_mtp: bool = False) -> dict[str, int]:
    """Parameters of one pipeline stage, before TP/EP sharding, in three groups.

    `linear`: attention, dense-FFN and shared-expert projections (replicated
    across data-parallel ranks; quantized in fp8 serving); `other`: embedding,
    head, norms, router and MTP's eh_proj (replicated, kept in bf16);
    `expert`: the routed experts (split by EP).
    """
    return dict(_stage_params(spec, layout, stage, include_mtp))


@lru_cache(maxsize=8192)
def _stage_params(
    spec: ModelSpec, layout: ParallelLayout, stage: int, include_mtp: bool
) -> tuple[tuple[str, int], ...]:
    """Once per stage of a layout: the training model and its memory check ask for each stage often."""
    h, vocab = spec.hidden_size, spec.vocab_size
    out = {"linear": 0, "other": 0, "expert": 0}
    blocks = stage_blocks(spec, layout, stage, include_mtp)
    moe_blocks = sum(blocks)
    for moe, n in ((True, moe_blocks), (False, len(blocks) - moe_blocks)):
        if n:
            parts = layer_params(spec, moe=moe, active=False)
            out["linear"] += n * (parts["attn_proj"] + parts["dense_ffn"] + parts["shared_experts"])
            out["other"] += n * (parts["norms"] + parts["router"])
            out["expert"] += n * parts["routed_experts"]
    mtp_blocks = len(blocks) - layout.layer_counts(spec.num_hidden_layers)[stage]
    out["other"] += mtp_blocks * (3 * h + 2 * h * h)  # enorm, hnorm, final norm; eh_proj
    if stage == 0:
        out["other"] += vocab * h
    if stage == layout.pp - 1:
        out["other"] += h + (0 if spec.tie_word_embeddings and layout.pp == 1 else vocab * h)
    return tuple(out.items())


def training_memory_by_stage(
    spec: ModelSpec,
    layout: ParallelLayout,
    seq_len: int,
    micro_batch: int = 1,
    recompute: str = "none",
    precision: str | TrainingPrecision = "bf16-mixed",
    inflight_microbatches: float | Sequence[float] | None = None,
    param_copies: int = 1,
    include_mtp: bool = True,
) -> list[dict[str, float]]:
    """Bytes per GPU on each pipeline stage, by category.

    Dense parameters are split by TP, routed experts by EP; ZeRO stage 1/2/3
    shards optimizer states / + gradients / + weights over the data-parallel
    group (the expert-data-parallel group for experts). Activations:
    `inflight_microbatches` micro-batches (default pp, the first stage of
    1F1B; or one count per stage) of `micro_batch * seq_len` tokens, split by TP (sequence parallel).
    `param_copies` is 2 for DualPipe, which holds both directions' stages.
    """
    check_layout(spec, layout)
    if seq_len <= 0 or micro_batch <= 0:
        raise ValueError(f"seq_len={seq_len} and micro_batch={micro_batch} must be positive")
    prec = precision if isinstance(precision, TrainingPrecision) else training_precision(precision)
    inflight_by_stage = inflight_microbatches if inflight_microbatches is not None else layout.pp
    if isinstance(inflight_by_stage, int | float):
        inflight_by_stage = [inflight_by_stage] * layout.pp
    if len(inflight_by_stage) != layout.pp:
        raise ValueError(f"{len(inflight_by_stage)} in-flight counts for {layout.pp} pipeline stages")
    tokens = micro_batch * seq_len
    stages = []
    for stage in range(layout.pp):
        params = stage_params(spec, layout, stage, include_mtp)
        dense = param_copies * (params["linear"] + params["other"]) / layout.tp
        expert = param_copies * params["expert"] / layout.ep

        blocks = stage_blocks(spec, layout, stage, include_mtp)
        kept = stage_activation_elems(spec, blocks, recompute)
        working = recompute_working_elems(spec, blocks, recompute)
        inflight = inflight_by_stage[stage]
        act = tokens * sum((inflight * kept[key] + working[key]) * prec.activation_bytes_of(key) for key in kept)
        if stage == layout.pp - 1:
            act += tokens * logits_bytes_per_token(spec, include_mtp)
        row = {
            "weights": prec.weight_bytes * _sharded(dense, expert, layout, from_zero_stage=3),
            "gradients": prec.grad_bytes * _sharded(dense, expert, layout, from_zero_stage=2),
            "optimizer_states": (prec.master_bytes + prec.optimizer_bytes)
            * _sharded(dense, expert, layout, from_zero_stage=1),
            "activations": act / (layout.tp * layout.cp),  # sequence-parallel over TP, split over CP
        }
        row["total"] = sum(row.values())
        stages.append(row)
    return stages


def _sharded(dense: float, expert: float, layout: ParallelLayout, from_zero_stage: int) -> float:
    """Parameters a GPU keeps of a state that ZeRO shards from `from_zero_stage` on."""
    if layout.zero_stage < from_zero_stage:
        return dense + expert
    return dense / layout.replicas + expert / layout.expert_dp


def training_memory_per_gpu(spec: ModelSpec, layout: ParallelLayout, seq_len: int, **kwargs) -> dict[str, float]:
    """The stage that needs the most memory: its bytes by category, and its index as `stage`."""
    stages = training_memory_by_stage(spec, layout, seq_len, **kwargs)
    worst = max(range(len(stages)), key=lambda s: stages[s]["total"])
    return {**stages[worst], "stage": worst}


def inference_memory_per_gpu(
    spec: ModelSpec,
    layout: ParallelLayout,
    batch: int,
    context: int,
    weight_dtype: str = "bf16",
    kv_dtype: str = "bf16",
) -> dict[str, float]:
    """Bytes per GPU for serving: weights and the KV cache of `batch` sequences of `context` tokens.

    `batch` is the sequences one attention replica (tp x pp GPUs) holds. GQA
    caches split over TP up to the KV-head count; MLA's latent is shared by all
    heads and is replicated on every TP rank. fp8 weights keep the embedding,
    head, norms and router in bf16 and add V3's 128x128 fp32 block scales; fp4
    (NVFP4) weights too, their scales in the dtype's bytes (one per 16).
    """
    check_layout(spec, layout)
    if batch <= 0 or context <= 0:
        raise ValueError(f"batch={batch} and context={context} must be positive")
    rows = []
    for stage in range(layout.pp):
        params = stage_params(spec, layout, stage)
        blocks = stage_blocks(spec, layout, stage, include_mtp=False)
        quantized = params["linear"] / layout.tp + params["expert"] / layout.ep
        weights = quantized * dtype_bytes(weight_dtype) + params["other"] / layout.tp * dtype_bytes(
            "bf16" if weight_dtype in QUANTIZED_WEIGHTS else weight_dtype
        )
        if weight_dtype == "fp8":
            scales = [layer_fp8_scale_elems(spec, moe) for moe in blocks]
            weights += dtype_bytes("fp32") * sum(s["dense"] / layout.tp + s["expert"] / layout.ep for s in scales)
        kv_split = 1 if spec.attention == "mla" else min(layout.tp, spec.kv_heads)
        cached = cached_tokens(spec, context)  # per layer, the mean: a windowed layer keeps its last window
        kv = batch * cached * len(blocks) * kv_bytes_per_token_per_layer(spec, kv_dtype) / kv_split
        rows.append({"weights": weights, "kv_cache": kv, "total": weights + kv, "stage": stage})
    return max(rows, key=lambda r: r["total"])


def kv_tokens_that_fit(
    spec: ModelSpec, layout: ParallelLayout, hbm_bytes: float, weight_dtype: str = "bf16", kv_dtype: str = "bf16"
) -> int:
    """Cached tokens (sequences x context, as each layer caches them: `workloads.flops.cached_tokens`) one
    attention replica holds with its weights and KV cache within `hbm_bytes` per GPU, nothing reserved for
    activations; 0 when the weights alone fill the GPU. KV grows linearly in cached tokens, so it is the free
    bytes over one token's KV (`inference_memory_per_gpu`)."""
    one = inference_memory_per_gpu(spec, layout, 1, 1, weight_dtype, kv_dtype)
    return max(0, int((hbm_bytes - one["weights"]) // one["kv_cache"]))


def longest_context_that_fits(
    spec: ModelSpec,
    layout: ParallelLayout,
    batch: int,
    hbm_bytes: float,
    weight_dtype: str = "bf16",
    kv_dtype: str = "bf16",
) -> int:
    """Longest context (tokens) of which `batch` sequences fit (`kv_tokens_that_fit`); 0 if none does."""
    if batch <= 0:
        raise ValueError(f"batch={batch} must be positive")
    return context_for_cached(spec, kv_tokens_that_fit(spec, layout, hbm_bytes, weight_dtype, kv_dtype) // batch)


def largest_batch_that_fits(
    spec: ModelSpec,
    layout: ParallelLayout,
    context: int,
    hbm_bytes: float,
    weight_dtype: str = "bf16",
    kv_dtype: str = "bf16",
) -> int:
    """Most sequences of `context` tokens that fit (`kv_tokens_that_fit`); 0 if not one does."""
    if context <= 0:
        raise ValueError(f"context={context} must be positive")
    return int(kv_tokens_that_fit(spec, layout, hbm_bytes, weight_dtype, kv_dtype) // cached_tokens(spec, context))


def max_context_tokens(spec: ModelSpec) -> int | None:
    """The longest context (tokens) the model was built for: its config.json's max_position_embeddings, or None
    where the config states none. A context past it is one the model cannot attend over, whatever fits."""
    return spec.max_position_embeddings or None


def serving_capacity(
    spec: ModelSpec,
    layout: ParallelLayout,
    context: int,
    batch: int,
    hbm_bytes: float,
    weight_dtype: str = "bf16",
    kv_dtype: str = "bf16",
) -> dict[str, float]:
    """What one GPU of a serving deployment holds at `context` tokens, from `inference_memory_per_gpu`.

    `weights_bytes` and `kv_room_bytes` (HBM left for KV) per GPU; `kv_bytes_per_token` one cached token costs
    each GPU of its attention replica (the tp x pp GPUs that hold its sequences); `sequences_per_replica` of
    `context` tokens (`largest_batch_that_fits`), `sequences_per_gpu` = that / (tp x pp), and
    `sequences_per_node` the layout's `gpus_per_node` GPUs hold together (whole sequences);
    `longest_context` for `batch` sequences per replica, capped at `max_context_tokens` (`context_capped`
    says whether the cap, not memory, set it). Nothing is reserved for activations.
    """
    one = inference_memory_per_gpu(spec, layout, 1, 1, weight_dtype, kv_dtype)
    per_replica = largest_batch_that_fits(spec, layout, context, hbm_bytes, weight_dtype, kv_dtype)
    longest = longest_context_that_fits(spec, layout, batch, hbm_bytes, weight_dtype, kv_dtype)
    cap = max_context_tokens(spec)
    return {
        "weights_bytes": one["weights"],
        "kv_room_bytes": max(0.0, hbm_bytes - one["weights"]),
        "kv_bytes_per_token": one["kv_cache"],
        "sequences_per_replica": per_replica,
        "sequences_per_gpu": per_replica / (layout.tp * layout.pp),
        "sequences_per_node": per_replica * layout.gpus_per_node // (layout.tp * layout.pp),
        "longest_context": longest if cap is None else min(longest, cap),
        "context_capped": cap is not None and longest > cap,
    }

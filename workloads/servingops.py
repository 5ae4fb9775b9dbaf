"""Serving's operation list: what one GPU runs for one layer of a prefill or decode pass (`workloads.ops` holds
the op, its GEMM and element-wise builders and training's list).

Attention split over the tensor-parallel group (decode reading each sequence's cache, prefill FlashAttention over
per-head keys), the layer's element-wise kernels, TP's all-reduces, the experts at the tokens each slot sees
(only the share of experts the step's tokens reach read their weights), the expert all-to-all's dispatch and
combine, and the head. `simulator.analytic.serving` prices it; `v3sim ops --phase prefill|decode` prints it.
"""

from __future__ import annotations

from dataclasses import replace

from workloads.comm import expected_gpus, expected_nodes
from workloads.dtypes import QUANTIZED_WEIGHTS, dtype_bytes
from workloads.engines import NO_FUSIONS, Fusions
from workloads.flops import attention_core_flops, decode_attention_flops
from workloads.gemms import Gemm, attention_gemms, ffn_gemms, head_gemms, row_parallel, serving_moe_gemms
from workloads.memory import kv_bytes_per_token_per_layer
from workloads.ops import (
    Op,
    OpGroup,
    attention_parts,
    attention_scores,
    elementwise_ops,
    gemm_op,
    layer_counts,
)
from workloads.spec import ModelSpec

# MLA's down projections (TensorRT-LLM's "fused_A"): not split under attention TP, each rank runs them whole on
# the group's tokens (TensorRT-LLM docs "Parallelism in TensorRT-LLM": "DeepSeek-R1: the fused_A GEMM is not
# sharded"; SGLang's and vLLM's MLA hold them as replicated linears; SGLang pull 10568, Ant Group's H20 TP8
# prefill: fused_qkv_a_proj_with_mqa 205.1 ms -> 26.1 ms once its input is scattered over the 8 GPUs)
REPLICATED_UNDER_TP = ("q_a_proj", "kv_a_proj_with_mqa", "qkv_a_proj")
# element-wise kernels over the down projections' latent, which each rank of an attention TP group holds for all
# the group's tokens (q_b_proj and kv_b_proj split their output, not their input): its norms and the casts of the
# up projections' inputs. The norms after each all-reduce stay a rank's share of the tokens (TensorRT-LLM fuses the
# residual add and RMSNorm into its all-reduce, each rank normalizing its slice of the tokens)
REPLICATED_KERNELS = ("latent_norms", "cast.q_latent", "cast.kv_latent")
MOE_GROUP_KERNELS = ("router_topk", "cast.expert_input")  # with the experts on the group: its router, every token


def tp_share(op: Op, tp: int) -> Op:
    """The 1/tp of a GEMM split over a tp group that one GPU runs: its share of the work (`Op.scaled`) at the
    shape it runs (1/tp of the outputs, or of the inputs for a row-parallel GEMM: `workloads.gemms.row_parallel`)."""
    part = op.scaled(1 / tp)
    return replace(part, k=op.k / tp) if row_parallel(op.name) else replace(part, n=op.n / tp)


def timed_gemms(ops: list[Op], library: str, fp8_recipe: str) -> list[Op]:
    """The dense GEMMs an engine runs in `library` (`Fusions.gemms`; "": none) marked for the tables that time
    it (`Op.library`), an FP8 one with its checkpoint's `fp8_recipe`: projections, dense MLPs, the router, the
    shared experts, the head and MLA decode's absorbed BMMs (`absorbed_bmms` runs first) at bf16 or fp8 in both
    operands; not the routed experts (their MoE operator is timed whole), not a weight-only GEMM."""
    if not library:
        return ops

    def timed(op: Op) -> bool:
        dense = op.kind == "gemm" and op.component != "routed_experts" and not op.weights
        return dense and op.precision in ("bf16", "fp8")

    return [replace(op, library=library, scaling=fp8_recipe if op.precision == "fp8" else "") if timed(op) else op
            for op in ops]  # fmt: skip


# MLA's absorbed decode runs kv_b_proj as two batched GEMMs over the local heads (TensorRT-LLM's mla_gen_pre and
# mla_gen_post, the BMMs hwmodels.bmmtables times): q_nope by W_UK into the latent, the latent output by W_UV
ABSORBED_BMMS = ("kv_b_proj.uk", "kv_b_proj.uv")


def absorbed_bmms(ops: list[Op], spec: ModelSpec) -> list[Op]:
    """An MLA decode's `kv_b_proj` as the two batched GEMMs an engine that times them runs (`ABSORBED_BMMS`), one
    per local head: the same FLOPs and weights between them (W_UK's qk_nope x latent and W_UV's latent x v per
    head), and no cast of the kv latent before them (the absorbed decode multiplies q_nope and the attention's
    output, not the cached latent; an FP8 BMM's timing includes its own activation quantize)."""
    if spec.attention != "mla":
        return ops
    nope, v, rank = spec.qk_nope_head_dim, spec.v_dim, spec.kv_lora_rank
    out = []
    for op in ops:
        if op.phase != "decode" or op.name not in ("kv_b_proj", "cast.kv_latent"):
            out.append(op)
        elif op.name == "kv_b_proj":
            heads = op.n / (nope + v)  # the GPU's heads (a TP rank's share)
            for name, n, k, width in (("kv_b_proj.uk", rank, nope, nope), ("kv_b_proj.uv", v, rank, v)):
                part = op.scaled(width / (nope + v))
                out.append(replace(part, name=name, n=n, k=k, groups=round(heads)))
    return out


def _attention_gemm_op(g: Gemm, phase: str, dtype: str, act: str | None, tp: int, scattered: bool) -> Op:
    """One attention GEMM of the tp group's tokens (`g`) as one GPU of the group runs it: 1/tp of the heads (the
    same FLOPs and 1/tp of the weights), an MLA down projection whole on all the tokens, or (`scattered`) whole on
    the GPU's 1/tp of them."""
    if g.name not in REPLICATED_UNDER_TP or tp == 1:
        return tp_share(gemm_op(g, phase, "attn", dtype, act), tp)
    return gemm_op(replace(g, m=g.m / tp) if scattered else g, phase, "attn", dtype, act)


def fused_down_projections(gemms: list[Gemm]) -> list[Gemm]:
    """MLA's two down projections as the engines run them, one GEMM `qkv_a_proj` over their joint output
    (`Fusions.qkv_a`: the same FLOPs and weights, one kernel)."""
    q_a = next((g for g in gemms if g.name == "q_a_proj"), None)
    kv_a = next((g for g in gemms if g.name == "kv_a_proj_with_mqa"), None)
    if q_a is None or kv_a is None:
        return gemms
    joint = replace(q_a, name="qkv_a_proj", n=q_a.n + kv_a.n)
    return [joint if g is q_a else g for g in gemms if g is not kv_a]


def launched(ops: list[Op], fusions: Fusions) -> list[Op]:
    """The ops as an engine launches them in one step (`Op.launch`, set afresh: a mixed step's merged list is
    launched again): the norm after an all-reduce inside it where the engine fuses the two
    (`Fusions.allreduce_norm`; attention's all-reduce precedes add_norm.attn, the MLP's add_norm.mlp), the shared
    experts aside (`Fusions.shared_aside`); every other op its own kernel in turn."""
    reduced = {op.name.split(".", 1)[1] for op in ops if op.name.startswith("all_reduce.")}
    out = []
    for op in ops:
        launch = "own"
        if fusions.allreduce_norm and op.name.startswith("add_norm.") and op.name.split(".", 1)[1] in reduced:
            launch = "fused"
        elif fusions.shared_aside and op.component == "shared_experts":
            launch = "aside"
        out.append(op if op.launch == launch else replace(op, launch=launch))
    return out


def _elementwise(
    spec: ModelSpec, moe: bool, casts: bool, tokens: float, phase: str, tp: int, moe_alone: bool
) -> list[Op]:
    """The layer's element-wise kernels on one GPU of a tp group: those of `REPLICATED_KERNELS` on all the group's
    tokens, the router's top-k and the experts' input cast too where the experts sit on the group (not
    `moe_alone`: an element-wise kernel's bytes grow with its tokens, tp times the GPU's share). The rest work on a
    GPU's heads, expert copies, shard of an MLP or slice of the tokens: `tokens` at full width stand for them."""
    own = elementwise_ops(spec, moe, casts, tokens, phase, fused_add_norm=True)
    whole = set(REPLICATED_KERNELS) | (set() if moe_alone else set(MOE_GROUP_KERNELS)) if tp > 1 else set()
    return [replace(op, hbm_bytes=op.hbm_bytes * tp) if op.name in whole else op for op in own]


def latent_all_gather_ops(spec: ModelSpec, tokens: float, tp: int, phase: str) -> list[Op]:
    """Scattered attention input: the all-gather of MLA's down-projected latent (q and kv, with the RoPE key; bf16)
    of the tp group's `tokens` over the group, before the up projections (SGLang's attention TP with its input
    scattered). Its NVLink bytes are what each GPU receives, (tp - 1) / tp of the gathered tensor."""
    if tp == 1 or spec.attention != "mla":
        return []
    width = (spec.q_lora_rank or 0) + spec.kv_lora_rank + spec.qk_rope_head_dim
    moved = (tp - 1) / tp * tokens * width * dtype_bytes("bf16")
    return [Op("all_gather.latent", "collective", phase, "attn", "tp", "bf16", nvlink_bytes=moved)]


def tp_all_reduce_ops(spec: ModelSpec, tokens: float, tp: int, phase: str, parts: tuple[str, ...]) -> list[Op]:
    """Serving's tensor parallelism: one all-reduce of the tp group's `tokens` x hidden activations (bf16) after
    each of `parts` (attention's output projection, a dense MLP's down projection), as TensorRT-LLM, vLLM and
    SGLang run it (no sequence parallelism). Its NVLink bytes are what a ring moves per GPU, 2 (tp - 1) / tp of
    the message (`all_reduce_message_bytes` inverts it)."""
    if tp == 1:
        return []
    moved = 2 * (tp - 1) / tp * tokens * spec.hidden_size * dtype_bytes("bf16")
    return [Op(f"all_reduce.{part}", "collective", phase, part, "tp", "bf16", nvlink_bytes=moved) for part in parts]


def moe_in_tp_group(tp: int, ep: int) -> bool:
    """Whether a MoE layer's experts sit on the attention TP group that already holds every token of the group
    (ep == tp): each rank runs its experts (whole, or its 1/expert_tp of each under expert TP: with expert_tp ==
    tp every rank holds 1/tp of every expert) on the tokens routed to them, and one all-reduce sums the partial
    outputs, as TensorRT-LLM's and SGLang's MoE run under attention TP (TensorRT-LLM's parallelism guide: moe_tp x
    moe_ep = tp, "TP: every expert's weight matrix is sliced across all GPUs. Each GPU sees all tokens"); no
    all-to-all, and no all-gather or reduce-scatter of expert TP either."""
    return tp > 1 and ep == tp


def all_reduce_message_bytes(op: Op, tp: int) -> float:
    """The message of a `tp_all_reduce_ops` op (the vector each GPU holds) from its NVLink bytes."""
    return op.nvlink_bytes * tp / (2 * (tp - 1))


def serving_layer_ops(
    spec: ModelSpec,
    moe: bool,
    tokens: float,
    queries: float,
    ctx: float,
    phase: str,
    tp: int = 1,
    ep: int = 1,
    redundant: int = 0,
    weight_dtype: str = "fp8",
    kv_dtype: str = "bf16",
    prefix: float = 0.0,
    expert_tp: int = 1,
    attention_dtype: str = "bf16",
    activation_dtype: str | None = None,
    window_ctx: float = 0.0,
    dense_weight_dtype: str | None = None,
    scattered: bool = False,
    fusions: Fusions = NO_FUSIONS,
    fp8_recipe: str = "block",
) -> list[Op]:
    """One layer's ops on one serving GPU for `tokens` tokens through the weights, of which `queries` attend
    over `ctx` keys each (decode: tokens = queries over the cache; prefill: the prompt's new tokens, `window_ctx`
    of the keys the sliding-window layers' part).

    Attention runs on the tp group's tokens (`tokens` x tp), each GPU doing 1/tp of every projection but MLA's
    down projections, which every GPU runs whole on all the group's tokens (`REPLICATED_UNDER_TP`), as it does the
    norms and casts of their latent (`REPLICATED_KERNELS`); `scattered` (SGLang's --enable-attn-tp-input-scattered)
    runs the down projections on each GPU's own 1/tp of the tokens and all-gathers their latent
    (`latent_all_gather_ops`).
    Decode: MLA in the absorbed form reads its whole latent cache, GQA its 1/tp share of the kv heads. Prefill runs
    as it does in DeepSeek's prefill (FlashAttention over per-head keys: MLA QK 192 / V 128, not absorbed):
    `prefix` cached tokens per GPU (prompt-cache hits) have their latent up-projected to keys and values (MLA's
    kv_b_proj) and are read by the attention, in `attention_dtype` (FlashAttention-3's fp8 forward reads fp8 Q, K,
    V). Decode attention's compute stays bf16 (FlashMLA); its KV is read at `kv_dtype`. Both phases run the
    layer's element-wise kernels (each residual add fused into the norm after it, RoPE, SwiGLU, router, combine;
    fp8 weights: the 1x128 activation casts). TP adds an all-reduce after attention (and after a dense MLP) over
    NVLink.

    Experts see each GPU's own tokens over (experts + redundant) / ep slots; a dense MLP is split like attention.
    Experts on the attention TP group itself (ep == tp: `moe_in_tp_group`) take the tokens routed to them from the
    group's, all of which every rank holds, and an all-reduce after the MoE sums their outputs (no dispatch or
    combine); there the router runs whole on every rank over the group's tokens and the shared experts are split
    over the group like a dense MLP (`workloads.gemms.serving_moe_gemms`). Expert TP splits each expert over
    `expert_tp` GPUs of a node: every token's copy reaches all of them (an NVLink all-gather after the dispatch,
    fp8) and their partial outputs are summed (a reduce-scatter before the combine, bf16). Quantized weights'
    GEMMs take `activation_dtype` activations and compute in it (None: the weights' own dtype; `gemm_op`). The
    GEMMs outside the MoE blocks (attention, the dense layers' MLPs) hold `dense_weight_dtype` weights where a
    checkpoint keeps them wider than its experts (None: `weight_dtype`). `fusions` are the serving engine's
    (`workloads.engines`): MLA's down projections as one GEMM, norms inside the all-reduces, shared experts aside,
    the library its dense GEMMs run in where GEMM tables time it (`timed_gemms`; an FP8 one by the checkpoint's
    `fp8_recipe`, block or tensor; MLA decode's up projection then its two BMMs, `absorbed_bmms`), and RoPE inside
    the attention op (GQA's, and MLA decode's).
    """
    group, act, dense = tokens * tp, activation_dtype, dense_weight_dtype or weight_dtype
    moe_alone = moe and not moe_in_tp_group(tp, ep)  # else the experts' outputs are all-reduced too
    attn = attention_gemms(spec, group)
    if fusions.qkv_a:
        attn = fused_down_projections(attn)
    out = [_attention_gemm_op(g, phase, dense, act, tp, scattered) for g in attn]
    if scattered:
        out += latent_all_gather_ops(spec, group, tp, phase)
    casts = (act or weight_dtype) in QUANTIZED_WEIGHTS  # activations quantized for the GEMMs (not weight-only)
    out += _elementwise(spec, moe, casts, tokens, phase, tp, moe_alone)
    if phase == "prefill":
        out += _prefill_attention_ops(spec, queries, ctx, prefix, tp, dense, attention_dtype, act, window_ctx)
    else:
        out.append(decode_attention_op(spec, queries, ctx, tp, kv_dtype))
    out += tp_all_reduce_ops(spec, group, tp, phase, ("attn",) if moe_alone else ("attn", "mlp"))
    if moe:
        gemms = serving_moe_gemms(spec, tokens, ep, redundant, expert_tp, 1 if moe_alone else tp)
        out += [gemm_op(g, phase, "mlp", weight_dtype, act) for g in gemms]  # the MoE block: the experts' dtype
        if expert_tp > 1 and moe_alone:  # on the TP group every rank holds the tokens; the all-reduce sums
            pairs = (expert_tp - 1) * tokens * spec.num_experts_per_tok * spec.hidden_size
            out += [
                Op("all_gather.experts", "collective", phase, "mlp", "expert_tp", "fp8", nvlink_bytes=pairs),
                Op("reduce_scatter.experts", "collective", phase, "mlp", "expert_tp", "bf16",
                   nvlink_bytes=pairs * dtype_bytes("bf16")),
            ]  # fmt: skip
    else:
        out += [tp_share(gemm_op(g, phase, "mlp", dense, act), tp) for g in ffn_gemms(spec, False, group)]
    if fusions.gemms:  # an engine whose kernels are timed by shape runs MLA decode's up projection as two BMMs
        out = absorbed_bmms(out, spec)
    if fusions.rope_in_attention and (phase == "decode" or spec.attention != "mla"):
        out = [op for op in out if op.name != "rope"]  # inside the attention op
    return launched(timed_gemms(out, fusions.gemms, fp8_recipe), fusions)


def decode_attention_op(spec: ModelSpec, queries: float, ctx: float, tp: int = 1, kv_dtype: str = "bf16") -> Op:
    """Decode attention on one GPU of a tp group: every sequence of the group (`queries` per GPU) reads its `ctx`
    cached tokens' KV at `kv_dtype` for this GPU's heads (MLA in the absorbed form: the whole latent, its heads
    split by tp; GQA: its 1/tp share of the KV heads). It computes in its cache's dtype where that is FP8 (FP8
    MMA over an FP8 cache, as TensorRT-LLM's generation kernels and FlashMLA's FP8 kernel run; a profile with
    no FP8 decode class prices it as bf16: `hwmodels.profile.FALLBACKS`), else bf16. Items: the (sequence, KV
    head) pairs, MLA's latent one head."""
    sequences, per_token = queries * tp, ctx * kv_bytes_per_token_per_layer(spec, kv_dtype)
    if spec.attention == "mla":
        kv_heads, share, k, n = 1.0, 1.0, spec.kv_lora_rank + spec.qk_rope_head_dim, spec.kv_lora_rank
    else:
        kv_heads, k, n = spec.kv_heads / min(tp, spec.kv_heads), spec.qk_head_dim, spec.v_dim
        share = kv_heads / spec.kv_heads
    compute = "fp8" if kv_dtype == "fp8" else "bf16"
    return Op("attention", "attention", "decode", "attn", "attn_core", compute, k=k, n=n,
              flops=queries * decode_attention_flops(spec, ctx), hbm_bytes=sequences * per_token * share,
              items=sequences * kv_heads)  # fmt: skip


def _prefill_attention_ops(
    spec: ModelSpec, queries: float, ctx: float, prefix: float, tp: int, weight_dtype: str, attention_dtype: str,
    activation_dtype: str | None = None, window_ctx: float = 0.0,
) -> list[Op]:  # fmt: skip
    """Prefill attention on one GPU of a tp group: the cached prefix's up-projection (MLA) and FlashAttention
    over per-head keys, Q and O of the queries and K and V of every key read once (1/tp of the heads); the
    sliding-window layers' part (`window_ctx` of the keys) as an op of its own (`attention_ops`)."""
    out = []
    if prefix and spec.attention == "mla":
        kv_b = [g for g in attention_gemms(spec, prefix * tp) if g.name == "kv_b_proj"]
        out += [gemm_op(g, "prefill", "attn", weight_dtype, activation_dtype).scaled(1 / tp) for g in kv_b]
    kv_heads = spec.num_attention_heads if spec.attention == "mla" else spec.kv_heads
    width = (spec.qk_head_dim + spec.v_dim) * dtype_bytes(attention_dtype)
    q_o = queries * spec.num_attention_heads * width
    k_v = (queries + prefix) * tp * kv_heads / min(tp, kv_heads) * width
    out += [
        Op(name, "attention", "prefill", "attn", "attn_core", attention_dtype, flops=queries * attention_core_flops(
           spec, keys), hbm_bytes=layers * (q_o + k_v), k=spec.qk_head_dim, n=spec.v_dim, window=window,
           layers=layers, items=attention_scores(spec, queries, keys))
        for name, keys, layers, window in attention_parts(spec, ctx, window_ctx)
    ]  # fmt: skip
    return out


def serving_ep_ops(
    spec: ModelSpec, tokens: float, ep: int, domain: int, forwarded: bool, phase: str, node_limit: int | None = 4
) -> list[Op]:
    """One MoE layer's dispatch (fp8) and combine (bf16) of `tokens` per serving GPU in an EP group of `ep`
    GPUs whose scale-up domain holds `domain` of them: copies bound for another domain go over the NIC
    (DeepEP low-latency: one per expert; normal mode, `forwarded`: one per node, then NVLink, one per destination
    GPU), the rest over NVLink."""
    if not spec.is_moe or ep == 1:
        return []
    k = spec.num_experts_per_tok
    domain = min(ep, domain)
    cross = k * (1 - domain / ep)  # copies bound for another scale-up domain
    if forwarded and cross > 0:
        nodes = ep // domain
        cross = expected_nodes(spec.n_routed_experts, k, nodes, node_limit) * (1 - 1 / nodes)
    # forwarded: one NVLink copy per destination GPU (DeepEP's normal kernels, `workloads.comm`); low-latency
    # kernels send one per expert
    nvlink = expected_gpus(spec.n_routed_experts, k, ep) * (1 - 1 / domain) if forwarded else k * (1 - 1 / ep)
    out = []
    for kind, dtype in (("dispatch", "fp8"), ("combine", "bf16")):
        size = tokens * spec.hidden_size * dtype_bytes(dtype)
        out.append(Op(kind, kind, phase, "mlp", "ep_all_to_all", dtype, ib_bytes=cross * size,
                      nvlink_bytes=nvlink * size, stream="comm"))  # fmt: skip
    return out


def gathered_ep_ops(spec: ModelSpec, tokens: float, ep: int, phase: str, dtype: str) -> list[Op]:
    """One MoE layer's exchange where attention DP gathers rather than sends to the experts (TensorRT-LLM's
    `moe_all_gather`, `workloads.engines`): the dispatch an all-gather of every rank's `tokens` per GPU, each hidden
    vector in `dtype` (`dtype_bytes`: NVFP4's with its FP8 scale per 16) with an int32 slot and an fp32 weight per
    expert picked; the combine a reduce-scatter of the bf16 outputs. `nvlink_bytes` is what one GPU receives or
    sends, the other ranks' (ep - 1) shares, as the collective ops count it; the routing does not change them."""
    if not spec.is_moe or ep == 1:
        return []
    gather = Op(
        "all_gather.moe",
        "dispatch",
        phase,
        "mlp",
        "ep_gather",
        dtype,
        stream="comm",
        nvlink_bytes=(ep - 1) * tokens * (spec.hidden_size * dtype_bytes(dtype) + spec.num_experts_per_tok * 8),
    )
    scatter = Op("reduce_scatter.moe", "combine", phase, "mlp", "ep_gather", "bf16", stream="comm",
                 nvlink_bytes=(ep - 1) * tokens * spec.hidden_size * 2)  # fmt: skip
    return [gather, scatter]


def serving_head_ops(spec: ModelSpec, queries: float, phase: str, tp: int = 1, library: str = "") -> list[Op]:
    """The output head for `queries` tokens per GPU, split over the tp group's vocabulary (BF16): a rank's share
    at the shape it runs, in the engine's timed `library` where it has one (`timed_gemms`)."""
    ops = [tp_share(gemm_op(g, phase, "head", "bf16"), tp) for g in head_gemms(spec, queries * tp)]
    return timed_gemms(ops, library, "block")


def serving_model_ops(
    spec: ModelSpec, phase: str, tokens: float, ctx: float, tp: int = 1, ep: int = 1, redundant: int = 0,
    weight_dtype: str = "fp8", kv_dtype: str = "bf16", domain: int = 8, window_ctx: float = 0.0,
    fusions: Fusions = NO_FUSIONS,
) -> list[OpGroup]:  # fmt: skip
    """The whole model's ops for one serving pass (`prefill` or `decode`) of `tokens` tokens per GPU, each
    attending `ctx` keys (a prefill: `window_ctx` of them the sliding-window layers' part), launched as an engine's
    `fusions` say: one group per layer kind with its dispatch / combine, and the head."""
    groups = []
    for moe, count in layer_counts(spec, False).items():
        if not count:
            continue
        ops = serving_layer_ops(spec, moe, tokens, tokens, ctx, phase, tp, ep, redundant, weight_dtype, kv_dtype,
                                window_ctx=window_ctx, fusions=fusions)  # fmt: skip
        a2a = moe and not moe_in_tp_group(tp, ep)  # experts on the TP group: all-reduced, no all-to-all
        ops += serving_ep_ops(spec, tokens, ep, domain, phase == "prefill", phase) if a2a else []
        groups.append(OpGroup("moe" if moe else "dense", count, tuple(ops)))
    return [*groups, OpGroup("head", 1, tuple(serving_head_ops(spec, tokens, phase, tp, fusions.gemms)))]

"""HBM bytes per token of the memory-bound (element-wise) kernels of one layer, forward and backward.

Counted op by op as elements read + written, at 2 bytes (bf16) unless said, assuming no fusion beyond what
every modern stack has (norm, SwiGLU, RoPE and quantization each one kernel). The backward of a nonlinear
element-wise op (SwiGLU, the combine's weighting, the router) reads its saved input and the incoming gradient
and writes one gradient: about twice the forward's bytes (`BACKWARD_TO_FORWARD`); a norm's backward reads its
input and the gradient and writes one gradient, 1.5x its forward (read x, write y), in a kernel class of its
own (`norm_backward`: a reduction over the hidden size, slower per byte than the forward). A linear one
(`LINEAR`: a residual add, RoPE's rotation, a permutation) has its transpose as backward, which saves nothing
and moves what the forward moves; the FP8 recipe adds its backward casts. Attention and GEMM operand traffic
is not here: those kernels are compute-bound and timed by their FLOPs.
"""

from __future__ import annotations

from workloads.comm import dispatch_form
from workloads.dtypes import dtype_bytes
from workloads.gemms import attention_gemms, ffn_gemms
from workloads.spec import ModelSpec

BF16 = 2
FP8_QUANT = BF16 + 1  # read bf16, write fp8 (scales are 1/128 of that: left out)
BACKWARD_TO_FORWARD = 2
NORM_BACKWARD_TO_FORWARD = 1.5  # read x and dy, write dx, against the forward's read x, write y
# Kernels that are linear maps of their input: the backward is the transpose, the same bytes as the forward.
# The combine sums the k expert outputs unweighted (the gate's weight scales the SwiGLU output before the down
# projection: V3's trace runs `swiglu_forward_with_weight`, and activations.py's selective count assumes it);
# its transpose, the broadcast of the gradient, is the dispatch of gradients, and the backward's reduce is the
# sum of the k gradient copies coming back: V3's trace runs `reduce_fused_impl` twice a layer, as long each.
LINEAR = (
    "residual_add.attn",
    "residual_add.mlp",
    "rope",
    "permute",
    "combine_reduce",
    "sort_chunks",
    "sort_chunks.combine",
)
# GEMMs V3 runs in FP8 under its recipe; the output head, the router and MTP's eh_proj stay BF16 (V3 report,
# section 3.3.1). Serving with FP8 weights keeps the same ones in BF16.
FP8_COMPONENTS = ("attn_proj", "dense_ffn", "shared_experts", "routed_experts")


Kernel = tuple[str, str, float, str]  # (name, part, HBM bytes per token, kernel class)


def layer_elementwise_kernels(
    spec: ModelSpec, moe: bool, fp8: bool, dispatcher: str = "deepep-fp8", ep: int = 1, fused_add_norm: bool = False
) -> list[Kernel]:
    """(name, part, forward HBM bytes per token, class) of one layer's memory-bound kernels, one per kernel.

    Elements read + written at bf16 unless said, one kernel per norm, SwiGLU, RoPE, permute and cast; the
    FP8 casts read bf16 and write fp8 (scales, 1/128 of that, left out). The class names a row of
    hwmodels/data/kernels/elementwise.toml (the rate such a kernel reaches). A MoE layer's token movement follows
    its all-to-all `dispatcher` (simulator.names.EP_DISPATCHERS, `workloads.comm.dispatch_form`): V3's DeepEP
    delivers fp8 tokens cast once at their source; Megatron's dispatchers deliver bf16, so the experts' FP8
    GEMMs cast each routed copy on arrival; its `alltoall` dispatcher (NCCL, one copy per remote expert) also
    sorts the arrivals by local expert when a GPU holds more than one of the experts (1/`ep` of them), and
    unsorts the outputs (Megatron-LM megatron/core/transformer/moe/token_dispatcher.py, MoEAlltoAllTokenDispatcher:
    "Permutation 2: Sort tokens by local expert", `sort_chunks_by_idxs`, and "Unpermutation 2").
    With `fused_add_norm` (the serving engines: SGLang's and vLLM's `fused_add_rmsnorm`, TensorRT-LLM's RMSNorm
    with a residual) each residual add runs in the norm after it, one kernel reading the sublayer's output and the
    residual and writing both the new residual and its norm.
    """
    h, heads = spec.hidden_size, spec.num_attention_heads
    rows: list[Kernel] = [
        ("input_norm", "attn", 2 * h * BF16, "norm"),
        ("residual_add.attn", "attn", 3 * h * BF16, "copy"),
        ("post_attention_norm", "mlp", 2 * h * BF16, "norm"),
        ("residual_add.mlp", "mlp", 3 * h * BF16, "copy"),
    ]
    if fused_add_norm:  # the MLP's output into the next layer's input norm, the attention's into the MLP's
        rows = [("add_norm.attn", "attn", 4 * h * BF16, "norm"), ("add_norm.mlp", "mlp", 4 * h * BF16, "norm")]
    casts = [("cast.attn_input", "attn", h), ("cast.o_proj_input", "attn", heads * spec.v_dim)]
    if spec.attention == "mla":
        latents = spec.q_lora_rank + spec.kv_lora_rank
        rows += [
            ("latent_norms", "attn", 2 * latents * BF16, "norm"),
            ("rope", "attn", 2 * (heads + 1) * spec.qk_rope_head_dim * BF16, "copy"),  # q_pe, the shared k_pe
        ]
        casts += [("cast.q_latent", "attn", spec.q_lora_rank), ("cast.kv_latent", "attn", spec.kv_lora_rank)]
    else:
        rows.append(("rope", "attn", 2 * (heads + spec.kv_heads) * spec.qk_head_dim * BF16, "copy"))
    if not moe:
        inter = spec.intermediate_size
        rows.append(("swiglu", "mlp", 3 * inter * BF16, "swiglu"))
        casts += [("cast.mlp_input", "mlp", h), ("cast.down_input", "mlp", inter)]
    else:
        k, copies = spec.num_experts_per_tok, spec.num_experts_per_tok + spec.n_shared_experts
        inter = spec.moe_intermediate_size
        sent, direct = dispatch_form(dispatcher, "fp8" if fp8 else "bf16")
        token = h * dtype_bytes(sent)  # what dispatch delivers: fp8 under V3's FP8 recipe, bf16 from Megatron's
        rows += [
            ("permute", "mlp", 2 * k * token, "permute"),  # received copies into expert order, read + write
            ("swiglu", "mlp", copies * 3 * inter * BF16, "swiglu"),  # every routed and shared expert's
            ("combine_reduce", "mlp", (k + 1) * h * BF16, "combine"),  # read k expert outputs, write the sum
            ("router_topk", "mlp", 2 * spec.n_routed_experts * 4, "copy"),  # sigmoid and top-k, fp32 scores
        ]
        if direct and spec.n_routed_experts > ep:  # Megatron's alltoall: arrivals sorted by local expert, and back
            rows += [
                ("sort_chunks", "mlp", 2 * k * token, "permute"),
                ("sort_chunks.combine", "mlp", 2 * k * h * BF16, "permute"),
            ]
        # cast once before an fp8 dispatch; after a bf16 one, each routed copy where its expert runs (and the shared
        # experts' own input)
        expert_input = h if sent == "fp8" else (k + min(1, spec.n_shared_experts)) * h
        casts += [("cast.expert_input", "mlp", expert_input), ("cast.down_input", "mlp", copies * inter)]
    if fp8:
        rows += [(name, part, FP8_QUANT * elems, "cast") for name, part, elems in casts]
    return rows


def layer_backward_elementwise_kernels(
    spec: ModelSpec, moe: bool, fp8: bool, dispatcher: str = "deepep-fp8", ep: int = 1
) -> list[Kernel]:
    """(name, part, backward HBM bytes per token, class) of one layer's memory-bound kernels.

    Each forward kernel but the casts has a backward: a nonlinear one of about twice its bytes (it reads its saved
    input and the incoming gradient, and writes a gradient; a norm 1.5x, in class `norm_backward`), a linear one
    (`LINEAR`) of its own bytes as the run moves them: under the FP8 recipe the gradients into the experts'
    down-projections are dispatched, and so permuted, in fp8 (V3 report, section 3.3.3; V3's trace runs the same
    `expand_to_fused_with_scales` kernel, as long, forward and backward). Under the FP8 recipe (section 3.3) every
    FP8 GEMM's output gradient is cast 1x128 for the input-gradient GEMM and cast-and-transposed 128x1 for the
    weight-gradient GEMM (read bf16, write fp8), and its input, kept in fp8 as 1x128 tiles, is re-laid as 128x1
    tiles for the weight-gradient GEMM (read fp8, write fp8). The activations the recipe caches in fp8 (V3 report,
    section 3.3.3: the input of the linear after attention, and the MoE SwiGLU's inputs, whose output is recomputed)
    are cast back to bf16 for the backward that reads them (read fp8, write bf16).
    """
    as_run = {name: nbytes for name, _, nbytes, _ in layer_elementwise_kernels(spec, moe, fp8, dispatcher, ep)}
    rows = [_backward(name, part, nbytes, cls, as_run[name]) for name, part, nbytes, cls in
            layer_elementwise_kernels(spec, moe, False, dispatcher, ep)]  # fmt: skip
    if fp8:
        for part, gemms in (("attn", attention_gemms(spec, 1.0)), ("mlp", ffn_gemms(spec, moe, 1.0))):
            fp8_gemms = [g for g in gemms if g.component in FP8_COMPONENTS]
            outputs = sum(g.m * g.n * g.groups for g in fp8_gemms)  # output elements per token
            inputs = sum(g.m * g.k * g.groups for g in fp8_gemms)
            rows += [
                (f"cast.grad_outputs.{part}", part, FP8_QUANT * outputs, "cast"),
                (f"cast_transpose.grad_outputs.{part}", part, FP8_QUANT * outputs, "cast_transpose"),
                (f"cast_transpose.inputs.{part}", part, 2 * inputs, "cast_transpose"),
            ]
        rows.append(("dequant.o_proj_input", "attn", FP8_QUANT * spec.num_attention_heads * spec.v_dim, "dequant"))
        if moe:
            copies = spec.num_experts_per_tok + spec.n_shared_experts
            rows.append(("dequant.swiglu_input", "mlp", FP8_QUANT * copies * 2 * spec.moe_intermediate_size, "dequant"))
    return rows


def _backward(name: str, part: str, nbytes: float, cls: str, as_run: float) -> Kernel:
    """The backward kernel of one forward kernel (`nbytes` at bf16, `as_run` in the run's dtypes): a linear
    map moves what its forward moves as run, a norm 1.5x its forward in its own class, any other nonlinear
    kernel twice its forward."""
    if name in LINEAR:
        return (f"{name}.backward", part, as_run, cls)
    if cls == "norm":
        return (f"{name}.backward", part, NORM_BACKWARD_TO_FORWARD * nbytes, "norm_backward")
    return (f"{name}.backward", part, BACKWARD_TO_FORWARD * nbytes, cls)


def layer_elementwise_bytes(spec: ModelSpec, moe: bool, fp8: bool) -> float:
    """Forward HBM bytes per token of one decoder layer's memory-bound ops (the sum over its kernels)."""
    return float(sum(row[2] for row in layer_elementwise_kernels(spec, moe, fp8)))


def loss_bytes_per_token(spec: ModelSpec, heads: int = 1) -> float:
    """Forward + backward HBM bytes per token of the softmax cross-entropy over fp32 logits, per output head."""
    return float(heads * 4 * spec.vocab_size * 4)  # write logits, read for softmax; write and read the gradient

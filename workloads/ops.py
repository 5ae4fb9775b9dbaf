"""The operation list: what one GPU runs for one layer (or the head) of one micro-batch, op by op.

Every model prices this same list: the analytic training model (`simulator.analytic.training`), through it the
event model, and serving (`simulator.analytic.serving`); `v3sim ops` prints it so a user can read what is priced
and hold it against a profiler trace. An op carries its shape, FLOPs, HBM bytes, the bytes it puts on
each link kind, its precision and its stream; it carries no time (pricing is the simulator's).

Counts come from the modules that own them: GEMMs from `workloads.gemms` (backward: input and weight
gradient, same FLOPs each), the attention core from `workloads.flops` (backward 2.5x forward FLOPs,
FlashAttention's convention), element-wise kernels op by op (their forward bytes sum to
`workloads.elementwise.layer_elementwise_bytes`, backward twice that), dispatch / combine bytes from
`workloads.comm`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from workloads.comm import dispatch_form, ep_bytes_per_token_per_layer
from workloads.dtypes import QUANTIZED_WEIGHTS, dtype_bytes
from workloads.elementwise import (
    BACKWARD_TO_FORWARD,
    BF16,
    FP8_COMPONENTS,
    FP8_QUANT,
    layer_backward_elementwise_kernels,
    layer_elementwise_kernels,
    loss_bytes_per_token,
)
from workloads.flops import attention_core_flops, mean_attended_keys, windowed_keys
from workloads.gemms import (
    MOE_BLOCK,
    Gemm,
    attention_gemms,
    ffn_gemms,
    head_gemms,
    tp_chunked,
    tp_shard,
)
from workloads.layout import ParallelLayout
from workloads.spec import ModelSpec

OP_KINDS = ("gemm", "grouped_gemm", "attention", "elementwise", "dispatch", "combine", "collective", "send_recv")
TRAINING_PHASES = ("forward", "backward_input", "backward_weight")
SERVING_PHASES = ("prefill", "decode")
PARTS = ("attn", "mlp", "head")
LAUNCHES = ("own", "fused", "aside")  # how a serving engine runs an op (`Op.launch`)
ATTENTION_BWD_FLOP_RATIO = 2.5  # FlashAttention: backward = 2.5 x forward FLOPs


@dataclass(frozen=True, slots=True)
class Op:
    """One kernel or transfer on one GPU: counts for all the tokens it runs on (no time: pricing is apart).

    `component` is the `workloads.flops` component for compute ops (FLOPs sum per component), else a plain name of
    what the bytes are; `stream` is where it runs: `compute` on the SMs, `comm` on the links. GEMMs are (m x k) @ (k
    x n), `groups` times; training and prefill attention carry their head dims, `k` of the queries and keys and `n`
    of the values, and the attention of sliding-window layers its `window` (keys); other ops leave the shape at 0.
    `layers` is the share of the layers an op runs in, where an average layer's op is one kind of layer's (the full
    and the windowed layers' attention): there it is one kernel of 1 / `layers` its counts. `weights` names a GEMM's
    weight dtype where the GEMM computes in another (fp4 weights computing in bf16, weight-only, or in fp8); ""
    where they agree. Decode attention carries the widths it reads per cached token and head, `k` of the keys and
    `n` of the values (MLA's absorbed form: the latent and its rope key, 576, and the latent, 512). `items` are what
    a kernel pays for one by one beside its FLOPs and bytes, where a profile prices them (`KernelFit.item_s`):
    decode attention's (sequence, KV head) pairs, one thread block each; training and prefill attention's scores,
    one softmax exponential each; the expert all-to-all's tokens (`hwmodels.kernels.DeepEPKernel`). `scaling` is an
    FP8 GEMM's recipe (block, tensor, mx: `simulator.names.FP8_RECIPES`: training's, and serving's where a table
    prices it), "" elsewhere. `active` is the share of a grouped GEMM's groups (experts) that get tokens, whose
    weights it reads (`workloads.gemms.active_share`); 1 elsewhere. `launch` is how a serving engine runs it
    (`workloads.engines`): `own`, a kernel of its own in turn; `fused`, inside a neighbouring kernel (its bytes, no
    launch); `aside`, on a second stream beside the main one (its work, its latency hidden). `library` names the
    kernel library a serving engine runs a dense GEMM in where the GPU's GEMM table times that library by shape
    (`hwmodels.gemmtables`; "trtllm": TensorRT-LLM's Linear), its `m`, `n` and `k` then the shape one GPU runs; ""
    where the profile's rates price it.
    """

    name: str
    kind: str
    phase: str
    part: str
    component: str
    precision: str
    flops: float = 0.0
    hbm_bytes: float = 0.0
    ib_bytes: float = 0.0
    nvlink_bytes: float = 0.0
    m: float = 0.0
    n: float = 0.0
    k: float = 0.0
    groups: int = 1
    stream: str = "compute"
    window: int = 0
    layers: float = 1.0
    weights: str = ""
    items: float = 0.0
    scaling: str = ""
    active: float = 1.0
    launch: str = "own"
    library: str = ""

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS:
            raise ValueError(f"op {self.name}: kind {self.kind!r} is not one of {', '.join(OP_KINDS)}")
        if self.launch not in LAUNCHES:
            raise ValueError(f"op {self.name}: launch {self.launch!r} is not one of {', '.join(LAUNCHES)}")
        if self.phase not in TRAINING_PHASES + SERVING_PHASES:
            raise ValueError(f"op {self.name}: phase {self.phase!r} is unknown")

    @property
    def weight_bytes(self) -> float:
        """Bytes of one weight element of a GEMM: its weights' own dtype where it computes in another."""
        return dtype_bytes(self.weights or self.precision)

    @property
    def profile_class(self) -> str:
        """The kernel-profile class that prices a compute op (`gemm_fp8`, `gemm_wgrad_fp8`, `grouped_gemm_w4a8`,
        `attention_bwd_bf16`, `attention_fwd_mla_bf16`, `attention_decode_mla_fp8`, `memory`)."""
        if self.kind in ("gemm", "grouped_gemm"):
            if self.phase == "backward_weight" and self.precision == "fp8":
                return "gemm_wgrad_fp8"  # the FP8 recipe's weight-gradient kernels: a class of their own
            if self.weights == "fp4" and self.precision in ("bf16", "fp8"):
                # 4-bit weights converted in the GEMM (W4A16 weight-only, W4A8): kernels of their own
                return f"{self.kind}_w4a{8 * dtype_bytes(self.precision):.0f}"
            return f"{self.kind}_{self.precision}"
        if self.kind == "attention":
            mla = "_mla" if self.k != self.n else ""  # MLA's shapes (prefill 192 / 128, decode 576 / 512)
            if self.phase == "decode":  # one query per sequence over its cache (FlashMLA, XQA)
                return f"attention_decode{mla}_{self.precision}"
            # MLA's head shape in bf16 runs kernels of its own
            mla = mla if self.precision == "bf16" else ""
            shape = "_window" if self.window else mla  # sliding-window layers: kernels of their own
            if self.phase in ("backward_input", "backward_weight"):
                return f"attention_bwd{shape}_bf16"
            return f"attention_fwd{shape}_{self.precision}"  # FlashAttention-3 forward: bf16, or fp8 serving prefill
        if self.kind == "elementwise":
            return "memory"
        raise ValueError(f"op {self.name} ({self.kind}) runs on the links, not against a kernel profile")

    def scaled(self, k: float) -> Op:
        """`k` of this op's work (a 1/tp share of a split GEMM; `k` copies of a per-layer op)."""
        return replace(
            self, flops=k * self.flops, hbm_bytes=k * self.hbm_bytes, ib_bytes=k * self.ib_bytes,
            nvlink_bytes=k * self.nvlink_bytes, items=k * self.items,
        )  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def gemm_precision(component: str, precision: str) -> str:
    """The operand precision of a GEMM of `component` in a run whose GEMMs are `precision` (fp8 or bf16)."""
    return precision if precision in QUANTIZED_WEIGHTS and component in FP8_COMPONENTS else "bf16"


def gemm_op(g: Gemm, phase: str, part: str, precision: str, activation: str | None = None, scaling: str = "") -> Op:
    """One GEMM as an op: operands in its precision, output in bf16, HBM bytes each read or written once. A
    quantized weight's GEMM with `activation` given (W4A8, weight-only W4A16) reads its activations in that dtype
    and computes in it (the op's precision: its kernel class); the weights keep their own bytes. An FP8 GEMM
    carries the run's `scaling` recipe (simulator.names.FP8_RECIPES), training's only."""
    prec = gemm_precision(g.component, precision)
    kind = "grouped_gemm" if g.component == "routed_experts" else "gemm"
    if activation is None or prec not in QUANTIZED_WEIGHTS or activation == prec:
        nbytes, compute = g.bytes(dtype_bytes(prec), dtype_bytes("bf16")), prec
    else:
        nbytes, compute = g.bytes(dtype_bytes(activation), dtype_bytes("bf16"), dtype_bytes(prec)), activation
    weights = prec if compute != prec else ""
    scaled = scaling if compute == "fp8" else ""
    return Op(g.name, kind, phase, part, g.component, compute, flops=g.flops, hbm_bytes=nbytes, m=g.m, n=g.n,
              k=g.k, groups=g.groups, weights=weights, scaling=scaled, active=g.active)  # fmt: skip


def gemm_ops(gemms: list[Gemm], phases: tuple[str, ...], part: str, precision: str, scaling: str = "") -> list[Op]:
    """The GEMMs in each training phase: forward as given, backward_input their dgrad, backward_weight wgrad."""
    shape = {"forward": lambda g: g, "backward_input": Gemm.dgrad, "backward_weight": Gemm.wgrad}
    return [gemm_op(shape[p](g), p, part, precision, scaling=scaling) for p in phases for g in gemms]


def attention_ops(spec: ModelSpec, tokens: float, ctx: float, phase: str, window_ctx: float = 0.0) -> list[Op]:
    """The attention core of one layer for `tokens` queries attending `ctx` keys each, averaged over the layers
    (FlashAttention I/O: Q, K, V and O once forward, twice backward). Of those keys `window_ctx` are the
    sliding-window layers' part (`workloads.flops.windowed_keys`): their attention is an op of its own, with
    their share of the layers' bytes, priced by the windowed kernels' class."""
    nbytes = tokens * spec.num_attention_heads * 2 * (spec.qk_head_dim + spec.v_dim) * dtype_bytes("bf16")
    k = ATTENTION_BWD_FLOP_RATIO if phase == "backward_input" else 1.0
    nbytes *= 2 if phase == "backward_input" else 1
    return [
        Op(name, "attention", phase, "attn", "attn_core", "bf16", flops=k * tokens * attention_core_flops(spec, keys),
           hbm_bytes=layers * nbytes, k=spec.qk_head_dim, n=spec.v_dim, window=window, layers=layers,
           items=attention_scores(spec, tokens, keys))
        for name, keys, layers, window in attention_parts(spec, ctx, window_ctx)
    ]  # fmt: skip


def attention_scores(spec: ModelSpec, queries: float, keys: float) -> float:
    """The attention scores (softmax exponentials) of `queries` attending `keys` each over every head: an
    attention op's items (its FLOPs over 2 x (qk + v) per score), which a profile timed over head dims prices
    one by one beside the FLOPs (a head dim of 64 runs as many exponentials for half the matrix work)."""
    return queries * spec.num_attention_heads * keys


def attention_parts(spec: ModelSpec, ctx: float, window_ctx: float) -> list[tuple[str, float, float, int]]:
    """(name, keys, share of the layers, window) of the full layers' attention and, where `window_ctx` keys are
    the sliding-window layers' part of the mean `ctx`, theirs."""
    if not window_ctx:
        return [("attention", ctx, 1.0, 0)]
    share = spec.sliding_window_layers / spec.num_hidden_layers
    parts = [
        ("attention", ctx - window_ctx, 1 - share, 0),
        ("attention.window", window_ctx, share, spec.sliding_window),
    ]
    return [p for p in parts if p[2] > 0]  # every layer windowed (Mistral 7B v0.1): the windowed op alone


def elementwise_ops(
    spec: ModelSpec, moe: bool, fp8: bool, tokens: float, phase: str, amax: bool = False,
    dispatcher: str = "deepep-fp8", ep: int = 1, fused_add_norm: bool = False,
) -> list[Op]:  # fmt: skip
    """One layer's memory-bound kernels for `tokens` tokens; `component` names the kernel class. With `amax`
    (per-tensor FP8 scaling, the `tensor` recipe) each cast of a bf16 tensor first reads it for its amax: a
    kernel of its own (Transformer Engine's current scaling), at the copy's rate."""
    if phase == "backward_input":
        kernels = layer_backward_elementwise_kernels(spec, moe, fp8, dispatcher, ep)
    else:
        kernels = layer_elementwise_kernels(spec, moe, fp8, dispatcher, ep, fused_add_norm)
    out = []
    for name, part, per_token, cls in kernels:
        if amax and cls == "cast":  # read bf16 (2 of the cast's FP8_QUANT bytes an element)
            out.append(Op(f"amax.{name}", "elementwise", phase, part, "copy", "bf16",
                          hbm_bytes=tokens * per_token * BF16 / FP8_QUANT))  # fmt: skip
        out.append(Op(name, "elementwise", phase, part, cls, "bf16", hbm_bytes=tokens * per_token))
    return out


def layer_ops(
    spec: ModelSpec,
    moe: bool,
    tokens: float,
    ctx: float,
    phases: tuple[str, ...] = TRAINING_PHASES,
    ep: int = 1,
    precision: str = "bf16",
    window_ctx: float = 0.0,
    tp: int = 1,
    scaling: str = "",
    tp_overlap: bool = False,
    dispatcher: str = "deepep-fp8",
) -> list[Op]:
    """Compute ops of one decoder layer for `tokens` tokens on one GPU (1/ep of the routed experts), queries
    attending `ctx` keys each (`window_ctx` of them the sliding-window layers' part): attention GEMMs and core,
    element-wise kernels, FFN or expert GEMMs; the GEMMs shaped as one of `tp` ranks runs them (`tp_shard`), FP8
    ones with the run's `scaling` recipe. With `tp_overlap` (userbuffers) the split GEMMs of the forward and
    input-gradient phases, each under its collective, run in `tp` chunks of the tokens (`tp_chunked`)."""
    fp8 = precision == "fp8"
    attn = [tp_shard(g, tp) for g in attention_gemms(spec, tokens)]
    ffn = [tp_shard(g, tp) for g in ffn_gemms(spec, moe, tokens, ep)]
    out = []
    for phase in phases:
        out += _tp_gemm_ops(attn, phase, "attn", precision, scaling, tp if tp_overlap else 1)
        if phase != "backward_weight":
            out += attention_ops(spec, tokens, ctx, phase, window_ctx)
            out += elementwise_ops(spec, moe, fp8, tokens, phase, fp8 and scaling == "tensor", dispatcher, ep)
        out += _tp_gemm_ops(ffn, phase, "mlp", precision, scaling, tp if tp_overlap else 1)
    return out


def _tp_gemm_ops(gemms: list[Gemm], phase: str, part: str, precision: str, scaling: str, chunks: int) -> list[Op]:
    """`gemm_ops` of one phase, the tensor-parallel GEMMs under a collective in `chunks` pieces (1: whole)."""
    if chunks == 1 or phase == "backward_weight":
        return gemm_ops(gemms, (phase,), part, precision, scaling)
    split = [g if g.component in MOE_BLOCK else tp_chunked(g, chunks) for g in gemms]
    return gemm_ops(split, (phase,), part, precision, scaling)


def head_ops(
    spec: ModelSpec, tokens: float, mtp_depths: int = 0, phases: tuple[str, ...] = TRAINING_PHASES, tp: int = 1
) -> list[Op]:
    """The output head (once per prediction depth), MTP's eh_proj, and the loss (forward: half its bytes); the
    GEMMs as one of `tp` ranks runs them."""
    out = []
    gemms = [tp_shard(g, tp) for g in head_gemms(spec, tokens, mtp_depths)]
    for phase in phases:
        out += gemm_ops(gemms, (phase,), "head", "bf16")
        if phase != "backward_weight":
            k = 1 if phase == "backward_input" else 1 / BACKWARD_TO_FORWARD
            loss = k * tokens * loss_bytes_per_token(spec, 1 + mtp_depths)
            out.append(Op("cross_entropy", "elementwise", phase, "head", "loss", "fp32", hbm_bytes=loss))
    return out


def ep_ops(
    spec: ModelSpec,
    layout: ParallelLayout,
    tokens: float,
    phases: tuple[str, ...] = ("forward", "backward_input"),
    node_limit: int | None = None,
    precision: str = "bf16",
    dispatcher: str = "deepep-fp8",
) -> list[Op]:
    """One MoE layer's expert-parallel dispatch and combine for `tokens` tokens on one GPU: InfiniBand bytes
    (one copy per remote node; per remote expert under the `alltoall` dispatcher) and NVLink bytes (forwarded
    and in-node copies). Forward dispatch is fp8 under V3's FP8 recipe (`deepep-fp8`), bf16 under Megatron's
    dispatchers; gradients go back in bf16 (backward dispatch retraces the combine, and back). Its items are the
    tokens the GPU sends (DeepEP's kernels pay per token beside the bytes: `hwmodels.kernels.DeepEPKernel`)."""
    if not spec.is_moe or layout.ep == 1:
        return []
    out = []
    dispatch_dtype, direct = dispatch_form(dispatcher, precision)
    for phase in phases:
        if phase == "forward":
            vol = ep_bytes_per_token_per_layer(spec, layout, node_limit, dispatch_dtype, "bf16", direct)
            pairs = (("dispatch", "dispatch", dispatch_dtype), ("combine", "combine", "bf16"))
        elif phase == "backward_input":
            vol = ep_bytes_per_token_per_layer(spec, layout, node_limit, "bf16", "bf16", direct)
            pairs = (("dispatch", "combine", "bf16"), ("combine", "dispatch", "bf16"))
        else:
            continue
        for kind, volume, prec in pairs:
            ib, nvlink = tokens * vol[f"{volume}_ib"], tokens * vol[f"{volume}_nvlink"]
            op = Op(kind, kind, phase, "mlp", "ep_all_to_all", prec, ib_bytes=ib, nvlink_bytes=nvlink, stream="comm")
            out.append(replace(op, items=tokens))  # DeepEP pays per token sent beside the bytes
    return out


def tp_ops(spec: ModelSpec, tokens: float, tp: int, phase: str) -> list[Op]:
    """Tensor parallelism with sequence parallelism, over NVLink, of the tp group's `tokens` x hidden
    activations (bf16): an all-gather before and a reduce-scatter after each of attention and MLP (forward,
    and their transposes in the backward's input gradients); the weight gradients need the two gathered inputs
    again, gathered a second time as Megatron does (under the input-gradient GEMMs)."""
    if tp == 1:
        return []
    shard = (tp - 1) / tp * tokens * spec.hidden_size * dtype_bytes("bf16")
    colls = ("all_gather",) if phase == "backward_weight" else ("all_gather", "reduce_scatter")
    return [
        Op(f"{coll}.{part}", "collective", phase, part, "tp", "bf16", nvlink_bytes=shard)
        for part in ("attn", "mlp")
        for coll in colls
    ]


CP_COMM = ("ring", "all-gather", "all-to-all")  # simulator.names.CP_COMM_MODES


def cp_ops(spec: ModelSpec, tokens: float, cp: int, tp: int, across_nodes: bool, comm: str = "ring") -> list[Op]:
    """Context parallelism's exchange for one attention layer on one GPU, whose CP group splits `tokens` (a
    sequence group) into cp chunks; per head, bf16, K/V heads split by TP. Over NVLink within a node, else
    InfiniBand. Pricing decides what hides (`simulator.analytic.training`: the ring under the attention, the
    others exposed).
    - ring (TE's p2p): the other ranks' K and V pass by, cp - 1 chunks, as the attention kernel reads them;
      backward K and V again and their gradients.
    - all-gather (Llama 3, TE's all_gather): the same K/V bytes, gathered before the attention; backward
      gathered again and their gradients reduce-scattered.
    - all-to-all (Ulysses, TE's a2a): Q, K, V swapped from a sequence split to a head split and the output
      back, (cp - 1) / cp of this rank's own tokens each way; backward the same bytes for the gradients.
    (Exchanging MLA's compressed latent instead would move kv_lora_rank + rope dims per token, not the heads.)"""
    if cp == 1:
        return []
    if comm not in CP_COMM:
        raise ValueError(f"cp comm {comm!r}; use one of {', '.join(CP_COMM)}")
    bf16 = dtype_bytes("bf16")
    kv_heads = max(spec.num_key_value_heads / tp, 1.0)  # GQA's K/V heads replicate past tp = their count
    kv_per_token = kv_heads * (spec.qk_head_dim + spec.v_dim) * bf16
    if comm == "all-to-all":
        q_and_out = spec.num_attention_heads / tp * (spec.qk_head_dim + spec.v_dim) * bf16
        forward = (cp - 1) / cp * tokens / cp * (kv_per_token + q_and_out)
        backward = forward
    else:
        forward = (cp - 1) / cp * tokens * kv_per_token
        backward = 2 * forward
    kind = "send_recv" if comm == "ring" else "collective"
    name = {"ring": "ring.kv", "all-gather": "all_gather.kv", "all-to-all": "all_to_all.qkvo"}[comm]
    ops = []
    for phase, size, suffix in (("forward", forward, ""), ("backward_input", backward, "_and_grads")):
        ib, nvlink = (size, 0.0) if across_nodes else (0.0, size)
        op = Op(name + suffix, kind, phase, "attn", "cp", "bf16", ib_bytes=ib, nvlink_bytes=nvlink, stream="comm")
        ops.append(op)
    return ops


def pp_ops(spec: ModelSpec, tokens: float, first: bool, last: bool) -> list[Op]:
    """A stage's pipeline traffic per micro-batch: activations to the next stage, gradients to the previous."""
    size = tokens * spec.hidden_size * dtype_bytes("bf16")
    out = []
    if not last:
        out.append(Op("send.activations", "send_recv", "forward", "mlp", "pp", "bf16", ib_bytes=size, stream="comm"))
    if not first:
        out.append(Op("send.gradients", "send_recv", "backward_input", "attn", "pp", "bf16", ib_bytes=size,
                      stream="comm"))  # fmt: skip
    return out


def total(ops: list[Op], field: str = "flops") -> float:
    """The sum of one field over a list of ops."""
    return sum(getattr(op, field) for op in ops)


@dataclass(frozen=True, slots=True)
class OpGroup:
    """Ops that run `count` times per micro-batch (or serving step) on a GPU holding the whole model."""

    layer: str  # "dense", "moe" or "head"
    count: int
    ops: tuple[Op, ...]

    def to_dict(self) -> dict[str, object]:
        return {"layer": self.layer, "count": self.count, "ops": [op.to_dict() for op in self.ops]}


CLI_PHASES = {
    "forward": ("forward",),
    "backward": ("backward_input", "backward_weight"),
    "prefill": ("prefill",),
    "decode": ("decode",),
}


def layer_counts(spec: ModelSpec, with_mtp: bool) -> dict[bool, int]:
    """Decoder layers by MoE flag, each MTP depth's block counted with the layers it is built like."""
    depths = spec.num_nextn_predict_layers if with_mtp else 0
    return {
        False: spec.num_dense_layers + (0 if spec.is_moe else depths),
        True: spec.num_moe_layers + (depths if spec.is_moe else 0),
    }


def training_model_ops(
    spec: ModelSpec, phase: str, tokens: float, seq_len: int, layout: ParallelLayout, precision: str = "bf16",
    node_limit: int | None = None, dispatcher: str = "deepep-fp8",
) -> list[OpGroup]:  # fmt: skip
    """The whole model's training ops for `phase` (forward or backward) of `tokens` tokens per GPU, sequences
    of `seq_len`: one group per layer kind (MTP blocks included) with its EP and TP traffic (the all-to-all as
    `dispatcher` runs it), and the head."""
    phases = CLI_PHASES[phase]
    ctx, window_ctx = mean_attended_keys(spec, seq_len), windowed_keys(spec, seq_len)
    groups = []
    for moe, count in layer_counts(spec, True).items():
        if not count:
            continue
        ops = layer_ops(spec, moe, tokens, ctx, phases, layout.ep, precision, window_ctx, layout.tp,
                        dispatcher=dispatcher)  # fmt: skip
        ops += [op for p in phases for op in tp_ops(spec, tokens * layout.tp, layout.tp, p)]
        ops += ep_ops(spec, layout, tokens, phases, node_limit, precision, dispatcher) if moe else []
        groups.append(OpGroup("moe" if moe else "dense", count, tuple(ops)))
    head = head_ops(spec, tokens, spec.num_nextn_predict_layers, phases, layout.tp)
    return [*groups, OpGroup("head", 1, tuple(head))]

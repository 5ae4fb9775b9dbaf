"""The GEMM shapes a layer runs: what the calibration benchmarks time and the simulator prices.

A GEMM multiplies an (m x k) activation by a (k x n) weight, `groups` times
for MoE grouped GEMMs (one group per local expert, m tokens each). Summed
over a layer, 2*m*n*k*groups per token equals the weight FLOPs of
`workloads.flops` (tested). Backward runs two GEMMs of the same FLOPs per
forward one: the input gradient (m x n) @ (n x k) and the weight gradient
(n x m) @ (m x k).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from workloads.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class Gemm:
    """(m x k) @ (k x n), `groups` times; `component` is the workloads.flops component it belongs to. `active`
    is the share of the groups that get tokens (a decode step's few tokens reach some of a GPU's experts; a
    grouped GEMM skips the empty ones and reads no weights for them): `m` stays the mean over every group."""

    name: str
    component: str
    m: float  # tokens: fractional when routed tokens spread over experts on average
    n: float
    k: float
    groups: int = 1
    active: float = 1.0

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.n * self.k * self.groups

    def bytes(self, in_bytes: float, out_bytes: float, weight_bytes: float | None = None) -> float:
        """Bytes read and written once: both operands in `in_bytes` (the weights in `weight_bytes` where they
        differ), the output in `out_bytes` per element; weights of the active groups only."""
        return gemm_bytes(self.m, self.n, self.k, self.groups, in_bytes, out_bytes, self.active, weight_bytes)

    def dgrad(self) -> Gemm:
        """The input-gradient GEMM of the backward pass."""
        return Gemm(f"{self.name}.dgrad", self.component, self.m, self.k, self.n, self.groups)

    def wgrad(self) -> Gemm:
        """The weight-gradient GEMM of the backward pass (its reduction runs over the tokens)."""
        return Gemm(f"{self.name}.wgrad", self.component, self.n, self.k, self.m, self.groups)


# a MoE block's GEMMs: behind the token dispatcher, their TP traffic is never overlapped by userbuffers
MOE_BLOCK = ("router", "routed_experts", "shared_experts")


def row_parallel(name: str) -> bool:
    """Whether a tensor-parallel GEMM (or its dgrad / wgrad) splits its reduction: the projections back to the
    hidden state (o_proj, an MLP's down); the others split their output (column-parallel)."""
    base = name.removesuffix(".dgrad").removesuffix(".wgrad")
    return base == "o_proj" or base.endswith(".down")


def tp_chunked(g: Gemm, tp: int) -> Gemm:
    """`g` run as Transformer Engine's ring-exchange overlap runs it: `tp` GEMMs, one per rank's chunk of the
    tokens, each as its piece of the collective arrives or leaves."""
    return Gemm(g.name, g.component, g.m / tp, g.n, g.k, g.groups * tp)


def tp_shard(g: Gemm, tp: int) -> Gemm:
    """The GEMM one of `tp` tensor-parallel ranks runs where v3sim counts its share as `g` (its tokens / tp at
    the full width): every token at 1/tp of the width, the output split (column-parallel) or, for the GEMMs back
    to the hidden state (o_proj, an MLP's down), the reduction (row-parallel). The same FLOPs; the router and the
    routed experts are not split."""
    if tp == 1 or g.component in ("router", "routed_experts"):
        return g
    if row_parallel(g.name):
        return Gemm(g.name, g.component, g.m * tp, g.n, g.k / tp, g.groups)
    return Gemm(g.name, g.component, g.m * tp, g.n / tp, g.k, g.groups)


def gemm_bytes(
    m: float, n: float, k: float, groups: int, in_bytes: float, out_bytes: float, active: float = 1.0,
    weight_bytes: float | None = None,
) -> float:  # fmt: skip
    """Bytes a GEMM must move at least: A and B read once (B, the weights, of the `active` share of the groups,
    in `weight_bytes` where they differ from A's `in_bytes`), C written once."""
    w = in_bytes if weight_bytes is None else weight_bytes
    return groups * (m * k * in_bytes + active * k * n * w + m * n * out_bytes)


def active_share(tokens: float, picks: int, slots: int) -> float:
    """Expected share of `slots` experts that get at least one of `tokens` tokens, each routed to `picks` distinct
    slots uniformly: 1 - (1 - picks / slots) ** tokens (a few decode tokens leave most experts idle; a
    training micro-batch reaches them all)."""
    return 1.0 - (1.0 - min(1.0, picks / slots)) ** tokens


def attention_gemms(spec: ModelSpec, tokens: float) -> list[Gemm]:
    """The attention projections of one layer for `tokens` tokens (biases left out, as in workloads.flops)."""
    h, heads = spec.hidden_size, spec.num_attention_heads
    if spec.attention == "mla":
        rope, rank = spec.qk_rope_head_dim, spec.kv_lora_rank
        out = []
        if spec.q_lora_rank:
            out += [
                Gemm("q_a_proj", "attn_proj", tokens, spec.q_lora_rank, h),
                Gemm("q_b_proj", "attn_proj", tokens, heads * spec.qk_head_dim, spec.q_lora_rank),
            ]
        else:
            out.append(Gemm("q_proj", "attn_proj", tokens, heads * spec.qk_head_dim, h))
        return [
            *out,
            Gemm("kv_a_proj_with_mqa", "attn_proj", tokens, rank + rope, h),
            Gemm("kv_b_proj", "attn_proj", tokens, heads * (spec.qk_nope_head_dim + spec.v_dim), rank),
            Gemm("o_proj", "attn_proj", tokens, h, heads * spec.v_dim),
        ]
    width = (heads + spec.kv_heads) * spec.qk_head_dim + spec.kv_heads * spec.v_dim
    return [
        Gemm("qkv_proj", "attn_proj", tokens, width, h),  # one GEMM, as Megatron's linear_qkv and the servers run it
        Gemm("o_proj", "attn_proj", tokens, h, heads * spec.v_dim),
    ]


def swiglu_gemms(name: str, component: str, tokens: float, hidden: int, inter: float, groups: int = 1) -> list[Gemm]:
    """A SwiGLU MLP: gate and up fused into one GEMM, then down."""
    return [
        Gemm(f"{name}.gate_up", component, tokens, 2 * inter, hidden, groups),
        Gemm(f"{name}.down", component, tokens, hidden, inter, groups),
    ]


def ffn_gemms(spec: ModelSpec, moe: bool, tokens: float, ep: int = 1) -> list[Gemm]:
    """The FFN GEMMs of one layer on one GPU holding 1/ep of the routed experts.

    With balanced routing each GPU computes as many token-expert pairs as it
    sends out (tokens x top-k), spread over its local experts.
    """
    h = spec.hidden_size
    if not moe:
        return swiglu_gemms("mlp", "dense_ffn", tokens, h, spec.intermediate_size)
    local = spec.n_routed_experts // ep
    per_expert = tokens * spec.num_experts_per_tok / local
    out = [Gemm("gate", "router", tokens, spec.n_routed_experts, h)]
    if spec.shared_intermediate_size:
        out += swiglu_gemms("shared_experts", "shared_experts", tokens, h, spec.shared_intermediate_size)
    return out + swiglu_gemms("experts", "routed_experts", per_expert, h, spec.moe_intermediate_size, local)


def layer_gemms(spec: ModelSpec, moe: bool, tokens: float, ep: int = 1) -> list[Gemm]:
    """All GEMMs of one decoder layer for `tokens` tokens on one GPU."""
    return attention_gemms(spec, tokens) + ffn_gemms(spec, moe, tokens, ep)


def head_gemms(spec: ModelSpec, tokens: float, mtp_depths: int = 0) -> list[Gemm]:
    """The output head (once per prediction depth) and each MTP depth's eh_proj (2h -> h)."""
    h = spec.hidden_size
    out = [Gemm("output_head", "output_head", tokens * (1 + mtp_depths), spec.vocab_size, h)]
    if mtp_depths:
        out.append(Gemm("mtp.eh_proj", "mtp", tokens, h, 2 * h, mtp_depths))
    return out


def serving_moe_gemms(
    spec: ModelSpec, tokens: float, ep: int, redundant: int, expert_tp: int = 1, tp: int = 1
) -> list[Gemm]:
    """One MoE layer's GEMMs on a GPU of an EP group with (experts + redundant) / ep expert slots, routing
    balanced over the slots: router and shared experts, then the local experts. With expert TP the experts are
    split over `expert_tp` GPUs (the intermediate dimension): each GPU runs expert_tp times the experts, each on
    1/expert_tp of its width, at the same tokens per expert.

    With the experts on an attention TP group of `tp` > 1 GPUs (each rank holds the group's `tokens` x tp
    tokens and the MoE's output is all-reduced over it: `workloads.servingops.moe_in_tp_group`), the router runs
    whole on every rank over all of them and the shared experts are split over the group like a dense MLP
    (TensorRT-LLM's `_compute_shared_expert_tp_size`: shared_tp_size = tp unless attention DP; SGLang's and
    vLLM's shared experts are tensor-parallel MLPs, their gate a replicated linear). With `tp` 1 (attention DP,
    an all-to-all, one GPU) both run on the GPU's own tokens."""
    slots = (spec.n_routed_experts + redundant) // ep
    routed = swiglu_gemms(
        "experts",
        "routed_experts",
        tokens * spec.num_experts_per_tok / slots,
        spec.hidden_size,
        spec.moe_intermediate_size / expert_tp,
        slots * expert_tp,
    )
    # the EP group's tokens over all its slots: the share of this GPU's experts that run
    active = active_share(tokens * ep, spec.num_experts_per_tok, spec.n_routed_experts + redundant)
    routed = [replace(g, active=active) for g in routed]
    dense = [g for g in ffn_gemms(spec, True, tokens, 1) if g.component != "routed_experts"]
    if tp > 1:
        dense = [replace(g, m=g.m * tp) if g.component == "router" else tp_shard(g, tp) for g in dense]
    return dense + routed

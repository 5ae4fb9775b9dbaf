"""A whole MoE operator timed as one op (AIConfigurator's TensorRT-LLM MoE tables) as the grouped-GEMM sample it
holds: the two grouped GEMMs v3sim's operation list gives the GPU, timed as the operator less the element-wise
kernels v3sim prices beside them. calibration/fit.py reads published series of such rows through `moe_sample`;
calibration/aicmoe.py filters AIConfigurator's rows by `moe_elementwise_s`.
"""

from __future__ import annotations

from dataclasses import replace

from hwmodels.kernels import elementwise_rates
from hwmodels.profile import Sample
from hwmodels.specs import GPUSpec
from workloads.dtypes import QUANTIZED_WEIGHTS
from workloads.elementwise import layer_elementwise_kernels
from workloads.gemms import ffn_gemms
from workloads.ops import gemm_op
from workloads.spec import ModelSpec

# The element-wise kernels of an MoE layer's expert part (`workloads.elementwise`): what a measured MoE op runs
# beside its two grouped GEMMs (the input's cast, the permute into expert order, SwiGLU and its cast, the weighted
# combine, the top-k) and v3sim prices as element-wise ops of their own.
MOE_ELEMENTWISE = ("permute", "swiglu", "combine_reduce", "router_topk", "cast.expert_input", "cast.down_input")
# The weight and activation dtypes of a grouped-GEMM class's MoE op (`workloads.ops.gemm_op`'s arguments).
MOE_OPERANDS = {
    "fp8": ("fp8", None), "bf16": ("bf16", None), "fp4": ("fp4", None),
    "w4a16": ("fp4", "bf16"), "w4a8": ("fp4", "fp8"),
}  # fmt: skip


def moe_elementwise_s(r: dict, dtype: str, gpu: GPUSpec) -> float:
    """Seconds of the element-wise kernels v3sim prices beside an MoE op's two grouped GEMMs (`MOE_ELEMENTWISE`,
    at hwmodels/data/kernels' rates on `gpu`) for one row of `moe_sample`."""
    weights, act = MOE_OPERANDS[dtype]
    spec = moe_spec(r)
    tokens = r["tokens"] / r["ep"]
    casts = (act or weights) in QUANTIZED_WEIGHTS  # activations quantized for the GEMMs (not weight-only)
    table = elementwise_rates()
    return sum(
        table.time_s(cls, tokens * per_token, gpu.hbm_bw_bytes_per_s, gpu.die)
        for name, _, per_token, cls in layer_elementwise_kernels(spec, True, casts)
        if name in MOE_ELEMENTWISE
    )


def moe_spec(r: dict) -> ModelSpec:
    """A one-layer model of an MoE op row's shape."""
    return ModelSpec(name="moe op", num_hidden_layers=1, hidden_size=r["hidden"], num_attention_heads=1,
                     vocab_size=1, intermediate_size=r["inter"], n_routed_experts=r["experts"],
                     num_experts_per_tok=r["topk"], moe_intermediate_size=r["inter"])  # fmt: skip


def moe_sample(r: dict, dtype: str, source: str, gpu: GPUSpec) -> Sample:
    """A grouped-GEMM sample from one MoE layer's experts timed as one op (AIConfigurator's TensorRT-LLM MoE
    tables): `tokens` on a GPU holding 1/`ep` of the experts, routed evenly. Its work is the two grouped GEMMs
    v3sim's operation list gives that GPU (`workloads.gemms.ffn_gemms` at tokens / ep per GPU, each GPU
    receiving as many token-expert pairs as it sends; with fewer pairs than experts, the weights of those that
    get one), its time the op's less the element-wise kernels v3sim prices apart (`moe_elementwise_s`): the
    GEMMs' share of what ran."""
    if dtype not in MOE_OPERANDS:
        raise ValueError(f"{source}: MoE op timings in {dtype}: use one of {', '.join(MOE_OPERANDS)}")
    weights, act = MOE_OPERANDS[dtype]
    if r["experts"] % r["ep"]:
        raise ValueError(f"{source}: {r['experts']} experts do not split over ep {r['ep']}")
    pairs = r["tokens"] * r["topk"] / r["experts"]  # token-expert pairs per expert, on average
    # balanced routing: below one pair per expert that share of the experts gets one each, the rest none
    gemms = ffn_gemms(moe_spec(r), True, r["tokens"] / r["ep"], r["ep"])
    routed = [g for g in gemms if g.component == "routed_experts"]
    ops = [gemm_op(replace(g, active=min(1.0, pairs)), "forward", "mlp", weights, act) for g in routed]
    time_s = r["ms"] * 1e-3 - moe_elementwise_s(r, dtype, gpu)
    if time_s <= 0:
        raise ValueError(f"{source}: row {r}: the element-wise kernels alone outlast the op's {r['ms']} ms")
    return Sample("grouped_gemm", dtype, sum(o.flops for o in ops), sum(o.hbm_bytes for o in ops), time_s,
                  m=int(pairs) if pairs.is_integer() else pairs, n=r["inter"], k=r["hidden"],
                  groups=r["experts"] // r["ep"], source=source, op="moe")  # fmt: skip

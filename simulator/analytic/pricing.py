"""Pricing the operation list (`workloads.ops`): seconds of each compute op from a kernel profile.

The one place an op becomes a time on the SMs (GEMMs and attention from the fitted profile, element-wise
kernels from their class's measured share of the HBM datasheet, FP8 weight-gradient GEMMs at the rate DeepSeek's
training trace shows); link ops (dispatch, combine, collectives,
send/recv) are priced by the models that know the network (`simulator.analytic.training`, `simulator.analytic.serving`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache

from hwmodels.kernels import elementwise_rates, trace_classes
from hwmodels.registry import load_gpu
from simulator.analytic.profile import KernelRates
from workloads.ops import Op


def op_s(
    op: Op, rates: KernelRates, sm_share: float = 1.0, expert_imbalance: float = 1.0, hbm_bytes_per_s: float = 0.0
) -> float:
    """Seconds of one compute op at its profile class's rates on `sm_share` of the SMs; routed-expert GEMMs
    wait for the busiest GPU (`expert_imbalance` x the mean load). An element-wise kernel runs at its class's
    share of the GPU's HBM datasheet `hbm_bytes_per_s` plus a fixed cost (hwmodels/data/kernels), never faster
    than the profile's memory class; the speed-of-light profile takes the datasheet alone."""
    if op.kind == "elementwise" and hbm_bytes_per_s > 0:
        if rates.kind == "sol":
            return op.hbm_bytes / hbm_bytes_per_s
        table = elementwise_rates().time_s(op.component, op.hbm_bytes, hbm_bytes_per_s)
        return max(table, rates.time_s("memory", 0.0, op.hbm_bytes))
    scale = expert_imbalance if op.component == "routed_experts" else 1.0
    if op.phase == "backward_weight" and op.precision == "fp8" and rates.kind != "sol":
        return scale * op.flops / (wgrad_fp8_flop_per_s(rates.gpu) * sm_share)
    return scale * rates.time_s(op.profile_class, op.flops, op.hbm_bytes, sm_share)


@cache
def wgrad_fp8_flop_per_s(gpu: str) -> float:
    """FP8 weight-gradient GEMMs' rate on `gpu`: no benchmark publishes the class, so it is read off DeepSeek's
    training trace on the H800 (hwmodels/data/kernels/traces.toml) and carried to another GPU as the same
    fraction of its fp8 peak. It runs 1.8x slower than the forward GEMMs of the same trace."""
    row = trace_classes()["gemm_wgrad_fp8"]
    return row.flop_per_s * load_gpu(gpu).peak_flop_per_s("fp8") / load_gpu(row.catalog_gpu).peak_flop_per_s("fp8")


def priced_by_part(
    ops: Iterable[Op],
    rates: KernelRates,
    sm_share: float = 1.0,
    expert_imbalance: float = 1.0,
    hbm_bytes_per_s: float = 0.0,
) -> dict[tuple[str, str], float]:
    """Seconds of compute ops summed by (part, phase), in list order."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    for op in ops:
        out[(op.part, op.phase)] += op_s(op, rates, sm_share, expert_imbalance, hbm_bytes_per_s)
    return out


def compute_s(ops: list[Op], rates: KernelRates, sm_share: float = 1.0) -> float:
    """Seconds of a list of compute ops run one after another."""
    return sum(op_s(op, rates, sm_share) for op in ops)

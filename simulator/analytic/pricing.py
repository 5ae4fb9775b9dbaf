"""Pricing the operation list (`workloads.ops`): seconds of each compute op from a kernel profile.

The one place an op becomes a time on the SMs: GEMMs and attention from the fitted profile (FP8
weight-gradient GEMMs as their own class where the profile has one), element-wise kernels from their
class's measured share of the HBM datasheet. Link ops (dispatch, combine, collectives, send/recv) are
priced by the models that know the network (`simulator.analytic.training`, `simulator.analytic.serving`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from hwmodels.kernels import elementwise_rates
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
    cls = op.profile_class
    if cls not in rates.fits and cls == "gemm_wgrad_fp8":
        cls = f"{op.kind}_fp8"  # a profile with no weight-gradient class (speed of light, older files)
    if cls not in rates.fits and cls == "attention_decode_bf16":
        cls = "attention_fwd_bf16"  # a profile with no decode-attention class (older files)
    return scale * rates.time_s(cls, op.flops, op.hbm_bytes, sm_share)


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

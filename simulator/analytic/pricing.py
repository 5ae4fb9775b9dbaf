"""Pricing the operation list (`workloads.ops`): seconds of each compute op from a kernel profile.

The one place an op becomes a time on the SMs; link ops (dispatch, combine, collectives, send/recv) are
priced by the models that know the network (`simulator.analytic.training`, `simulator.analytic.serving`).
"""

from __future__ import annotations

from collections import defaultdict

from simulator.analytic.profile import KernelRates
from workloads.ops import Op


def op_s(op: Op, rates: KernelRates, sm_share: float = 1.0, expert_imbalance: float = 1.0) -> float:
    """Seconds of one compute op at its profile class's rates on `sm_share` of the SMs; routed-expert GEMMs
    wait for the busiest GPU (`expert_imbalance` x the mean load)."""
    scale = expert_imbalance if op.component == "routed_experts" else 1.0
    return scale * rates.time_s(op.profile_class, op.flops, op.hbm_bytes, sm_share)


def priced_by_part(
    ops: list[Op], rates: KernelRates, sm_share: float = 1.0, expert_imbalance: float = 1.0
) -> dict[tuple[str, str], float]:
    """Seconds of compute ops summed by (part, phase), in list order."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    for op in ops:
        out[(op.part, op.phase)] += op_s(op, rates, sm_share, expert_imbalance)
    return out


def compute_s(ops: list[Op], rates: KernelRates, sm_share: float = 1.0) -> float:
    """Seconds of a list of compute ops run one after another."""
    return sum(op_s(op, rates, sm_share) for op in ops)

"""Tensor parallelism's collectives overlapped as Transformer Engine's userbuffers run them (`tp_comm="overlapped"`).

Each all-gather runs under the GEMM that reads what it gathers and each reduce-scatter under the GEMM whose output
it scatters (Megatron-Bridge's userbuffers configurations, src/megatron/bridge/training/comm_overlap.py: ring
exchange for qkv_fprop, fc1_fprop, proj_dgrad and fc2_dgrad, ring exchange or a pipeline for proj_fprop and
fc2_fprop, bulk for the dgrads' scatters): forward, the column-parallel GEMMs (QKV, gate/up) hide the gathers and
the row-parallel ones (o_proj, down) the scatters; backward, the row-parallel input-gradient GEMMs hide the gathers
of the output gradients and the column-parallel ones the scatters. What outlasts its GEMM shows, layer by layer.
The GEMMs themselves run in chunks (`workloads.gemms.tp_chunked`). MoE blocks' collectives are the token
dispatcher's, which userbuffers does not overlap: there is no GEMM to hide them.
"""

from __future__ import annotations

from collections import defaultdict

from simulator.analytic.pricing import op_s
from simulator.analytic.profile import KernelRates
from workloads.gemms import MOE_BLOCK, row_parallel
from workloads.ops import Op

PHASE_HALF = {"forward": "F", "backward_input": "B"}


def paired_gemm_s(
    ops: tuple[Op, ...], rates: KernelRates, sm_share: float, hbm_bytes_per_s: float
) -> dict[tuple[str, str, str], float]:
    """Seconds of the GEMMs each TP collective of one layer runs under, by (part, half F or B, collective)."""
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for op in ops:
        half = PHASE_HALF.get(op.phase)
        if op.kind != "gemm" or half is None or op.component in MOE_BLOCK:
            continue
        gathers = row_parallel(op.name) == (half == "B")  # forward: column-parallel; backward: row-parallel
        kind = "all_gather" if gathers else "reduce_scatter"
        out[(op.part, half, kind)] += op_s(op, rates, sm_share, hbm_bytes_per_s=hbm_bytes_per_s)
    return dict(out)


def exposed_s(
    gather_s: float, scatter_s: float, paired: dict[tuple[str, str, str], float], part: str, half: str
) -> float:
    """One layer's TP seconds that outlast their GEMMs in `part`'s `half`."""
    hidden_gather = paired.get((part, half, "all_gather"), 0.0)
    hidden_scatter = paired.get((part, half, "reduce_scatter"), 0.0)
    return max(0.0, gather_s - hidden_gather) + max(0.0, scatter_s - hidden_scatter)

"""Pricing the operation list (`workloads.ops`): seconds of each compute op from a kernel profile.

The one place an op becomes a time on the SMs: GEMMs and attention from the fitted profile (FP8
weight-gradient GEMMs as their own class where the profile has one; training's dense GEMMs as timed by shape on
the GPU where a published profile prices them and the GPU has the table: `gemm_op_s`), element-wise kernels from their
class's measured share of the HBM datasheet (the profile's own share where it has one). Link ops (dispatch,
combine, collectives, send/recv) are priced by the models that know the network (`simulator.analytic.training`,
`simulator.analytic.serving`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from hwmodels.kernels import elementwise_rates
from hwmodels.profile import FALLBACKS, STAND_INS
from simulator.analytic.decodetables import decode_op_s
from simulator.analytic.moetables import moe_op_s
from simulator.analytic.profile import KernelRates
from workloads.dtypes import dtype_bytes
from workloads.flops import window_tile_factor
from workloads.gemms import gemm_bytes
from workloads.ops import TRAINING_PHASES, Op
from workloads.servingops import ABSORBED_BMMS

FALLS_BACK = STAND_INS | FALLBACKS  # a class a profile lacks -> the class that prices it instead
# a training GEMM's dtype, or an FP8 one's recipe -> the timed column (hwmodels.gemmtables) that prices it; MXFP8
# as DeepGEMM's 1x128 kernel on Blackwell (power-of-two scales on the block-scaled tensor cores: ASSUMED alike)
GEMM_COLUMNS = {"bf16": "bf16_us", "tensor": "fp8_tensor_us", "block": "fp8_block_us", "mx": "fp8_block_us"}
# TensorRT-LLM's block-FP8 Linear on Hopper is its own kernel (a column of its own); on Blackwell DeepGEMM's
LIBRARY_COLUMNS = {"trtllm": {"block": ("fp8_block_trtllm_us", "fp8_block_us")}}


def op_s(
    op: Op, rates: KernelRates, sm_share: float = 1.0, expert_imbalance: float = 1.0, hbm_bytes_per_s: float = 0.0
) -> float:
    """Seconds of one compute op at its profile class's rates on `sm_share` of the SMs; routed-expert GEMMs
    wait for the busiest GPU, which runs `expert_imbalance` x the mean tokens through the same weights (more
    FLOPs and activations, not more weight reads: `loaded`). An element-wise kernel runs at its class's
    share of the GPU's HBM datasheet `hbm_bytes_per_s` (times its die's factor) plus a fixed cost
    (hwmodels/data/kernels), never faster than the profile's memory class; the speed-of-light profile takes the
    datasheet alone. The GEMMs of an expert shape the profile timed as whole MoE operators are priced as timed
    (`simulator.analytic.moetables`), and so is decode attention of a head shape it timed
    (`simulator.analytic.decodetables`), and dense GEMMs where the GPU's table times them (`gemm_op_s`). How a
    serving engine launches it (`Op.launch`): an element-wise kernel
    fused into its neighbour moves its bytes at its class's rate with no fixed cost of its own; an op on a second
    stream (`aside`) costs its work at its class's rates, its fixed and per-item latency hidden under the main
    stream's."""
    if op.launch == "aside":
        return aside_s(op, rates, sm_share)
    if op.kind == "elementwise" and hbm_bytes_per_s > 0:
        if rates.kind == "sol":
            return op.hbm_bytes / hbm_bytes_per_s
        table = elementwise_rates()
        share = rates.elementwise_share.get(op.component)
        if share is not None:  # the profile measured this class itself (a trace-derived profile does)
            t = op.hbm_bytes / (share * hbm_bytes_per_s) + table.fixed_s(rates.die)
        else:
            t = table.time_s(op.component, op.hbm_bytes, hbm_bytes_per_s, rates.die)
        if op.launch == "fused":  # inside its neighbour: the bytes, not a kernel's fixed cost
            return max(t - table.fixed_s(rates.die), op.hbm_bytes / rates.fit("memory").bytes_per_s)
        return max(t, rates.time_s("memory", 0.0, op.hbm_bytes))
    if op.layers < 1:  # one kernel of 1 / layers the counts, in that share of the layers
        whole = replace(op, flops=op.flops / op.layers, hbm_bytes=op.hbm_bytes / op.layers,
                        items=op.items / op.layers, layers=1.0)  # fmt: skip
        return op.layers * op_s(whole, rates, sm_share, expert_imbalance, hbm_bytes_per_s)
    if expert_imbalance != 1 and op.component == "routed_experts":
        op = loaded(op, expert_imbalance)
    if op.window and rates.kind != "sol":  # a windowed kernel runs every key tile its window touches
        tiles = window_tile_factor(op.window)
        op = replace(op, flops=op.flops * tiles, items=op.items * tiles)
    timed = moe_op_s(op, op.profile_class, rates.moe_tables, sm_share)  # an expert shape timed whole
    if timed is None:
        timed = decode_op_s(op, rates.decode_tables)  # a decode-attention head shape timed
    if timed is None:
        timed = gemm_op_s(op, rates, sm_share)  # a training GEMM's shape timed on the GPU
    if timed is not None:
        return timed
    return rates.time_s(priced_class(op, rates), op.flops, op.hbm_bytes, sm_share, op.items)


def aside_s(op: Op, rates: KernelRates, sm_share: float = 1.0) -> float:
    """Seconds an op on a second stream adds to the main one's (`Op.launch` aside: an engine's auxiliary CUDA
    stream): its FLOPs and bytes at its class's rates, the fixed and per-item latency of its kernels hidden under
    the main stream's work."""
    f = rates.fit(priced_class(op, rates))
    return max(op.flops / (f.flop_per_s * sm_share), op.hbm_bytes / f.bytes_per_s)


def gemm_op_s(op: Op, rates: KernelRates, sm_share: float = 1.0) -> float | None:
    """Seconds of a dense GEMM (bf16, or FP8 by its recipe) as the GPU's table times its shape
    (`hwmodels.gemmtables`), on `sm_share` of the SMs: a training phase's, or a serving one's that its engine runs
    in the library timed (`Op.library`), MLA decode's absorbed BMMs by their tokens and local heads
    (`hwmodels.bmmtables`); None where the rates carry no table for it (another serving GEMM, a measured profile,
    block FP8 on Hopper outside TensorRT-LLM: DeepGEMM's published rates are the profile's own; a head count not
    timed)."""
    served = op.phase not in TRAINING_PHASES
    if op.name in ABSORBED_BMMS and op.library:  # MLA decode's BMMs: their own table, by local heads
        bmm = rates.bmm_tables.get(f"{op.name.rsplit('.', 1)[1]}_{op.precision}_us")
        timed = bmm.time_s(op.m, op.groups) if bmm is not None else None
        return timed / sm_share if timed is not None else None
    if not rates.gemm_tables or op.kind != "gemm" or (served and not op.library) or op.weights or op.m <= 0:
        return None
    key = "bf16" if op.precision == "bf16" else op.scaling if op.precision == "fp8" else ""
    columns = LIBRARY_COLUMNS.get(op.library, {}).get(key, (GEMM_COLUMNS.get(key, ""),))
    table = next((t for c in columns if (t := rates.gemm_tables.get(c)) is not None), None)
    if table is None:
        return None
    return op.groups * table.time_s(op.m, op.n, op.k) / sm_share


def priced_class(op: Op, rates: KernelRates) -> str:
    """The profile class that prices compute op `op` under `rates`: its own, or where the profile has no fit of
    it (speed of light, older files, a profile that did not measure it) the class it falls back on
    (`hwmodels.profile.STAND_INS` and `FALLBACKS`: FP8 weight gradients the forward GEMMs', 4-bit-weight GEMMs
    those of the dtype they compute in, MLA's or FP8 decode attention bf16 GQA decode's)."""
    cls = op.profile_class
    if cls == "gemm_wgrad_fp8" and cls not in rates.fits:
        return f"{op.kind}_fp8"  # no weight-gradient class: the forward GEMMs'
    while cls not in rates.fits and cls in FALLS_BACK:  # a chain: fp8 window -> bf16 window -> bf16
        cls = FALLS_BACK[cls]
    return cls


def loaded(op: Op, k: float) -> Op:
    """A GEMM op run on `k` times its tokens (the token dimension: m, or k for a weight gradient), its weights
    unchanged: FLOPs times k, bytes as the new shape moves them (`workloads.gemms.gemm_bytes`)."""
    m, inner = (op.m, op.k * k) if op.phase == "backward_weight" else (op.m * k, op.k)
    active = 1 - (1 - op.active) ** k  # k x the tokens reach more of the experts
    nbytes = gemm_bytes(m, op.n, inner, op.groups, dtype_bytes(op.precision), dtype_bytes("bf16"), active,
                        op.weight_bytes)  # fmt: skip
    return replace(op, flops=op.flops * k, hbm_bytes=nbytes, m=m, k=inner, active=active)


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

"""Whole MoE operators timed shape by shape, looked up rather than fitted.

A profile's MoE-operator samples (`hwmodels.profile.Sample` with op "moe": TensorRT-LLM's fused MoE timed by
AIConfigurator, less the element-wise kernels v3sim prices apart) time the two grouped GEMMs of one expert
shape (hidden size, expert width, the GPU's experts) at many counts of token-expert pairs per expert. How fast
those kernels run moves with the shape in ways one roofline cannot follow (on a B200 TensorRT-LLM's NVFP4
MoE reads Qwen3-30B-A3B's experts at 2.6 TB/s and DeepSeek-R1's at 6.2), so where a run's experts have a
timed shape, their GEMMs are priced as timed: linear between the measured pair counts (through the nearest
timings that never fall with more pairs, where a tactic's switch made a few pairs slower than more), held below
the fewest (the weights are read all the same), in proportion to the work beyond the most. Where a step's tokens
reach only a share of the experts (`Op.active`), that share of the timing at the pairs each active expert runs
(a grouped GEMM issues no tiles for an empty expert), but never less than the operator was timed at with as
many experts getting a token (the table's rows below one pair per expert: a decode step's few tokens, where
its fixed costs, not its experts' weights, set the time). Serving phases only: the operators were timed as
inference runs them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from hwmodels.kernels import interpolated, non_decreasing
from hwmodels.profile import Sample, class_dtype
from hwmodels.specs import GPUSpec
from workloads.ops import SERVING_PHASES, Op

GATED_GEMMS = 3  # a SwiGLU expert's GEMMs: gate and up (fused, 2 x the width) and down, each 2 x m x h x i FLOPs


@dataclass(frozen=True, slots=True)
class MoETable:
    """One expert shape's gate-up and down GEMMs on one GPU: seconds at each measured count of token-expert
    pairs per expert (never fewer for more pairs), and the part of each that is its FLOPs at the dense peak
    (what running on a share of the SMs stretches)."""

    pairs: tuple[float, ...]
    seconds: tuple[float, ...]
    peak_s: tuple[float, ...]

    def time_s(self, pairs: float, sm_share: float = 1.0) -> float:
        """Seconds of both GEMMs at `pairs` per expert on `sm_share` of the SMs."""
        k = max(1.0, pairs / self.pairs[-1])  # beyond the most measured: in proportion to the work
        at = min(pairs, self.pairs[-1])
        t, peak = interpolated(at, self.pairs, self.seconds), interpolated(at, self.pairs, self.peak_s)
        return k * (t + peak * (1 / sm_share - 1))

    def sparse_s(self, active: float, sm_share: float = 1.0) -> float:
        """Seconds of both GEMMs where an `active` share of the experts gets one pair each: as timed where the
        table reaches that few pairs, else the fewest's timing in proportion (a table without such rows)."""
        if active >= self.pairs[0]:
            return self.time_s(active, sm_share)
        return active / self.pairs[0] * self.time_s(self.pairs[0], sm_share)

    def scaled(self, k: float) -> MoETable:
        """This table with every kernel `k` times as fast (a sensitivity probe, as `KernelFit.scaled`)."""
        return MoETable(self.pairs, tuple(s / k for s in self.seconds), tuple(s / k for s in self.peak_s))


MoEKey = tuple[str, int, int, int]  # (kernel class, hidden size, expert intermediate size, experts on the GPU)


def moe_tables(samples: tuple[Sample, ...], src: GPUSpec, gpu: GPUSpec) -> dict[MoEKey, MoETable]:
    """The MoE-operator samples as tables for `gpu`: a shape timed on `gpu` itself (`Sample.timed_on`) as timed;
    the others timed on `src` (the profile's GPU), on another GPU (of the same die) each timing scaled by the
    datasheet term that binds it at `src`'s peaks (its FLOPs at the dense peak or its bytes at the HBM
    bandwidth), as `apply_profile` carries fits over as the same fractions of the peaks."""
    moe = [s for s in samples if s.op == "moe"]
    own = {_key(s) for s in moe if s.timed_on == gpu.name}
    points: dict[MoEKey, dict[float, tuple[float, float]]] = defaultdict(dict)
    for s in moe:
        if (s.timed_on and s.timed_on != gpu.name) or (not s.timed_on and _key(s) in own):
            continue  # another GPU's timings, or a shape this GPU timed itself
        timed = gpu if s.timed_on else src
        dtype = class_dtype(s.kernel_class)
        peak_src, peak_dst = (getattr(g, f"peak_{dtype}_flop_per_s") for g in (timed, gpu))
        if not (peak_src and peak_dst):
            continue  # no tensor cores for it on this GPU
        compute, memory = s.flops / peak_src, s.bytes / timed.hbm_bw_bytes_per_s
        ratio = peak_src / peak_dst if compute >= memory else timed.hbm_bw_bytes_per_s / gpu.hbm_bw_bytes_per_s
        points[_key(s)].setdefault(s.m, (s.time_s * ratio, s.flops / peak_dst))
    out = {}
    for key, by_pairs in points.items():
        pairs = tuple(sorted(by_pairs))
        # more pairs never faster: the least-squares non-decreasing fit through the timings (in logs, each
        # relative), where a tactic's switch makes a few pairs slower than more
        seconds = tuple(math.exp(v) for v in non_decreasing([math.log(by_pairs[p][0]) for p in pairs]))
        out[key] = MoETable(pairs, seconds, tuple(by_pairs[p][1] for p in pairs))
    return out


def _key(s: Sample) -> MoEKey:
    return (s.kernel_class, s.k, s.n, s.groups)


def moe_op_s(op: Op, cls: str, tables: dict[MoEKey, MoETable], sm_share: float = 1.0) -> float | None:
    """Seconds of a serving op that is one of a timed expert shape's two grouped GEMMs (`cls` its kernel
    class): its FLOPs' share of the pair's time; None where no table has its shape."""
    if not tables or op.kind != "grouped_gemm" or op.component != "routed_experts" or op.phase not in SERVING_PHASES:
        return None
    if op.name.endswith("gate_up"):
        hidden, inter = op.k, op.n / 2
    elif op.name.endswith("down"):
        hidden, inter = op.n, op.k
    else:
        return None
    table = tables.get((cls, int(hidden), int(inter), op.groups))
    if table is None or op.m <= 0:
        return None
    pair_flops = GATED_GEMMS * 2 * op.m * op.groups * hidden * inter
    # only the active share of the experts runs, each on its share of the pairs (the table timed them all), no
    # faster than the op timed with as many experts active, one pair each
    seconds = op.active * table.time_s(op.m / op.active, sm_share)
    if op.active < 1:
        seconds = max(seconds, table.sparse_s(op.active, sm_share))
    return seconds * op.flops / pair_flops

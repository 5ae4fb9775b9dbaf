"""Pipeline schedules: bubble time, memory multipliers and whether EP traffic hides under compute.

Bubbles follow the DualPipe README / V3 report table (F: forward chunk, B: full
backward chunk, W: its weight-gradient part, F&B: a forward and a backward
chunk run overlapped):

    1F1B         (PP-1)(F+B)            params 1x   activations PP
    ZB1P         (PP-1)(F+B-2W)         params 1x   activations PP
    DualPipe     (PP/2-1)(F&B+B-3W)     params 2x   activations PP+1

Interleaved 1F1B with v virtual stages per rank divides the 1F1B bubble by v
(Narayanan et al. 2021). DualPipeV ("cut-in-half") runs DualPipe over 2*PP
half-size stages, two per rank: the DualPipe formula with PP -> 2*PP and chunk
times halved, parameters 1x, activations (PP+1)/2 full-stage micro-batches
(our derivation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChunkTimes:
    """Seconds of one micro-batch on one pipeline rank."""

    f: float  # forward
    b: float  # full backward (input and weight gradients)
    w: float  # the weight-gradient part of b
    fb: float  # a forward and a backward of two micro-batches, overlapped (F&B)


@dataclass(frozen=True, slots=True)
class Schedule:
    """One pipeline schedule: its bubble, the parameter copies and activations a rank holds, and whether a
    rank runs two stages whose forward and backward chunks overlap (DualPipe's F&B)."""

    name: str
    bubble: Callable[[int, ChunkTimes, int], float]  # (pp, chunk times, virtual stages) -> idle seconds per step
    inflight: Callable[[int, int], float]  # (pp, stage) -> micro-batches in flight, full-stage units
    param_copies: int = 1  # stage parameter sets one rank holds, relative to plain PP
    bidirectional: bool = False  # rank r also runs stage PP-1-r; F and B of two chunks overlap
    virtual_stages: bool = False  # takes --virtual-stages
    source: str = ""


TABLE = {
    s.name: s
    for s in (
        Schedule("1f1b", lambda pp, t, v: (pp - 1) * (t.f + t.b), lambda pp, stage: pp - stage,
                 source="Narayanan et al. 2021; stage s keeps PP - s micro-batches"),
        Schedule("interleaved", lambda pp, t, v: (pp - 1) * (t.f + t.b) / v, lambda pp, stage: pp,
                 virtual_stages=True,
                 source="Narayanan et al. 2021; Megatron holds PP (1 + (PP-1)/(PP v)) on rank 0: PP is close"),
        Schedule("zb1p", lambda pp, t, v: (pp - 1) * (t.f + t.b - 2 * t.w), lambda pp, stage: pp - stage,
                 source="Qi et al. 2023 (zero bubble), via the DualPipe README table"),
        Schedule("dualpipe", lambda pp, t, v: (pp / 2 - 1) * (t.fb + t.b - 3 * t.w), lambda pp, stage: pp + 1,
                 param_copies=2, bidirectional=True, source="V3 report table 2; DualPipe README"),
        Schedule("dualpipev", lambda pp, t, v: (pp - 1) * (t.fb + t.b - 3 * t.w) / 2,
                 lambda pp, stage: (pp + 1) / 2, bidirectional=True,
                 source="DualPipe README (cut-in-half): DualPipe over 2PP half-size stages; our derivation"),
    )
}  # fmt: skip
SCHEDULES = tuple(TABLE)
BIDIRECTIONAL = tuple(name for name, s in TABLE.items() if s.bidirectional)


def warmup_forwards(name: str, pp: int, rank: int, virtual_stages: int = 1) -> int:
    """Forwards (chunks, interleaved) rank `rank` runs before its first backward in Megatron's 1F1B: pp - 1 - r;
    interleaved 2(pp - 1 - r) + (v - 1) pp (before the step's own cap at its chunk count)."""
    if name == "interleaved":
        return 2 * (pp - 1 - rank) + (virtual_stages - 1) * pp
    return pp - 1 - rank


def schedule(name: str) -> Schedule:
    """The schedule called `name`; an unknown name is a ValueError listing the known ones."""
    if name not in TABLE:
        raise ValueError(f"unknown schedule {name!r}; use one of {', '.join(SCHEDULES)}")
    return TABLE[name]


def bubble_s(name: str, pp: int, t: ChunkTimes, virtual_stages: int = 1) -> float:
    """Idle time per step of the busiest rank, by the schedule's bubble formula."""
    check_schedule(name, pp, virtual_stages)
    return schedule(name).bubble(pp, t, virtual_stages)


def param_copies(name: str) -> int:
    """Stage parameter sets one rank holds, relative to plain PP (DualPipe: stage r and PP-1-r)."""
    return schedule(name).param_copies


def inflight_microbatches(name: str, pp: int, stage: int) -> float:
    """Micro-batches whose activations a rank holds at its peak, in full-stage units."""
    return schedule(name).inflight(pp, stage)


def check_schedule(name: str, pp: int, virtual_stages: int = 1) -> None:
    """Raise ValueError, naming the fix, if the schedule cannot run this pipeline."""
    s = schedule(name)
    if s.bidirectional and pp % 2:
        raise ValueError(f"{name} needs an even pp (it pairs stage r with PP-1-r); got pp={pp}")
    if virtual_stages < 1 or (not s.virtual_stages and virtual_stages != 1):
        raise ValueError(f"virtual_stages={virtual_stages} applies to the interleaved schedule only (and is >= 1)")

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

from dataclasses import dataclass

SCHEDULES = ("1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev")
BIDIRECTIONAL = ("dualpipe", "dualpipev")  # rank r also runs stage PP-1-r; F and B of two chunks overlap


@dataclass(frozen=True, slots=True)
class ChunkTimes:
    """Seconds of one micro-batch on one pipeline rank."""

    f: float  # forward
    b: float  # full backward (input and weight gradients)
    w: float  # the weight-gradient part of b
    fb: float  # a forward and a backward of two micro-batches, overlapped (F&B)


def bubble_s(schedule: str, pp: int, t: ChunkTimes, virtual_stages: int = 1) -> float:
    """Idle time per step of the busiest rank, by the schedule's bubble formula."""
    check_schedule(schedule, pp, virtual_stages)
    if schedule == "1f1b":
        return (pp - 1) * (t.f + t.b)
    if schedule == "interleaved":
        return (pp - 1) * (t.f + t.b) / virtual_stages
    if schedule == "zb1p":
        return (pp - 1) * (t.f + t.b - 2 * t.w)
    if schedule == "dualpipe":
        return (pp / 2 - 1) * (t.fb + t.b - 3 * t.w)
    return (pp - 1) * (t.fb + t.b - 3 * t.w) / 2  # dualpipev: (2PP/2 - 1) x half-size chunks


def param_copies(schedule: str) -> int:
    """Stage parameter sets one rank holds, relative to plain PP (DualPipe: stage r and PP-1-r)."""
    return 2 if schedule == "dualpipe" else 1


def inflight_microbatches(schedule: str, pp: int, stage: int) -> float:
    """Micro-batches whose activations a rank holds at its peak, in full-stage units."""
    if schedule == "dualpipe":
        return pp + 1
    if schedule == "dualpipev":
        return (pp + 1) / 2
    if schedule == "interleaved":
        return pp  # Megatron's interleaved schedule: PP (1 + (PP-1)/(PP v)) on rank 0; PP is close
    return pp - stage  # 1F1B, ZB1P: stage s keeps PP - s micro-batches in flight


def check_schedule(schedule: str, pp: int, virtual_stages: int = 1) -> None:
    """Raise ValueError, naming the fix, if the schedule cannot run this pipeline."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")
    if schedule in BIDIRECTIONAL and pp % 2:
        raise ValueError(f"{schedule} needs an even pp (it pairs stage r with PP-1-r); got pp={pp}")
    if virtual_stages < 1 or (schedule != "interleaved" and virtual_stages != 1):
        raise ValueError(f"virtual_stages={virtual_stages} applies to the interleaved schedule only (and is >= 1)")

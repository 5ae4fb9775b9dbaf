"""The run a caller gets when the memory-setting inputs it left to their defaults do not fit the GPU.

V3's published set-up (TP1, ZeRO-1, selective recomputation) is every run's default; a 70B or 405B dense model
on 80 GB GPUs does not fit it, and answering "raise pp/ep/zero" to a user who only named a model is a trap.
So where the caller left TP, ZeRO and recomputation to their defaults and the run does not fit, the fastest
fitting combination of them (fewest GPU-hours, priced by `estimate`) is taken, and a note says which and why.
What the caller gave is never changed; a run that fits is returned as it is (V3's default run included).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import product

from simulator.analytic.memory import memory_floor, memory_per_gpu
from simulator.analytic.profile import KernelRates
from simulator.analytic.report import estimate
from simulator.runspec import RUN_DEFAULTS, RunSpec, default_batch_tokens

TP_CHOICES = (1, 2, 4, 8)  # tensor parallelism stays inside a node (Megatron's practice)
ZERO_CHOICES = (1, 2, 3)
RECOMPUTE_CHOICES = ("selective", "full")
FREE = ("tp", "zero_stage", "recompute")  # what may be chosen, when the caller left it to its default
_NAMES = {"tp": "TP", "zero_stage": "ZeRO", "recompute": "recomputation"}


@dataclass(frozen=True, slots=True)
class Fitted:
    """A run and, when the engine chose inputs the caller left to default so that it fits, a note saying so."""

    run: RunSpec
    note: str = ""
    chosen: dict[str, object] = field(default_factory=dict)  # the inputs chosen for the caller, by field


def _fits(run: RunSpec) -> bool:
    hbm = run.node.gpu.hbm_bytes
    floor = memory_floor(run)
    return (floor is None or floor["total"] <= hbm) and memory_per_gpu(run)["total"] <= hbm


def fitting_run(run: RunSpec, profile: KernelRates | str | None = None) -> Fitted:
    """`run`, or where it does not fit and some of TP, ZeRO stage and recomputation are left to their defaults,
    the combination of those that fits with the fewest GPU-hours (a global batch left to its default follows
    the new data-parallel width). A run nothing fits is returned unchanged: `estimate` then names the fix."""
    free = [name for name in FREE if name in run.defaults]
    if not free or _fits(run):
        return Fitted(run)
    choices = {"tp": TP_CHOICES, "zero_stage": ZERO_CHOICES, "recompute": RECOMPUTE_CHOICES}
    best: tuple[float, RunSpec] | None = None
    for values in product(*(choices[name] for name in free)):
        changes: dict[str, object] = dict(zip(free, values, strict=True))
        tp = int(changes.get("tp", run.tp))  # type: ignore[call-overload]
        if run.node.gpus_per_node % tp or run.model.num_attention_heads % tp or run.gpus % (tp * run.pp * run.cp):
            continue
        if "global_batch_tokens" in run.defaults:
            settled = {f: getattr(run, f) for f in RUN_DEFAULTS if f != "global_batch_tokens"}
            changes["global_batch_tokens"] = default_batch_tokens({**settled, **changes})
        try:
            candidate = run.with_(**changes)
            if not _fits(candidate):
                continue
            gpu_hours = estimate(candidate, profile).gpu_hours
        except ValueError:
            continue  # a combination the run refuses (its batch, its EP) is not a candidate
        if best is None or gpu_hours < best[0]:
            best = (gpu_hours, candidate)
    if best is None:
        return Fitted(run)
    chosen = best[1]
    need = memory_per_gpu(run)["total"]
    picked = ", ".join(
        f"{_NAMES[name]} {getattr(chosen, name)}" for name in free if getattr(chosen, name) != getattr(run, name)
    )
    note = (
        f"chose {picked}: the default layout needs {need / 1e9:.0f} GB per GPU but the {run.node.gpu.name} has "
        f"{run.node.gpu.memory_text()} (the fitting choice with the fewest GPU-hours; set them to override)"
    )
    changed = {
        name: getattr(chosen, name)
        for name in (*free, "global_batch_tokens")
        if getattr(chosen, name) != getattr(run, name)
    }
    return Fitted(replace(chosen, defaults=run.defaults), note, changed)

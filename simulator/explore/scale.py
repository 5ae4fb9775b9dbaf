"""Goodput at scale: one run from 1,024 to 131,072 GPUs, its steady state beside its expected run with
failures, checkpoints and restarts (README: Goodput, Scale; the Training page's "Goodput at scale").

Why: the job's failures grow with its GPUs (the MTBF falls as 1/N) while the run shortens, so the share of the
expected time they cost climbs; the network's exposed share of a step levels off once V3's batch grows with
the GPUs (from 8,192, to keep DualPipe's 2 x PP micro-batches per pipeline). The study asks where the first
overtakes the second. Each row is `v3sim train`'s figures for the
run at that GPU count (`report.estimate`, then `goodput.run_goodput`, as `cli/train.py` calls them), with
what the options leave out at V3's published set-up (its layout; the published batch where it splits).

What the columns mean:

- **Exposed network** (`exposed_network_share`, of a step): the report's `exposed_ep_comm` (expert
  all-to-all), `exposed_pp_comm` (pipeline sends) and `exposed_dp_comm` (ZeRO reduce-scatter and all-gather)
  over the step time: the communication the schedule leaves on the critical path (`analytic.training`,
  BREAKDOWN_KEYS). Not the `bubble`: the pipeline's idle time, though its length follows the chunks'
  communication too, so the share is a floor on what the network costs a step. Not the `optimizer`. TP
  collectives are priced inside `compute` (`training._block_times`), so a tp > 1 run's share leaves them out
  (V3 runs tp 1).
- **Failures' share** (`failure_share`, of the expected time): 1 - goodput, everything the expected run
  takes beyond the steady state (lost work, restarts, and the checkpoint writes, paid only against failures:
  `goodput.Goodput.breakdown_s`).
- **Failures ahead** (`failures_ahead`): the failures' time beats the network's exposed time over the run.
  Both as shares of the expected time: 1 - goodput > exposed_network_share x goodput (the exposed share is of
  a step, that is of the steady time). `crossovers` reads where this first happens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from hwmodels.names import TOPOLOGY_KINDS
from hwmodels.reliability import load_storage
from hwmodels.units import SECONDS_PER_DAY
from simulator.analytic.goodput import Reliability, run_goodput
from simulator.analytic.profile import DEFAULT_PROFILE
from simulator.analytic.report import estimate
from simulator.runspec import build_run

SCALE_GPUS = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
RESTARTS_S = (150.0, 600.0)  # FlashRecovery's restart (goodput.RESTART_S) and a stock one of 10 minutes
NETWORK_KEYS = ("exposed_ep_comm", "exposed_pp_comm", "exposed_dp_comm")  # the step's exposed communication
MAX_POINTS = 64  # GPU counts or restart times in one study: a chart's worth, and each GPU count routes a fabric
AXES = ("gpus", "topology", "radix")  # set by the study itself, never through run_options


@dataclass(frozen=True, slots=True)
class ScaleSpec:
    """One scale study: the GPU counts (rising), the restart times (s, besides reading the checkpoint), the
    fabric (a kind and switch radix that hold the largest count), the kernel profile, the failure-rate factor
    and checkpoint storage, and the other run options (`runspec.build_run`'s: model, gpu / node, layout ...)."""

    gpus: tuple[int, ...] = SCALE_GPUS
    restarts_s: tuple[float, ...] = RESTARTS_S
    topology: str = "fat-tree-3"
    radix: int = 128
    profile: str = DEFAULT_PROFILE
    failure_scale: float = 1.0
    storage: str = "3fs"
    run_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        _check_counts("gpus", self.gpus)
        if any(b <= a for a, b in pairwise(self.gpus)):
            raise ValueError(f"gpus={list(self.gpus)} must rise: each count larger than the one before")
        _check_counts("restarts_s", self.restarts_s, real=True)
        if len(set(self.restarts_s)) < len(self.restarts_s):
            raise ValueError(f"restarts_s={list(self.restarts_s)} repeats a restart time")
        if self.topology not in TOPOLOGY_KINDS:
            raise ValueError(f"topology={self.topology!r} is not one of {', '.join(TOPOLOGY_KINDS)}")
        if isinstance(self.radix, bool) or not isinstance(self.radix, int) or self.radix <= 0:
            raise ValueError(f"radix={self.radix!r} must be a positive whole number of switch ports")
        if not _is_real(self.failure_scale) or not self.failure_scale >= 0:
            raise ValueError(f"failure_scale={self.failure_scale!r} must be a finite number >= 0")
        given = sorted(set(AXES) & {name for name, _ in self.run_options})
        if given:
            raise ValueError(f"run option(s) {', '.join(given)} are the study's own; pass gpus, topology, radix")


def goodput_scale(
    gpus: Sequence[int] = SCALE_GPUS,
    restarts_s: Sequence[float] = RESTARTS_S,
    model: object = "deepseek-v3",
    topology: str = "fat-tree-3",
    radix: int = 128,
    profile: str = DEFAULT_PROFILE,
    failure_scale: float = 1.0,
    storage: str = "3fs",
    **run_options: Any,
) -> list[dict[str, Any]]:
    """One row per GPU count (see the module docstring): gpus, steady_days, step_time_s, exposed_network_share
    (of a step), mtbf_hours (None: nothing fails), interval_min (the checkpoint interval at the first restart
    time: Daly's optimum does not depend on it, as e^{R/M} scales every interval's cost alike), and per
    restart time (s) goodput, failure_share and failures_ahead. `run_options` go to `build_run` (node or gpu,
    tp, pp, ep, schedule, precision, tokens ...). Bad inputs are a one-line ValueError; so is a run the model
    refuses at one of the counts, named."""
    spec = ScaleSpec(
        _as_tuple("gpus", gpus), _as_tuple("restarts_s", restarts_s), topology, radix, profile, failure_scale,
        storage, tuple(sorted({"model": model, **run_options}.items())),
    )  # fmt: skip
    return scale_rows(spec)


def scale_rows(spec: ScaleSpec) -> list[dict[str, Any]]:
    """`goodput_scale`'s rows for a checked spec."""
    load_storage(spec.storage)  # an unknown name is said once, before any run is priced
    reliabilities = {
        float(r): Reliability(failure_scale=float(spec.failure_scale), storage=spec.storage, restart_s=float(r))
        for r in spec.restarts_s
    }
    rows = []
    for n in spec.gpus:
        try:
            run = build_run({**dict(spec.run_options), "gpus": n, "topology": spec.topology, "radix": spec.radix})
            report = estimate(run, spec.profile)
            steady_s = report.days * SECONDS_PER_DAY
            expected = {
                r: run_goodput(run, steady_s, report.gpu_hours, report.cost_usd, inputs)
                for r, inputs in reliabilities.items()
            }
        except ValueError as exc:
            raise ValueError(f"at {n:,} GPUs: {_one_line(exc)}") from None
        network = sum(report.breakdown[k] for k in NETWORK_KEYS) / report.step_time_s
        goodput = {r: e["goodput"] for r, e in expected.items()}
        first = expected[float(spec.restarts_s[0])]
        rows.append(
            {
                "gpus": n,
                "steady_days": report.days,
                "step_time_s": report.step_time_s,
                "exposed_network_share": network,
                "mtbf_hours": first["mtbf_hours"],
                "interval_min": first["checkpoint_interval_min"],
                "goodput": goodput,
                "failure_share": {r: 1 - g for r, g in goodput.items()},
                "failures_ahead": {r: 1 - g > network * g for r, g in goodput.items()},
            }
        )
    return rows


def crossovers(rows: Sequence[dict[str, Any]]) -> dict[float, tuple[int | None, int] | None]:
    """For each restart time, where the failures first get ahead of the network: (the GPU count before,
    the first count at which they are ahead), the first None when they already are at the smallest count; None
    when they never are in these rows. Rows as `goodput_scale` returns them (rising GPU counts)."""
    out: dict[float, tuple[int | None, int] | None] = {}
    for r in rows[0]["failures_ahead"] if rows else ():
        ahead = [i for i, row in enumerate(rows) if row["failures_ahead"][r]]
        out[r] = None if not ahead else (rows[ahead[0] - 1]["gpus"] if ahead[0] else None, rows[ahead[0]]["gpus"])
    return out


def crossover_words(point: tuple[int | None, int] | None, largest_gpus: int) -> str:
    """A `crossovers` point in words: "between 65,536 and 131,072 GPUs", "already at 1,024 GPUs" or "not at or
    below 131,072 GPUs" (`largest_gpus`: the study's last count)."""
    if point is None:
        return f"not at or below {largest_gpus:,} GPUs"
    below, at = point
    return f"already at {at:,} GPUs" if below is None else f"between {below:,} and {at:,} GPUs"


def _as_tuple(name: str, values: object) -> tuple:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of numbers, not {type(values).__name__}")
    return tuple(values)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_counts(name: str, values: tuple, real: bool = False) -> None:
    """A non-empty tuple of at most MAX_POINTS numbers: positive whole numbers, or (real) finite and >= 0."""
    if not values or len(values) > MAX_POINTS:
        raise ValueError(f"{name} must hold 1 to {MAX_POINTS} values, not {len(values)}")
    for v in values:
        ok = _is_real(v) and v >= 0 if real else isinstance(v, int) and not isinstance(v, bool) and v > 0
        if not ok:
            what = "a finite number of seconds >= 0" if real else "a positive whole number"
            raise ValueError(f"{name}: {v!r} is not {what}")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())

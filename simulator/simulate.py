"""One training step in the event model, next to the analytic estimate of the same run.

The pipeline runs in SimPy (`simulator.events`) on the analytic model's
per-stage times (`training.stage_times`: the same per-op cost functions);
the data-parallel collectives and the optimizer follow the step as in the
analytic model. What the event model sees that the analytic one averages
away: each DualPipe pair's real two stages (not the rank's mean), the order
of every op and the pipeline sends overlapping compute.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.events import Timeline, simulate_pipeline
from simulator.profile import KernelRates, rates_for
from simulator.runspec import RunSpec
from simulator.training import StageTimes, dp_and_optimizer_s, estimate, resolved, stage_times


@dataclass(frozen=True, slots=True)
class Simulation:
    """The event model's step, its parts, and the analytic model's step for the same run."""

    step_time_s: float
    pipeline_s: float  # the simulated pipeline: first op to last
    dp_and_optimizer_s: float
    analytic_step_time_s: float
    idle_s: tuple[float, ...]  # per rank, within the pipeline
    stage_layers: tuple[int, ...]
    timeline: Timeline

    def to_dict(self) -> dict[str, object]:
        return {
            "step_time_s": self.step_time_s,
            "pipeline_s": self.pipeline_s,
            "dp_and_optimizer_s": self.dp_and_optimizer_s,
            "analytic_step_time_s": self.analytic_step_time_s,
            "difference": self.step_time_s / self.analytic_step_time_s - 1,
            "idle_s": list(self.idle_s),
            "stage_layers": list(self.stage_layers),
            "ops": len(self.timeline.events),
        }


def chunk_times(run: RunSpec, rates: KernelRates) -> list[StageTimes]:
    """One StageTimes per model chunk: per stage, or each stage cut in v equal chunks (interleaved)."""
    stages = [stage_times(run, rates, s) for s in range(run.pp)]
    if run.schedule != "interleaved":
        return stages
    v = run.virtual_stages  # chunk c of rank r is model chunk c * pp + r
    return [stages[r].scaled(1 / v) for _ in range(v) for r in range(run.pp)]


def simulate(run: RunSpec, profile: KernelRates | str | None = None) -> Simulation:
    """Simulate one step of `run` (deterministic: no random inputs yet)."""
    if run.schedule == "dualpipev":
        raise ValueError("the event model does not run dualpipev yet; use --schedule dualpipe")
    rates = rates_for(profile, run.node.gpu)
    run = resolved(run, rates)
    if run.schedule == "dualpipe" and (run.microbatches % 2 or run.microbatches < 2 * run.pp):
        raise ValueError(f"dualpipe needs an even number of micro-batches >= 2 x pp; got {run.microbatches}")
    timeline = simulate_pipeline(run.schedule, run.pp, run.microbatches, chunk_times(run, rates), run.virtual_stages)
    dp_s, opt_s = dp_and_optimizer_s(run, rates)
    analytic = estimate(run, rates, check_memory=False).step_time_s
    return Simulation(
        step_time_s=timeline.step_time_s + dp_s + opt_s,
        pipeline_s=timeline.step_time_s,
        dp_and_optimizer_s=dp_s + opt_s,
        analytic_step_time_s=analytic,
        idle_s=timeline.idle_s,
        stage_layers=tuple(run.stage_layers or ()),
        timeline=timeline,
    )

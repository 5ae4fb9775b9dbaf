"""Step-time tables for the serving event model (`simulator.events.serving`): the analytic `decode` and
`prefill` on a fine grid, each point priced once when a run first needs it, interpolated multilinearly
in between.

A decode step bends where two micro-batches start to pay and where compute overtakes the all-to-all
(`simulator.analytic.serving._pass_s`), so the grid is fine (2% in batch and KV length, 0.05 in the expert
imbalance); a test holds both tables to the functions within 1% off the grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from simulator.analytic.colocated import mixed_step
from simulator.analytic.profile import KernelRates
from simulator.analytic.serving import decode, prefill
from simulator.servespec import ServeSpec


@dataclass(frozen=True, slots=True)
class Axis:
    """Grid points along one input: 1, 2, ... `dense`, then each about `ratio` x the last (whole numbers);
    or, with `step`, 1, 1 + step, 1 + 2 step, ..."""

    dense: int = 64
    ratio: float = 1.02
    step: float | None = None

    def point(self, i: int) -> float:
        if self.step is not None:
            return 1 + i * self.step
        return float(i + 1 if i < self.dense else round(self.dense * self.ratio ** (i + 1 - self.dense)))

    def cell(self, x: float) -> tuple[int, float]:
        """The index of the grid point at or below `x` (the first, below the grid) and `x`'s weight on the next."""
        if self.step is not None:
            i = max(0, int((x - 1) // self.step))
        else:
            i = max(
                0,
                int(x) - 1 if x < self.dense else self.dense - 1 + int(math.log(x / self.dense) / math.log(self.ratio)),
            )
            while i > 0 and self.point(i) > x:
                i -= 1
            while self.point(i + 1) <= x:
                i += 1
        lo, hi = self.point(i), self.point(i + 1)
        return i, (x - lo) / (hi - lo)


class LazyGrid:
    """A function tabulated on a grid as the simulation reaches each point (the same point is never priced
    twice) and interpolated multilinearly in between."""

    def __init__(self, function: Callable[..., float], axes: tuple[Axis, ...]) -> None:
        self.function, self.axes = function, axes
        self.values: dict[tuple[int, ...], float] = {}

    def __call__(self, *x: float) -> float:
        corners: list[tuple[tuple[int, ...], float]] = [((), 1.0)]
        for axis, value in zip(self.axes, x, strict=True):
            i, w = axis.cell(value)
            corners = [((*at, j), cw * share) for at, cw in corners for j, share in ((i, 1 - w), (i + 1, w))]
        return sum(cw * self._value(at) for at, cw in corners if cw)

    def _value(self, at: tuple[int, ...]) -> float:
        if at not in self.values:
            self.values[at] = self.function(*(axis.point(i) for axis, i in zip(self.axes, at, strict=True)))
        return self.values[at]


DECODE_AXES = (Axis(64, 1.02), Axis(64, 1.02), Axis(step=0.05))  # batch per GPU, KV tokens, expert imbalance
PREFILL_AXES = (Axis(16, 1.1), Axis(16, 1.25))  # new tokens per GPU, prompt tokens
CHUNK_AXES = (Axis(64, 1.02), Axis(16, 1.1))  # batch per GPU, prompt tokens per GPU in the step


def decode_table(s: ServeSpec, rates: KernelRates) -> LazyGrid:
    """`decode` step seconds over (batch per GPU, mean KV tokens per sequence, `decode`'s expert_imbalance):
    the step bends where two micro-batches start to pay and where compute overtakes the all-to-all, so the
    grid is fine (2% in batch and KV length, 0.05 in the imbalance) and filled only where the run goes."""

    def step_s(batch: float, ctx: float, imbalance: float) -> float:
        return decode(replace(s, context=int(ctx), output_tokens=None), rates, batch, imbalance).step_s

    return LazyGrid(step_s, DECODE_AXES)


def prefill_table(s: ServeSpec, rates: KernelRates) -> LazyGrid:
    """`prefill` forward seconds over (new tokens per GPU, prompt tokens): near linear in both."""

    def step_s(tokens: float, prompt: float) -> float:
        at = replace(s, context=int(prompt) + 1, output_tokens=1)  # prompt_tokens(at) == prompt
        return prefill(at, rates, int(tokens)).step_s

    return LazyGrid(step_s, PREFILL_AXES)


def chunk_table(s: ServeSpec, rates: KernelRates) -> LazyGrid:
    """What a chunk of prompt tokens adds to a co-located decode step, over (batch per GPU, chunk tokens per
    GPU): the analytic mixed step less the decode step of the same batch (`colocated.mixed_step`; at zero
    chunk they are equal), at the deployment's context."""

    def extra_s(batch: float, chunk: float) -> float:
        return mixed_step(s, rates, batch, chunk).step_s - mixed_step(s, rates, batch, 0.0).step_s

    return LazyGrid(extra_s, CHUNK_AXES)

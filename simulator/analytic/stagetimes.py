"""Seconds per micro-batch on one pipeline stage (one GPU), split where DualPipe's overlap needs it: what the
training model (`simulator.analytic.training`) prices a stage at and the event model schedules."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Seconds per micro-batch on one pipeline stage (one GPU), split where DualPipe's overlap needs it."""

    f_attn: float  # forward compute: attention projections and core, their element-wise ops
    f_mlp: float  # forward compute: FFN / experts, router, head, MTP projection
    b_attn: float  # backward compute (inputs and weights) of the attention part
    b_mlp: float  # backward compute of the MLP part
    w: float  # the weight-gradient part of b_attn + b_mlp
    dispatch_f: float  # expert-parallel dispatch, forward
    combine_f: float
    dispatch_b: float  # backward of the dispatch (gradients back to the token's GPU)
    combine_b: float  # backward of the combine (gradients out to the experts)
    pp_f: float  # activations to the next stage
    pp_b: float  # gradients to the previous stage
    host_wait: float = 0.0  # of the compute above, seconds the GPU waits for the host's launches (analytic.host)
    host_f: float = 0.0  # seconds the host takes to launch the forward's eager ops (analytic.host)
    host_b: float = 0.0  # ... and the backward's (input and weight gradients, recomputation)

    @property
    def f(self) -> float:
        return self.f_attn + self.f_mlp

    @property
    def b(self) -> float:
        return self.b_attn + self.b_mlp

    @property
    def ep_f(self) -> float:
        return self.dispatch_f + self.combine_f

    @property
    def ep_b(self) -> float:
        return self.dispatch_b + self.combine_b

    def pair_slots_s(self) -> float:
        """The GPU's side of an F&B pair: a forward and a backward chunk of two micro-batches, each communication
        op hidden under the other chunk's compute that runs while it is in flight (V3 report, figure 4; our slot
        assignment): attention F with B's combine, MLP B with F's dispatch, MLP F with B's dispatch, attention B
        with F's combine; pipeline sends ride with F's dispatch."""
        return (
            max(self.f_attn, self.combine_b)
            + max(self.b_mlp, self.dispatch_f + self.pp_f + self.pp_b)
            + max(self.f_mlp, self.dispatch_b)
            + max(self.b_attn, self.combine_f)
        )

    def overlapped_pair_s(self) -> float:
        """F&B: the pair's slots (`pair_slots_s`), no shorter than the host takes to launch both chunks' eager
        ops: one host thread launches the two micro-batches' kernels in turn while the GPU runs them on two
        streams, so overlap halves the GPU's time but not the host's (`simulator.analytic.host`)."""
        return max(self.pair_slots_s(), self.host_f + self.host_b)

    def pair_host_wait_s(self) -> float:
        """Seconds of an F&B pair the GPU waits for the host: what both chunks' launches outlast its slots by."""
        return max(0.0, self.host_f + self.host_b - self.pair_slots_s())

    def __add__(self, other: StageTimes) -> StageTimes:
        return StageTimes(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def scaled(self, k: float) -> StageTimes:
        return StageTimes(*(a * k for a in astuple(self)))


def astuple(t: StageTimes) -> tuple[float, ...]:
    return _STAGE_TIMES_FIELDS(t)


_STAGE_TIMES_FIELDS = attrgetter(*StageTimes.__slots__)

"""ParallelLayout: how a model is split over GPUs for training or serving.

GPUs = tp * pp * dp. Expert parallelism is carved out of the data-parallel
(x tensor-parallel) ranks, as in Megatron-LM and DeepSeek-V3: each routed
expert lives on one of `ep` ranks, and the `tp * dp / ep` ranks that hold the
same experts form the expert-data-parallel group that reduces their gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

from workloads.spec import ModelSpec

ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True, slots=True)
class ParallelLayout:
    """Degrees of tensor, pipeline, data and expert parallelism, and the ZeRO stage."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    zero_stage: int = 1
    gpus_per_node: int = 8

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "ep", "gpus_per_node"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.zero_stage not in ZERO_STAGES:
            raise ValueError(f"zero_stage={self.zero_stage!r}; use one of 0, 1, 2, 3")
        if (self.tp * self.dp) % self.ep:
            raise ValueError(
                f"ep={self.ep} must divide tp*dp={self.tp * self.dp} (experts are spread over data-parallel ranks)"
            )

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def expert_dp(self) -> int:
        """Ranks holding the same experts: the expert-data-parallel group size."""
        return self.tp * self.dp // self.ep

    @property
    def ep_nodes(self) -> int:
        """Nodes an expert-parallel group spans (at least one)."""
        return max(1, -(-self.ep // self.gpus_per_node))


def check_layout(spec: ModelSpec, layout: ParallelLayout) -> None:
    """Raise ValueError, naming the fix, if `layout` cannot hold `spec`."""
    if spec.is_moe and spec.n_routed_experts % layout.ep:
        divisors = [d for d in range(1, spec.n_routed_experts + 1) if spec.n_routed_experts % d == 0]
        raise ValueError(
            f"ep={layout.ep} does not divide {spec.n_routed_experts} routed experts of {spec.name}; "
            f"try {', '.join(map(str, divisors[-6:]))}"
        )
    if not spec.is_moe and layout.ep != 1:
        raise ValueError(f"ep={layout.ep} but {spec.name} is dense; use ep=1")
    if layout.pp > spec.num_hidden_layers:
        raise ValueError(f"pp={layout.pp} exceeds the {spec.num_hidden_layers} layers of {spec.name}")
    if spec.num_attention_heads % layout.tp:
        raise ValueError(
            f"tp={layout.tp} does not divide the {spec.num_attention_heads} attention heads of {spec.name}"
        )


def stage_layer_counts(num_layers: int, pp: int) -> list[int]:
    """Decoder layers per pipeline stage, as even as possible.

    Extra layers go to the middle stages first, because the first stage also
    holds the embedding and the last the output head (and MTP module).
    """
    if pp <= 0 or pp > num_layers:
        raise ValueError(f"pp={pp} must be between 1 and the {num_layers} layers")
    base, extra = divmod(num_layers, pp)
    counts = [base] * pp
    order = sorted(range(pp), key=lambda s: (s in (0, pp - 1), abs(s - (pp - 1) / 2)))
    for stage in order[:extra]:
        counts[stage] += 1
    return counts

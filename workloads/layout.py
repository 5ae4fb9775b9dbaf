"""ParallelLayout: how a model is split over GPUs for training or serving.

GPUs = tp * cp * pp * dp. Context parallelism splits each sequence over `cp`
ranks, which hold the same weights: for the weights they are data-parallel
ranks (Megatron-LM reduces gradients over dp x cp), for the batch they are
one. Expert parallelism is carved out of the data- and context-parallel
(x tensor-parallel) ranks, as in Megatron-LM and DeepSeek-V3: each routed
expert lives on one of `ep` ranks, and the `tp * cp * dp / ep` ranks that hold
the same experts form the expert-data-parallel group that reduces their
gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from workloads.spec import ModelSpec

ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True, slots=True)
class ParallelLayout:
    """Degrees of tensor, pipeline, data, expert and context parallelism, and the ZeRO stage."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    zero_stage: int = 1
    gpus_per_node: int = 8
    stage_layers: tuple[int, ...] | None = None  # decoder layers per stage; None: as even as possible
    cp: int = 1  # ranks each sequence is split over

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "ep", "gpus_per_node", "cp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.zero_stage not in ZERO_STAGES:
            raise ValueError(f"zero_stage={self.zero_stage!r}; use one of 0, 1, 2, 3")
        if self.stage_layers is not None and (
            len(self.stage_layers) != self.pp or any(n < 0 for n in self.stage_layers)
        ):
            raise ValueError(f"stage_layers={list(self.stage_layers)} must give pp={self.pp} counts >= 0")
        if self.tp * self.replicas % self.ep:
            where = "tp*dp" if self.cp == 1 else "tp*cp*dp"
            raise ValueError(
                f"ep={self.ep} must divide {where}={self.tp * self.replicas} (experts are spread over data-parallel "
                "ranks)"
            )

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    @property
    def replicas(self) -> int:
        """Ranks holding the same dense weights of a TP rank and stage: the data- and context-parallel ones."""
        return self.dp * self.cp

    def layer_counts(self, num_layers: int) -> list[int]:
        """Decoder layers on each pipeline stage: the stated split, or as even as possible."""
        if self.stage_layers is None:
            return stage_layer_counts(num_layers, self.pp)
        if sum(self.stage_layers) != num_layers:
            raise ValueError(
                f"stage_layers={list(self.stage_layers)} sum to {sum(self.stage_layers)}, not {num_layers}"
            )
        return list(self.stage_layers)

    @property
    def expert_dp(self) -> int:
        """Ranks holding the same experts: the expert-data-parallel group size."""
        return self.tp * self.replicas // self.ep

    @property
    def dp_per_node(self) -> int:
        """Ranks of one data-parallel (dp x cp) group that share a node: Megatron orders ranks tp-cp-ep-dp-pp,
        so a group's ranks sit tp apart (with tp = 8 on 8-GPU nodes, one to a node)."""
        return min(self.replicas, max(1, self.gpus_per_node // self.tp))

    @property
    def expert_dp_per_node(self) -> int:
        """Ranks of one expert-data-parallel group that share a node: they sit ep apart (Megatron's expert
        order tp-ep-dp-pp, experts not tensor-split)."""
        return min(self.expert_dp, max(1, self.gpus_per_node // self.ep))

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
    layout.layer_counts(spec.num_hidden_layers)  # a stated split must cover every layer
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


def is_moe_layer(spec: ModelSpec, layer: int) -> bool:
    """Whether decoder layer `layer` (0-based) has a MoE FFN rather than a dense one."""
    return spec.is_moe and layer >= spec.first_k_dense_replace and layer % spec.moe_layer_freq == 0


def stage_blocks(spec: ModelSpec, layout: ParallelLayout, stage: int, include_mtp: bool = False) -> list[bool]:
    """MoE flag of each block a pipeline stage runs; the last stage also runs the MTP blocks."""
    return list(_stage_blocks(spec, layout, stage, include_mtp))


@lru_cache(maxsize=8192)
def _stage_blocks(spec: ModelSpec, layout: ParallelLayout, stage: int, include_mtp: bool) -> tuple[bool, ...]:
    counts = layout.layer_counts(spec.num_hidden_layers)
    start = sum(counts[:stage])
    kinds = [is_moe_layer(spec, k) for k in range(start, start + counts[stage])]
    if include_mtp and stage == layout.pp - 1:
        kinds += [spec.is_moe] * spec.num_nextn_predict_layers
    return tuple(kinds)


def balanced_layer_counts(
    num_layers: int, pp: int, extra_first: float = 0.0, extra_last: float = 0.0, paired: bool = False
) -> list[int]:
    """Layers per stage that minimize the busiest rank's load, in layer units.

    The first stage carries `extra_first` and the last `extra_last` layers' worth
    of extra work (embedding; output head and MTP). `paired`: rank r runs stages
    r and PP-1-r (DualPipe), so the load of a pair is what must balance.
    """
    if pp <= 0 or pp > num_layers:
        raise ValueError(f"pp={pp} must be between 1 and the {num_layers} layers")
    if paired and pp % 2:
        raise ValueError(f"a paired (DualPipe) split needs an even pp; got {pp}")
    extra = [0.0] * pp
    extra[0] += extra_first
    extra[-1] += extra_last
    groups: list[tuple[int, ...]] = [(r, pp - 1 - r) for r in range(pp // 2)] if paired else [(s,) for s in range(pp)]
    group_extra = [sum(extra[s] for s in g) for g in groups]

    def capacity(limit: float) -> list[int]:
        return [max(0, int(limit - e + 1e-9)) for e in group_extra]

    candidates = sorted({e + k for e in group_extra for k in range(num_layers + 1)})
    lo, hi = 0, len(candidates) - 1
    while lo < hi:  # the smallest load limit whose capacities hold every layer
        mid = (lo + hi) // 2
        if sum(capacity(candidates[mid])) >= num_layers:
            hi = mid
        else:
            lo = mid + 1
    take = capacity(candidates[lo])
    while sum(take) > num_layers:  # give back surplus from the most loaded groups
        busiest = max((i for i in range(len(groups)) if take[i] > 0), key=lambda i: take[i] + group_extra[i])
        take[busiest] -= 1
    counts = [0] * pp
    for g, n in zip(groups, take, strict=True):
        if len(g) == 1:
            counts[g[0]] = n
            continue
        a, b = g  # split the pair's layers so its two stages carry similar loads
        n_a = min(n, max(0, round((n + extra[b] - extra[a]) / 2)))
        counts[a], counts[b] = n_a, n - n_a
    return counts

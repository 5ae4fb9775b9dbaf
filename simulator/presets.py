"""The one home for defaults: what v3sim assumes where the user says nothing.

V3's published set-ups (pre-training layout, serving deployment), the GPU -> node resolver every command
uses (`train`, `simulate`, `serve`, sweeps and the dashboard take the same `--gpu` / `--node`), and the
event model's options. The CLI, the dashboard and sweep completion read these; none writes its own.
"""

from __future__ import annotations

from typing import Any

from hwmodels.registry import catalog, load_node
from hwmodels.specs import NodeSpec
from simulator.servespec import ServeSpec, fewest_redundant
from workloads.layout import ParallelLayout
from workloads.registry import load_model
from workloads.spec import ModelSpec

DEFAULT_GPU = "h800"  # V3's (V3 report, section 3.1)
# DeepSeek-V3's published pre-training layout (V3 report, section 3.2): PP16, EP64 over 8 nodes, ZeRO-1 DP128.
V3_LAYOUT = ParallelLayout(tp=1, pp=16, dp=128, ep=64, zero_stage=1, gpus_per_node=8)
V3_NODE_LIMIT = 4  # nodes a token's experts may span (V3 report, section 3.2.2)
# Options of the event engine (simulator.events.simulate), with their defaults; the analytic engine ignores them.
EVENT_DEFAULTS: dict[str, Any] = {
    "network": "flow",
    "expert_cv": 0.0,
    "samples": 8,
    "seed": 0,
    "straggler_rate": 0.0,
    "straggler_slowdown": 1.0,
}
SERVING_LAYOUT_OPTIONS = ("tp", "ep", "redundant", "prefill_ep", "prefill_redundant")  # serving_layout's keys
# DeepSeek's production deployment (open-infra-index, "Day 6: DeepSeek-V3/R1 Inference System Overview", 2025):
# decode EP144 with 32 redundant experts and DP144 attention, prefill EP32 with 32 redundant, on H800 nodes;
# served with MTP drafts (V3 report 5.4.3: 85-90% of second tokens accepted). What serve-search must match.
V3_PUBLISHED_SERVING: dict[str, Any] = {
    "tp": 1, "ep": 144, "redundant": 32, "prefill_ep": 32, "prefill_redundant": 32, "mtp_acceptance": 0.85,
}  # fmt: skip


def node_for(gpu: object = None, node: object = None) -> NodeSpec:
    """The node a command names: `node` (catalog name or TOML file), else the GPU's '<gpu>-ib' node, else the
    one catalog node built around that GPU (gb200 -> gb200-nvl72, mi300x -> mi300x-roce), else V3's h800-ib."""
    for what, value in (("gpu", gpu), ("node", node)):
        if value is not None and not str(value).strip():
            raise ValueError(f"{what} is empty; name one, or leave it out for the default ({DEFAULT_GPU})")
    if gpu is not None and node is not None:
        raise ValueError("give a gpu or a node, not both")
    if node is not None:
        return load_node(str(node))
    name = str(gpu or DEFAULT_GPU).lower()
    nodes = catalog("nodes")
    candidates = [n for n in nodes if n == f"{name}-ib"] or [n for n in nodes if n.startswith(f"{name}-")]
    if not candidates:
        raise ValueError(f"no catalog node has a {name} GPU; give a node (one of {', '.join(nodes)}) or a TOML file")
    return load_node(candidates[0])


def training_ep(model: ModelSpec, tp_dp: int) -> int:
    """The expert parallelism a run gets when none is given: V3's EP64 where it divides the experts and the
    tp x dp ranks that hold them, else the largest degree below it that does (1 for a dense model), so that
    e.g. `--gpu gb200 --gpus 1152` (16 NVL72 racks, dp 72) answers with EP8 rather than an error."""
    if not model.is_moe:
        return 1
    return max(e for e in range(1, V3_LAYOUT.ep + 1) if model.n_routed_experts % e == 0 and tp_dp % e == 0)


def interleaved_virtual_stages(layers: int, pp: int) -> int:
    """The virtual stages an interleaved pipeline gets when none are given: the most with a layer in each
    (pp x v <= layers), so the bubble is as small as the model allows (Narayanan et al. 2021: bubble / v)."""
    return max(1, layers // max(pp, 1))


def training_gpus(node: NodeSpec) -> int:
    """The GPUs a run gets when none are given: V3's 2,048 (V3 report 3.1), or the nearest whole number of
    nodes where a node does not divide it (an NVL72 rack: 28 racks, 2,016 GPUs)."""
    per_node = node.gpus_per_node
    return max(1, round(V3_GPUS / per_node)) * per_node


V3_GPUS = 2048  # H800s of V3's pre-training cluster (V3 report, section 3.1)
V3_BATCH_SEQUENCES = 15360  # sequences per step (V3 report, section 4.2)


def training_batch_sequences(dp: int, micro_batch: int, bidirectional: bool, pp: int = 1) -> int:
    """V3's 15,360-sequence batch, or where it does not split into dp x micro_batch (x 2 for DualPipe's two
    directions) whole micro-batches, the nearest batch that does; and at least the micro-batches the
    schedule needs (pp, or 2 pp for DualPipe), so that a large cluster's default run is a valid one."""
    unit = dp * micro_batch * (2 if bidirectional else 1)
    least = dp * micro_batch * (2 * pp if bidirectional else pp)
    return max(unit, least, round(V3_BATCH_SEQUENCES / unit) * unit)


def serving_layout(spec: ModelSpec, node: NodeSpec) -> dict[str, int]:
    """V3's published deployment where it applies (V3 report 3.4); otherwise a node-sized one."""
    g = node.gpus_per_node
    tp = (
        1
        if spec.attention == "mla"
        else next(t for t in (8, 4, 2, 1) if g % t == 0 and spec.num_attention_heads % t == 0)
    )
    if not spec.is_moe:
        return {"tp": tp, "ep": 1, "redundant": 0, "prefill_ep": 1, "prefill_redundant": 0}
    if spec.n_routed_experts == 256 and g == 8:  # V3 on 8-GPU nodes: decode EP320, prefill EP32
        return {"tp": tp, "ep": 320, "redundant": 64, "prefill_ep": 32, "prefill_redundant": 32}
    if spec.n_routed_experts == 256 and g == 72:  # one NVL72 rack: 256 + 32 slots, 4 per GPU
        return {"tp": tp, "ep": 72, "redundant": 32, "prefill_ep": 72, "prefill_redundant": 32}
    ep = g if spec.n_routed_experts % g == 0 else 1
    return {"tp": tp, "ep": ep, "redundant": 0, "prefill_ep": ep, "prefill_redundant": 0}


def deployment(
    model: str | ModelSpec = "deepseek-v3",
    gpu: str | None = None,
    node: str | None = None,
    weight_dtype: str | None = None,
    overlap: str = "auto",
    **options: Any,
) -> ServeSpec:
    """The ServeSpec `v3sim serve` runs: the model on its node, `serving_layout` unless an option (tp, ep,
    redundant, prefill_ep, prefill_redundant) is given, fp8 weights where the GPU has fp8, and any other
    ServeSpec field in `options` (None: the field's default)."""
    node_spec = node_for(gpu, node)
    spec = model if isinstance(model, ModelSpec) else load_model(model)
    given = {k: v for k, v in options.items() if v is not None}
    chosen = {k: given.pop(k) for k in list(given) if k in SERVING_LAYOUT_OPTIONS}
    layout = {**serving_layout(spec, node_spec), **chosen}
    notes = []
    for ep, extra, flag in (("ep", "redundant", "--ep"), ("prefill_ep", "prefill_redundant", "--prefill-ep")):
        if spec.is_moe and ep in chosen and extra not in chosen:  # an EP size alone: the fewest slots that divide
            layout[extra] = fewest_redundant(spec.n_routed_experts, layout[ep])
            slots = spec.n_routed_experts + layout[extra]
            notes.append(
                f"{flag} {layout[ep]}: {layout[extra]} redundant expert slots, the fewest that spread "
                f"{spec.n_routed_experts} experts evenly ({slots} slots, {slots // layout[ep]} per GPU)"
            )
    weight_dtype = weight_dtype or ("fp8" if node_spec.gpu.peak_fp8_flop_per_s > 0 else "bf16")
    return ServeSpec(
        model=spec, node=node_spec, weight_dtype=weight_dtype, overlap=overlap, notes=tuple(notes), **layout, **given
    )

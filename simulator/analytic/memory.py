"""Memory per GPU of a training run: the fullest GPU's bytes by category with the schedule's parameter copies
and micro-batches in flight (`memory_per_gpu`), and a floor under it whatever the stage split
(`memory_floor`), which refuses a layout before its split is searched."""

from __future__ import annotations

from dataclasses import replace

from simulator.runspec import RunSpec
from simulator.schedules import BIDIRECTIONAL, inflight_microbatches
from workloads.layout import stage_blocks
from workloads.memory import training_memory_by_stage
from workloads.ops import cp_ops

STATES = ("weights", "gradients", "optimizer_states")


def precision_preset(run: RunSpec) -> str:
    """The `workloads.precision` preset of a run's training states: V3's recipe under fp8, else bf16-mixed."""
    return "deepseek-v3" if run.precision == "fp8" else "bf16-mixed"


def rank_shares(run: RunSpec) -> tuple[float, float, int]:
    """(parameter-state share, activation share, ranks): a bidirectional rank runs stages r and PP-1-r and
    holds both stages' parameters (DualPipe; half of them under DualPipeV) and a share of their in-flight
    micro-batches; any other schedule, one stage a rank."""
    if run.schedule not in BIDIRECTIONAL:
        return 1.0, 1.0, run.pp
    dualpipe = run.schedule == "dualpipe"
    return (1.0 if dualpipe else 0.5), (0.5 if dualpipe else 0.25), run.pp // 2


def cp_gathered_bytes(run: RunSpec) -> float:
    """Bytes one GPU holds for context parallelism's all-gather, one layer at a time: the other ranks' K and V
    gathered for the attention, and in the backward their gradients before the reduce-scatter. The ring holds
    a chunk or two in flight and the all-to-all swaps its own tokens' Q, K, V for the same bytes: neither
    adds to what the activations count."""
    if run.cp == 1 or run.cp_comm != "all-gather":
        return 0.0
    forward = cp_ops(run.model, run.micro_batch * run.seq_len, run.cp, run.tp, False, run.cp_comm)[0]
    return 2 * forward.nvlink_bytes


def _merged_extra(run: RunSpec, stage: int) -> float:
    """Micro-batches (full-stage units) 1F1B's merged pairs hold beyond the schedule's own (ep_comm overlapped):
    one layer's. Megatron's combined 1F1B runs the next micro-batch's forward of layer i beside this one's
    backward of its layer L-1-i and releases that layer's state as it goes (Megatron-LM
    megatron/core/models/common/model_chunk_schedule_plan.py @ d98e8a64, the combined forward-backward loop:
    get_layer(i) with pop_layer() and release_state()): one micro-batch's activations in all, and the layer the
    forward has built before the backward frees its own. Measured: Megatron-Bridge's Qwen3-30B-A3B on 16 H100
    (BF16, EP16, HybridEP, EP overlap on, no recomputation) peaked at 62.166 GiB allocated
    (skills/nemo-mbridge-perf-moe-comm-overlap/SKILL.md @ 067f987df), where a whole second micro-batch would not
    have fit in 80 GB."""
    if not run.ep_merged:
        return 0.0
    return 1 / max(1, len(stage_blocks(run.model, run.layout, stage, include_mtp=True)))


def memory_per_gpu(run: RunSpec) -> dict[str, float]:
    """Bytes on the fullest GPU, by category, with the schedule's parameter copies and micro-batches in flight."""
    rows = training_memory_by_stage(
        run.model,
        run.layout,
        run.seq_len,
        micro_batch=run.micro_batch,
        recompute=run.recompute,
        precision=precision_preset(run),
        # in-flight counts are fractional (full-stage units); workloads.memory types them as ints
        inflight_microbatches=[
            inflight_microbatches(run.schedule, run.pp, s) + _merged_extra(run, s) for s in range(run.pp)
        ],
    )
    if run.schedule in BIDIRECTIONAL:
        weight_share, share, ranks = rank_shares(run)
        paired = []
        for r in range(ranks):
            a, b = rows[r], rows[run.pp - 1 - r]
            row = {k: weight_share * (a[k] + b[k]) for k in STATES}
            row["activations"] = share * (a["activations"] + b["activations"])
            paired.append(row)
        rows = paired
    worst = max(rows, key=lambda r: sum(v for k, v in r.items() if k != "total"))
    out = {k: float(worst[k]) for k in (*STATES, "activations")}
    out["activations"] += cp_gathered_bytes(run)
    out["total"] = sum(out.values())
    return out


def memory_floor(run: RunSpec) -> dict[str, float] | None:
    """A floor under `memory_per_gpu` whatever the stage split, by category: the mean over the pipeline ranks
    of what they hold together. Parameters, their gradients and optimizer states add up to the same whatever
    the split; activations are counted at the fewest micro-batches any stage keeps in flight. A layout over
    it is refused before its split is searched (most of best-layout's candidates). None under full
    recomputation, whose per-stage working set is not additive."""
    if run.recompute == "full":
        return None
    fewest = min(inflight_microbatches(run.schedule, run.pp, s) for s in range(run.pp))
    # every layer on one stage sums what the stages hold (a tied head counted once: lower, still a floor)
    whole = replace(run.layout, pp=1, stage_layers=None)
    prec = precision_preset(run)
    rows = training_memory_by_stage(run.model, whole, run.seq_len, run.micro_batch, run.recompute, prec, [fewest])
    weight_share, share, ranks = rank_shares(run)
    out = {k: weight_share * sum(r[k] for r in rows) / ranks for k in STATES}
    out["activations"] = share * sum(r["activations"] for r in rows) / ranks + cp_gathered_bytes(run)
    out["total"] = sum(out.values())
    return out

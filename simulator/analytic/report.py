"""The report of a training run: step time, throughput, MFU, GPU-hours, cost and memory per GPU
(`estimate`), with each headline figure's formula and inputs (`explain`). The model itself, per-stage times
and the step's breakdown, is `simulator.analytic.training`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from hwmodels.units import SECONDS_PER_DAY, SECONDS_PER_HOUR
from simulator.analytic.fabric import fabric_factors
from simulator.analytic.memo import Memo
from simulator.analytic.memory import memory_floor, memory_per_gpu
from simulator.analytic.pricing import priced_class
from simulator.analytic.profile import KernelRates, describe, rates_for
from simulator.analytic.training import (
    StageTimes,
    block_ops,
    resolved,
    split_candidates,
    split_choice,
    step_breakdown,
    step_parts,
)
from simulator.runspec import RunSpec
from workloads.flops import train_flops_per_token


@dataclass(frozen=True, slots=True)
class Report:
    """What one training run costs and where its time goes."""

    step_time_s: float
    breakdown: dict[str, float]  # seconds per step; sums to step_time_s
    microbatches: int
    chunk_s: dict[str, float]  # F, B, W, F&B of the busiest rank, seconds per micro-batch
    host_wait_s: float  # of its F + B, seconds the GPU waits for the host's kernel launches (`analytic.host`)
    pair_host_wait_s: float  # of its F&B pair (EP overlapped), seconds the launches of both chunks outlast it by
    tokens_per_step: int
    tokens_per_s: float  # whole cluster
    tokens_per_s_per_gpu: float
    model_flops_per_token: float  # training, causal attention, MTP included
    mfu: dict[str, float]  # achieved model FLOP/s over the bf16 and fp8 dense peaks
    gpu_hours: float
    cost_usd: float
    days: float
    memory_per_gpu_bytes: dict[str, float]  # the fullest GPU, by category
    stage_layers: list[int]
    run: dict[str, object]  # the inputs used
    defaults: list[str]  # inputs the caller left to their default
    explain: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def estimate(run: RunSpec, profile: KernelRates | str | None = None, check_memory: bool = True) -> Report:
    """Step time, throughput, MFU, GPU-hours, cost and memory of a training run."""
    profile = rates_for(profile, run.node.gpu)
    balanced = run.stage_layers is None
    run = resolved(run, profile)
    memory = memory_per_gpu(run)
    hbm = run.node.gpu.hbm_bytes
    if balanced and check_memory and memory["total"] > hbm:
        _check_floor(run)  # no split fits: said as the sweep, which checks this first, says it
    if balanced and memory["total"] > hbm:  # the fastest candidate split may not fit where the other does
        tried = [(r, memory_per_gpu(r)) for r in (run.with_split(c) for c in split_candidates(run, profile))]
        fitting = [(r, m) for r, m in tried if m["total"] <= hbm]
        # else refused: with what the split needing least would need (whichever the batch made fastest)
        run, memory = fitting[0] if fitting else (run, min((m for _, m in tried), key=lambda m: m["total"]))
    if check_memory and memory["total"] > hbm:
        raise ValueError(_memory_error(run, memory))
    breakdown, t, chunk = step_breakdown(run, profile)
    n = run.microbatches
    step = sum(breakdown.values())
    tokens_per_step = run.global_batch_tokens
    tokens_per_s = tokens_per_step / step
    gpu = run.node.gpu
    flops_per_token = train_flops_per_token(run.model, run.seq_len, "exact")
    achieved = flops_per_token * tokens_per_s / run.gpus
    mfu = {"bf16": achieved / gpu.peak_flop_per_s("bf16")}
    if gpu.peak_fp8_flop_per_s > 0:
        mfu["fp8"] = achieved / gpu.peak_flop_per_s("fp8")
    wall_s = run.tokens / tokens_per_s
    gpu_hours = wall_s * run.gpus / SECONDS_PER_HOUR
    report = Report(
        step_time_s=step,
        breakdown=breakdown,
        microbatches=n,
        chunk_s={"F": chunk.f, "B": chunk.b, "W": chunk.w, "F&B": chunk.fb},
        host_wait_s=t.host_wait,
        pair_host_wait_s=t.pair_host_wait_s() if run.ep_overlapped else 0.0,
        tokens_per_step=tokens_per_step,
        tokens_per_s=tokens_per_s,
        tokens_per_s_per_gpu=tokens_per_s / run.gpus,
        model_flops_per_token=flops_per_token,
        mfu=mfu,
        gpu_hours=gpu_hours,
        cost_usd=gpu_hours * run.usd_per_gpu_hour,
        days=wall_s / SECONDS_PER_DAY,
        memory_per_gpu_bytes=memory,
        stage_layers=list(run.stage_layers or ()),
        run=run_inputs(run, profile),
        defaults=list(run.defaults),
    )
    return replace(report, explain=explain(run, profile, report, t, balanced))


def _check_floor(run: RunSpec) -> None:
    """Refuse a run that no stage split fits (`memory.memory_floor`), before its split is searched."""
    floor = memory_floor(run)
    if floor is not None and floor["total"] > run.node.gpu.hbm_bytes:
        parts = ", ".join(f"{k} {v / 1e9:.1f}" for k, v in floor.items() if k != "total")
        raise ValueError(
            f"needs at least {floor['total'] / 1e9:.1f} GB per GPU whatever the stage split (the pipeline ranks' "
            f"mean: {parts}) but the {run.node.gpu.name} has {run.node.gpu.memory_text()}; raise "
            "pp/ep/zero, use recomputation or a smaller micro-batch"
        )


def _memory_error(run: RunSpec, memory: dict[str, float]) -> str:
    parts = ", ".join(f"{k} {v / 1e9:.1f}" for k, v in memory.items() if k != "total")
    return (
        f"needs {memory['total'] / 1e9:.1f} GB per GPU ({parts}) but the {run.node.gpu.name} has "
        f"{run.node.gpu.memory_text()}; raise pp/ep/zero, use recomputation or a smaller micro-batch"
    )


def estimate_batches(
    run: RunSpec, profile: KernelRates | str | None, batch_tokens: Sequence[int]
) -> dict[str, np.ndarray]:
    """`estimate`'s figures for `run` at each global batch of `batch_tokens` (each one the run accepts:
    `runspec.batch_error`) in one pass, as arrays: a sweep's batch axis. The stage times and the candidate
    splits do not depend on the batch; which candidate is faster, and so the whole step, does. `reason`
    holds why a batch cannot run ('' when it can: only memory can refuse one here; when every batch is
    refused, `reason` and `microbatches` are all it holds)."""
    profile = rates_for(profile, run.node.gpu)
    batch = np.asarray(batch_tokens, dtype=np.int64)
    n = batch // run.seq_len // (run.dp * run.micro_batch)
    balanced = run.stage_layers is None
    if balanced:
        try:
            _check_floor(run)
        except ValueError as exc:  # refused whatever the batch, as estimate refuses it
            return {"reason": np.full(len(n), str(exc), dtype=object), "microbatches": n}
    candidates = split_candidates(run, profile) if balanced else (tuple(run.stage_layers or ()),)
    if len(set(candidates)) == 1:
        candidates = candidates[:1]
    runs = [run.with_split(c) for c in candidates]
    memory = [memory_per_gpu(r) for r in runs]
    fits = np.array([m["total"] <= run.node.gpu.hbm_bytes for m in memory])
    if not fits.any():  # refused whatever the batch (`estimate`'s message: the split needing least)
        least = min(memory, key=lambda m: m["total"])
        return {"reason": np.full(len(n), _memory_error(run, least), dtype=object), "microbatches": n}
    priced = [step_parts(r, profile, n)[0] for r in runs]
    choice = split_choice(priced) if len(candidates) > 1 else np.zeros(len(n), dtype=int)
    if len(candidates) > 1:  # estimate's rule: the faster candidate if it fits, else the other (which then does)
        choice = np.where(fits[choice], choice, 1 - choice)
    reasons = np.array(["" if ok else _memory_error(r, m) for r, m, ok in zip(runs, memory, fits, strict=True)])
    out: dict[str, np.ndarray] = {f"{k}_s": np.choose(choice, [p[k] for p in priced]) for k in priced[0]}
    step = sum((out[f"{k}_s"] for k in priced[0]), np.zeros(len(n)))
    tokens_per_s = batch / step
    gpu = run.node.gpu
    achieved = train_flops_per_token(run.model, run.seq_len, "exact") * tokens_per_s / run.gpus
    fp8_peak = gpu.peak_flop_per_s("fp8") if gpu.peak_fp8_flop_per_s > 0 else np.nan
    return out | {
        "step_time_s": step,
        "microbatches": n,
        "stage_split": np.array([",".join(map(str, c)) for c in candidates], dtype=object)[choice],
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_gpu": tokens_per_s / run.gpus,
        "mfu_bf16": achieved / gpu.peak_flop_per_s("bf16"),
        "mfu_fp8": achieved / fp8_peak,
        "memory_per_gpu_bytes": np.array([m["total"] for m in memory])[choice],
        "reason": reasons[choice],
    }


def run_inputs(run: RunSpec, profile: KernelRates) -> dict[str, object]:
    """The inputs of a run, as plain values."""
    return {
        "model": run.model.name,
        "gpu": run.node.gpu.name,
        "node": run.node.name,
        "gpus": run.gpus,
        "topology": run.topology,
        "oversubscription": run.oversubscription,
        "ecmp": run.ecmp,
        "tp": run.tp,
        "pp": run.pp,
        "ep": run.ep,
        "cp": run.cp,
        "cp_comm": run.cp_comm,
        "dp": run.dp,
        "zero_stage": run.zero_stage,
        "schedule": run.schedule,
        "virtual_stages": run.virtual_stages,
        "precision": run.precision,
        "fp8_recipe": run.fp8_recipe,
        "recompute": run.recompute,
        "cuda_graphs": run.cuda_graphs,
        "tp_comm": run.tp_comm,
        "ep_comm": run.ep_comm,
        "ep_dispatcher": run.ep_dispatcher,
        "seq_len": run.seq_len,
        "micro_batch": run.micro_batch,
        "global_batch_tokens": run.global_batch_tokens,
        "node_limit": run.node_limit,
        "comm_sms": run.comm_sms,
        "expert_imbalance": run.expert_imbalance,
        "mtp_layers": run.model.num_nextn_predict_layers,
        "tokens": run.tokens,
        "usd_per_gpu_hour": run.usd_per_gpu_hour,
        "profile": profile.name,
    }


_FITS: Memo[dict[str, tuple[str, str]]] = Memo(256)


def _fits_used(
    profile: KernelRates, precision: str, moe: bool, attention: frozenset[str]
) -> dict[str, tuple[str, str]]:
    """The explain rows of the kernel classes a run of this precision uses (`attention`: the classes that price
    its attention), once per rates object. Read-only."""

    def rows() -> dict[str, tuple[str, str]]:
        gemm = "fp8" if precision == "fp8" else "bf16"
        used = {"gemm_bf16", "memory", f"gemm_{gemm}", *attention}
        used |= {f"grouped_gemm_{gemm}"} if moe else set()
        return {
            f"{row['class']} fit": (
                _fit_text(row),
                str(row["derived_from"] or f"{row['samples']} samples: {row['source'] or profile.name}"),
            )
            for row in describe(profile.fits, profile.sources)
            if row["class"] in used
        }

    return _FITS.get((precision, moe, attention), (profile,), rows)


def _attention_classes(run: RunSpec, profile: KernelRates) -> frozenset[str]:
    """The profile classes that price the run's attention (MLA's head shape has its own)."""
    return frozenset(priced_class(op, profile) for op in block_ops(run, run.model.is_moe) if op.kind == "attention")


def _fit_text(row: dict[str, object]) -> str:
    parts = [
        f"{row['tflops']:.0f} TFLOPS" if row["tflops"] else "",
        f"{row['gb_per_s']:.0f} GB/s" if row["gb_per_s"] else "",
    ]
    parts.append(f"{row['overhead_us']:.1f} us")
    parts.append(f"{row['item_ns']:.3g} ns per item" if row.get("item_ns") else "")
    return ", ".join(p for p in parts if p)


def explain(run: RunSpec, profile: KernelRates, r: Report, t: StageTimes, balanced: bool) -> list[dict[str, object]]:
    """For each headline figure: its formula, the inputs that fed it and where each came from."""
    gpu, node = run.node.gpu, run.node
    fabric = fabric_factors(run)

    def src(name: str) -> str:
        return "default: V3 published set-up" if name in run.defaults else "given"

    return [
        {
            "figure": "gpu_hours",
            "value": r.gpu_hours,
            "formula": "tokens / tokens_per_s x gpus / 3600",
            "inputs": {
                "tokens": (run.tokens, src("tokens")),
                "tokens_per_s": (r.tokens_per_s, "this model: global_batch_tokens / step_time_s"),
                "gpus": (run.gpus, src("gpus")),
            },
        },
        {
            "figure": "cost_usd",
            "value": r.cost_usd,
            "formula": "gpu_hours x usd_per_gpu_hour",
            "inputs": {
                "usd_per_gpu_hour": (
                    run.usd_per_gpu_hour,
                    f"{gpu.name} catalog" if run.price_per_gpu_hour is None else src("price_per_gpu_hour"),
                )
            },
        },
        {
            "figure": "step_time_s",
            "value": r.step_time_s,
            "formula": "microbatches x F&B + bubble + DP collectives + optimizer"
            if run.ep_overlapped
            else "microbatches x (F + B) + bubble + DP collectives + optimizer",
            "inputs": {
                "microbatches": (r.microbatches, "global_batch_tokens / seq_len / (dp x micro_batch)"),
                "F, B, W, F&B (s)": (r.chunk_s, "busiest pipeline rank; see compute and EP inputs"),
                "bubble": (r.breakdown["bubble"], f"{run.schedule} formula, simulator/schedules.py"),
                "stage_layers": (r.stage_layers, "balanced by compute time" if balanced else "given"),
            },
        },
        {
            "figure": "compute per micro-batch (F + B)",
            "value": t.f + t.b,
            "formula": "per GEMM / attention / element-wise kernel: max(FLOPs / F, bytes / B) + overhead (profile)",
            "inputs": {
                **_fits_used(profile, run.precision, run.model.is_moe, _attention_classes(run, profile)),
                "profile notes": ("; ".join(profile.notes) or "-", f"profile {profile.name}"),
                "SMs for compute": (
                    gpu.sm_count - (run.comm_sms if run.ep_overlapped else 0),
                    f"{gpu.sm_count} SMs, {run.comm_sms} kept for communication (V3 report)",
                ),
                "peak bf16 / fp8 FLOP/s": ((gpu.peak_flop_per_s("bf16"), gpu.peak_fp8_flop_per_s), gpu.source),
                "host launch wait (s, included)": (
                    t.host_wait,
                    f"kernel launches outlasting the GPU, CUDA graphs {run.cuda_graphs} (host time per op from "
                    "V3's trace: simulator/analytic/host.py)",
                ),
            },
        },
        {
            "figure": "EP dispatch + combine per micro-batch",
            "value": t.ep_f + t.ep_b,
            "formula": "MoE layers x tokens x max(IB bytes / NIC rate x max(1, fabric factor), NVLink bytes / "
            "NVLink rate) x imbalance",
            "inputs": {
                "NIC achieved bytes/s": (node.scaleout_achieved_bw_bytes_per_s_per_gpu, node.nic.source),
                "NVLink achieved bytes/s": (node.scaleup_achieved_bw_bytes_per_s, node.source),
                "node_limit": (run.node_limit, "V3 report: at most 4 nodes per token"),
                "fabric factor (dispatch, combine)": (
                    (fabric.dispatch, fabric.combine),
                    f"busiest switch link / NIC time of every EP group's all-to-all routed on the {run.topology} "
                    f"(oversubscription {run.oversubscription:g}, {run.ecmp} ECMP)",
                ),
                "expert_imbalance": (run.expert_imbalance, "assumed (aux-loss-free balancing)"),
            },
        },
        {
            "figure": "mfu",
            "value": r.mfu,
            "formula": "model FLOPs per token x tokens_per_s_per_gpu / peak",
            "inputs": {"model_flops_per_token": (r.model_flops_per_token, "workloads.flops, causal, MTP included")},
        },
    ]

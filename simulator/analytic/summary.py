"""Workload summaries as plain dicts: what `v3sim model|kv|memory|comm` print and the dashboard shows.

Every number comes from `workloads`; this module only gathers them under
stable JSON keys (SI units: counts, FLOPs, bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from hwmodels.registry import catalog, load_gpu, load_nic, load_node, load_switch
from workloads import comm, flops, memory, params
from workloads.layout import ParallelLayout, check_layout
from workloads.spec import ModelSpec


def model_summary(spec: ModelSpec, seq_len: int = 4096, convention: str = "exact") -> dict[str, Any]:
    """Parameters, FLOPs per token and KV bytes of one model, with per-component breakdowns."""
    flags = flops.convention_flags(convention)
    train = flops.train_flops_breakdown(spec, seq_len, **flags)
    forward = flops.forward_flops_breakdown(spec, seq_len, **flags)
    # Breakdowns include the MTP module (its own row); the headline counts leave it out.
    total = params.param_breakdown(spec, include_mtp=True)
    active = params.param_breakdown(spec, active=True, include_mtp=True)
    return {
        "model": spec.name,
        "source": spec.source,
        "seq_len": seq_len,
        "convention": convention,
        "params_total": sum(total.values()) - total["mtp"],
        "params_active": sum(active.values()) - active["mtp"],
        "params_total_with_mtp": sum(total.values()),
        "params_active_with_mtp": sum(active.values()),
        "train_flops_per_token": sum(train.values()),
        "forward_flops_per_token": sum(forward.values()),
        "kv_bytes_per_token": memory.kv_bytes_per_token(spec, "bf16"),
        "kv_bytes_per_token_fp8": memory.kv_bytes_per_token(spec, "fp8"),
        "breakdown": {
            "params_total": total,
            "params_active": active,
            "train_flops_per_token": train,
            "forward_flops_per_token": forward,
        },
        "architecture": asdict(spec),
    }


def kv_comparison(specs: list[ModelSpec], context: int, batch: int = 1, dtype: str = "bf16") -> list[dict[str, Any]]:
    """KV-cache bytes per token and for `batch` sequences of `context` tokens, per model."""
    if context <= 0 or batch <= 0:
        raise ValueError(f"context={context} and batch={batch} must be positive integers")
    rows = []
    for spec in specs:
        per_token = memory.kv_bytes_per_token(spec, dtype)
        rows.append(
            {
                "model": spec.name,
                "attention": spec.attention,
                "kv_bytes_per_token": per_token,
                "kv_bytes_per_token_per_layer": memory.kv_bytes_per_token_per_layer(spec, dtype),
                "sliding_window": spec.sliding_window,
                "sliding_window_layers": spec.sliding_window_layers,
                "kv_bytes_total": round(per_token * flops.cached_tokens(spec, context) * batch),
                "context": context,
                "batch": batch,
                "dtype": dtype,
            }
        )
    return rows


def memory_summary(
    spec: ModelSpec,
    layout: ParallelLayout,
    seq_len: int,
    training: dict[str, Any],
    inference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Training memory per GPU (worst stage, and every stage); inference weights + KV per GPU if asked."""
    stages = memory.training_memory_by_stage(spec, layout, seq_len, **training)
    worst = max(range(len(stages)), key=lambda s: stages[s]["total"])
    out = {
        "model": spec.name,
        "layout": asdict(layout),
        "gpus": layout.gpus,
        "seq_len": seq_len,
        "training_options": training,
        "training": {**stages[worst], "stage": worst},
        "stages": stages,
    }
    if inference is not None:
        out["inference_options"] = inference
        out["inference"] = memory.inference_memory_per_gpu(spec, layout, **inference)
    return out


def comm_summary(
    spec: ModelSpec,
    layout: ParallelLayout,
    node_limit: int | None = None,
    dispatch_dtype: str = "fp8",
    combine_dtype: str = "bf16",
) -> dict[str, Any]:
    """EP bytes per token and MoE layer, PP bytes per token and boundary, DP bytes per GPU and step."""
    check_layout(spec, layout)
    stages = [memory.stage_params(spec, layout, s, include_mtp=True) for s in range(layout.pp)]
    stage = max(stages, key=lambda p: p["linear"] + p["other"] + p["expert"] / layout.ep)
    ep = (
        comm.ep_bytes_per_token_per_layer(spec, layout, node_limit, dispatch_dtype, combine_dtype)
        if spec.is_moe
        else {}
    )
    return {
        "model": spec.name,
        "layout": asdict(layout),
        "node_limit": node_limit,
        "ep_nodes_per_token": comm.expected_nodes_per_token(spec, layout, node_limit) if spec.is_moe else 0,
        "ep_bytes_per_token_per_moe_layer": ep,
        "pp_bytes_per_token_per_boundary": comm.pp_bytes_per_token(spec),
        "dp_bytes_per_gpu_per_step": comm.dp_gradient_bytes_per_gpu(
            (stage["linear"] + stage["other"]) / layout.tp, stage["expert"] / layout.ep, layout
        ),
    }


def hardware_summary(kind: str, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Catalog entries of one kind (`gpus`, `nics`, `nodes`) as dicts in SI units; all of them by default."""
    loaders: dict[str, Callable[[str], Any]] = {
        "gpus": load_gpu,
        "nics": load_nic,
        "nodes": load_node,
        "switches": load_switch,
    }
    if kind not in loaders:
        raise ValueError(f"unknown hardware kind {kind!r}; use one of {', '.join(loaders)}")
    rows = []
    for name in names or catalog(kind):
        spec = loaders[kind](name)
        row = asdict(spec)
        if kind == "gpus":
            row["scaleup_bw_bytes_per_s"] = spec.scaleup_bw_bytes_per_s
        elif kind == "nics":
            row["bw_bytes_per_s"] = spec.bw_bytes_per_s
        elif kind == "switches":
            row["port_bw_bytes_per_s"] = spec.port_bw_bytes_per_s
        else:
            row["gpu"], row["nic"] = spec.gpu.name, spec.nic.name
            row["scaleout_bw_bytes_per_s_per_gpu"] = spec.scaleout_bw_bytes_per_s_per_gpu
        rows.append(row)
    return rows

"""Sensitivity of GPU-hours to the key inputs: each moved by +-20% alone, ranked (a tornado chart's data)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from simulator.analytic.profile import KernelRates, rates_for
from simulator.analytic.report import estimate
from simulator.analytic.training import resolved
from simulator.runspec import RunSpec

STEP = 0.2


def scale_nic(run: RunSpec, k: float) -> RunSpec:
    nic = run.node.nic
    bw = nic.effective_bw_bytes_per_s * k
    nic = replace(nic, effective_bw_bytes_per_s=bw, line_rate_bits_per_s=max(nic.line_rate_bits_per_s, bw * 8))
    return run.with_(node=replace(run.node, nic=nic))


def scale_nvlink(run: RunSpec, k: float) -> RunSpec:
    gpu = run.node.gpu
    gpu = replace(gpu, scaleup_bw_bytes_per_s_bidir=gpu.scaleup_bw_bytes_per_s_bidir * k)
    return run.with_(node=replace(run.node, gpu=gpu))


def _ep(run: RunSpec, k: float) -> RunSpec:
    """The nearest valid EP degree below (k < 1) or above (k > 1) the current one."""
    experts, limit = run.model.n_routed_experts, run.tp * run.layout.replicas
    valid = [e for e in range(1, experts + 1) if experts % e == 0 and limit % e == 0]
    lower = [e for e in valid if e < run.ep]
    higher = [e for e in valid if e > run.ep]
    pick = (lower[-1] if lower else run.ep) if k < 1 else (higher[0] if higher else run.ep)
    return run.with_(ep=pick)


def sensitivity(run: RunSpec, profile: KernelRates | str | None = None) -> list[dict[str, object]]:
    """Rows of input, low / high value, GPU-hours at each and the change from the base, largest swing first."""
    profile = rates_for(profile, run.node.gpu)
    run = resolved(run, profile)  # the stage split stays put: each row moves one input only
    base = estimate(run, profile, check_memory=False).gpu_hours
    cases = {
        "compute efficiency": (
            lambda k: (run, profile.scaled(k)),
            lambda k: f"x{k:.2f}",
        ),
        "NIC bandwidth": (
            lambda k: (scale_nic(run, k), profile),
            lambda k: f"{run.node.nic.effective_bw_bytes_per_s * k / 1e9:.0f} GB/s",
        ),
        "NVLink bandwidth": (lambda k: (scale_nvlink(run, k), profile), lambda k: f"x{k:.2f}"),
        "EP degree": (lambda k: (_ep(run, k), profile), lambda k: f"ep={_ep(run, k).ep}"),
        "expert imbalance": (
            lambda k: (run.with_(expert_imbalance=max(1.0, run.expert_imbalance * k)), profile),
            lambda k: f"{max(1.0, run.expert_imbalance * k):.2f}",
        ),
        "price per GPU-hour": (
            lambda k: (run.with_(price_per_gpu_hour=run.usd_per_gpu_hour * k), profile),
            lambda k: f"${run.usd_per_gpu_hour * k:.2f}",
        ),
    }
    if run.ep == 1:  # a dense model, or experts all on one GPU: no degree to move and no busiest GPU to load
        del cases["EP degree"], cases["expert imbalance"]
    rows = []
    for name, (make, label) in cases.items():
        row: dict[str, Any] = {"input": name}
        for side, k in (("low", 1 - STEP), ("high", 1 + STEP)):
            r, p = make(k)
            rep = estimate(r, p, check_memory=False)
            metric = rep.cost_usd / run.usd_per_gpu_hour if name == "price per GPU-hour" else rep.gpu_hours
            row[f"{side}_value"] = label(k)
            row[f"{side}_gpu_hours"] = rep.gpu_hours
            row[f"{side}_change"] = metric / base - 1
        row["swing"] = abs(row["high_change"]) + abs(row["low_change"])
        rows.append(row)
    return sorted(rows, key=lambda r: -r["swing"])

"""Hardware co-design: what a training run's step time, cost and memory become when one part of the hardware
changes (the question of Zhao et al., "Insights into DeepSeek-V3: Scaling Challenges and Reflections on
Hardware for AI Architectures", ISCA 2025, arXiv 2505.09343).

A `HardwareWhatIf` multiplies parts of the run's node: every dtype's peak FLOP/s (the kernel profile's achieved
rates follow, as `simulator.analytic.profile.apply_profile` scales a profile measured on one GPU to another's
peaks), HBM capacity and bandwidth, the scale-up (NVLink) domain's size and bandwidth, and the NICs' bandwidth
(the sensitivity probes' `scale_nic` / `scale_nvlink`); it may also change the topology and its oversubscription. The
run's layout, batch, price per GPU-hour and switches stay as they are (a what-if, not a new design): a run
that no longer fits or no longer divides is a row that says why, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from hwmodels.cost import topology_metrics
from hwmodels.files import is_finite_number
from hwmodels.registry import load_switch
from hwmodels.specs import DTYPES, MAX_COUNTS, GPUSpec, NodeSpec
from hwmodels.topology import KINDS
from simulator import limits
from simulator.analytic.fabric import SWITCH, fabric_factors
from simulator.analytic.profile import KernelRates, rates_for
from simulator.analytic.report import estimate
from simulator.analytic.training import BREAKDOWN_KEYS
from simulator.explore.sensitivity import scale_nic, scale_nvlink
from simulator.runspec import RunSpec

MAX_MULTIPLIER = 100.0  # a what-if beyond 100x any part is no longer a what-if about this hardware
KNOB_MULTIPLIERS = (0.5, 1.0, 2.0, 4.0)
# The multiplier fields, in the order the page shows them, with their names in words.
KNOBS = {
    "compute_x": "FLOP/s",
    "hbm_bw_x": "HBM bandwidth",
    "hbm_capacity_x": "HBM capacity",
    "scaleup_size_x": "NVLink domain size",
    "scaleup_bw_x": "NVLink bandwidth",
    "nic_bw_x": "NIC bandwidth",
}
WHAT_IF_SUFFIX = " (what-if)"  # a changed GPU's name: its kernel rates are then scaled from the catalog GPU's


@dataclass(frozen=True, slots=True)
class HardwareWhatIf:
    """Multipliers on the run's node (1: as catalogued), and a topology kind / oversubscription (None: the run's)."""

    compute_x: float = 1.0  # every dtype's peak FLOP/s, and the profile's achieved GEMM and attention rates
    hbm_capacity_x: float = 1.0
    hbm_bw_x: float = 1.0  # HBM datasheet bandwidth: element-wise kernels, the profile's memory-bound rates
    scaleup_size_x: float = 1.0  # GPUs per NVLink domain (the node), NICs per GPU unchanged
    scaleup_bw_x: float = 1.0
    nic_bw_x: float = 1.0  # the NICs' achieved rate (switch ports stay the fabric model's 400 Gb/s)
    topology: str | None = None
    oversubscription: float | None = None

    def __post_init__(self) -> None:
        for name in KNOBS:
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not is_finite_number(value):
                raise ValueError(f"{name}={value!r} must be a finite number (1: the hardware as catalogued)")
            if not 0 < value <= MAX_MULTIPLIER:
                raise ValueError(f"{name}={value:g} must be above 0 and at most {MAX_MULTIPLIER:g} (1: unchanged)")
        if self.topology is not None and self.topology not in KINDS:
            raise ValueError(f"topology={self.topology!r}; use one of {', '.join(KINDS)} (or None: the run's)")
        over = self.oversubscription
        if over is not None:
            if not isinstance(over, int | float) or isinstance(over, bool) or not is_finite_number(over):
                raise ValueError(f"oversubscription={over!r} must be a finite number (1: no taper)")
            if not 1 <= over <= limits.MAX_OVERSUBSCRIPTION:
                raise ValueError(f"oversubscription={over:g} must be from 1 to {limits.MAX_OVERSUBSCRIPTION}")

    @property
    def is_identity(self) -> bool:
        """Whether it changes nothing (every multiplier 1, the run's own topology)."""
        return self == HardwareWhatIf()

    def with_knob(self, knob: str, multiplier: float) -> HardwareWhatIf:
        """A copy with `knob`'s multiplier times `multiplier` (validated again)."""
        if knob not in KNOBS:
            raise ValueError(f"unknown knob {knob!r}; use one of {', '.join(KNOBS)}")
        return replace(self, **{knob: getattr(self, knob) * multiplier})


def domain_gpus(node: NodeSpec, whatif: HardwareWhatIf) -> int:
    """GPUs per NVLink domain under `whatif`; a ValueError naming the fix when the multiplier does not give a
    whole number of GPUs and NICs."""
    gpus, nics = (node.gpus_per_node * whatif.scaleup_size_x, node.nics_per_node * whatif.scaleup_size_x)
    whole = round(gpus)
    if abs(gpus - whole) > 1e-9 or abs(nics - round(nics)) > 1e-9 or whole < 1:
        raise ValueError(
            f"scaleup_size_x={whatif.scaleup_size_x:g} gives {gpus:g} GPUs per NVLink domain on {node.name} "
            f"({node.gpus_per_node} GPUs, {node.nics_per_node} NICs); use a multiplier that gives whole GPUs and NICs"
        )
    if whole > MAX_COUNTS["gpus_per_node"]:
        raise ValueError(f"scaleup_size_x={whatif.scaleup_size_x:g} gives {whole:,} GPUs per domain; at most "
                         f"{MAX_COUNTS['gpus_per_node']:,}")  # fmt: skip
    return whole


def _gpu(gpu: GPUSpec, whatif: HardwareWhatIf) -> GPUSpec:
    """The GPU with its peaks and HBM scaled, renamed so that a profile measured on the catalog GPU is applied
    to it as the same fractions of its (new) peaks (`apply_profile`), not as it stands."""
    if (whatif.compute_x, whatif.hbm_capacity_x, whatif.hbm_bw_x) == (1.0, 1.0, 1.0):
        return gpu
    peaks = {f"peak_{d}_flop_per_s": getattr(gpu, f"peak_{d}_flop_per_s") * whatif.compute_x for d in DTYPES}
    return replace(
        gpu,
        name=gpu.name + WHAT_IF_SUFFIX,
        hbm_bytes=gpu.hbm_bytes * whatif.hbm_capacity_x,
        hbm_datasheet_bytes=gpu.hbm_datasheet_bytes * whatif.hbm_capacity_x,
        hbm_bw_bytes_per_s=gpu.hbm_bw_bytes_per_s * whatif.hbm_bw_x,
        **peaks,
    )


def apply_whatif(run: RunSpec, whatif: HardwareWhatIf) -> RunSpec:
    """`run` on the what-if hardware: a ValueError (RunSpec's own message) if that run cannot be laid out."""
    if whatif.is_identity:
        return run
    node = run.node
    domain = domain_gpus(node, whatif)
    nics = round(node.nics_per_node * whatif.scaleup_size_x)
    # the NVLink domain keeps its ratio to the node (one node per domain in every catalog node)
    scaleup = max(1, round(node.scaleup_domain_gpus * whatif.scaleup_size_x))
    node = replace(node, gpu=_gpu(node.gpu, whatif), gpus_per_node=domain, scaleup_domain_gpus=scaleup,
                   nics_per_node=nics)  # fmt: skip
    changes: dict[str, Any] = {"node": node}
    if whatif.topology is not None:
        changes["topology"] = whatif.topology
    if whatif.oversubscription is not None:
        changes["oversubscription"] = float(whatif.oversubscription)
    out = run.with_(**changes)
    if whatif.nic_bw_x != 1:
        out = scale_nic(out, whatif.nic_bw_x)
    if whatif.scaleup_bw_x != 1:
        out = scale_nvlink(out, whatif.scaleup_bw_x)
    return out


def network_cost(run: RunSpec) -> tuple[float, float]:
    """(USD, USD per GPU) of the run's scale-out network: switches and switch-to-switch links at the fabric
    model's switch (`hwmodels.cost`, as the Topology explorer prices it)."""
    cost = topology_metrics(run.topology_spec, load_switch(SWITCH))["cost_usd"]
    return cost, cost / run.gpus


def evaluate(run: RunSpec, whatif: HardwareWhatIf = HardwareWhatIf(), profile: str | None = None) -> dict[str, Any]:
    """One what-if's row: step time and its parts (s), GPU-hours, cost (USD, at the run's price per GPU-hour),
    the network's cost, memory per GPU against the what-if's HBM, `hbm_needed_x` (the HBM multiplier on the
    catalog GPU's capacity that the memory needs) and `ep_switch_factor` (the expert all-to-all's busiest switch
    link over its NICs: above 1, the switches limit it, `simulator.analytic.fabric`). A run that cannot be laid
    out or does not fit has `fits` False, NaN times and its `reason`; `whatif` itself must suit the node
    (`domain_gpus`)."""
    if profile is not None and not isinstance(profile, str):
        raise ValueError("give the kernel profile by name (published, sol, measured or a file): its rates are scaled")
    row: dict[str, Any] = {name: getattr(whatif, name) for name in KNOBS}
    row |= {"step_time_s": math.nan, "gpu_hours": math.nan, "cost_usd": math.nan, "days": math.nan}
    row |= {f"{k}_s": math.nan for k in BREAKDOWN_KEYS}
    row |= {"memory_per_gpu_bytes": math.nan, "hbm_bytes": run.node.gpu.hbm_bytes * whatif.hbm_capacity_x}
    row |= {"hbm_needed_x": math.nan, "network_cost_usd": math.nan, "network_usd_per_gpu": math.nan}
    row |= {"ep_switch_factor": math.nan, "fits": False, "reason": ""}
    row |= {"topology": whatif.topology or run.topology, "gpus_per_domain": domain_gpus(run.node, whatif)}
    row["oversubscription"] = run.oversubscription if whatif.oversubscription is None else whatif.oversubscription
    try:
        changed = apply_whatif(run, whatif)
        row["network_cost_usd"], row["network_usd_per_gpu"] = network_cost(changed)
        factors = fabric_factors(changed)
        row["ep_switch_factor"] = max(factors.dispatch, factors.combine)  # above 1: switch ports, not NICs, limit
        rates = rates_for(profile, changed.node.gpu)
        report = estimate(changed, rates, check_memory=False)
    except ValueError as exc:
        return row | {"reason": str(exc)}
    memory = report.memory_per_gpu_bytes["total"]
    row |= {"memory_per_gpu_bytes": memory, "hbm_needed_x": memory / run.node.gpu.hbm_bytes}
    if memory > changed.node.gpu.hbm_bytes:
        return row | {"reason": _memory_reason(changed, rates, memory)}
    row |= {"step_time_s": report.step_time_s, "gpu_hours": report.gpu_hours, "cost_usd": report.cost_usd}
    row |= {f"{k}_s": report.breakdown[k] for k in BREAKDOWN_KEYS}
    return row | {"days": report.days, "fits": True}


def _memory_reason(run: RunSpec, rates: KernelRates, memory_bytes: float) -> str:
    """Why `run` does not fit: `estimate`'s message (what the memory is made of, and what to change)."""
    try:
        estimate(run, rates)
    except ValueError as exc:
        return str(exc)
    gpu = run.node.gpu
    return f"needs {memory_bytes / 1e9:.1f} GB per GPU but the {gpu.name} has {gpu.memory_text()}"


def knob_table(
    run: RunSpec,
    base: HardwareWhatIf = HardwareWhatIf(),
    multipliers: tuple[float, ...] = KNOB_MULTIPLIERS,
    profile: str | None = None,
) -> list[dict[str, Any]]:
    """One knob at a time from `base`: for each knob and multiplier m, `evaluate` of `base` with that knob times
    m, with `knob`, `multiplier` (m) and `change` (step time over `base`'s, less 1; NaN where either does not
    run). A multiplier that takes a knob past its bounds or off whole GPUs is a row with that reason."""
    reference = evaluate(run, base, profile)
    rows = []
    for knob in KNOBS:
        for m in multipliers:
            try:
                whatif = base.with_knob(knob, m)
                domain_gpus(run.node, whatif)
            except ValueError as exc:
                row = {**{k: getattr(base, k) for k in KNOBS}, "step_time_s": math.nan, "gpu_hours": math.nan,
                       "cost_usd": math.nan, "fits": False, "reason": str(exc)}  # fmt: skip
            else:
                row = reference if m == 1 else evaluate(run, whatif, profile)
            change = row["step_time_s"] / reference["step_time_s"] - 1
            rows.append({"knob": knob, "label": KNOBS[knob], "multiplier": m, **row, "change": change})
    return rows


def ranked_knobs(table: list[dict[str, Any]], multiplier: float = 2.0) -> list[dict[str, Any]]:
    """The rows of `knob_table` at `multiplier`, the largest cut in step time first (rows that do not run last)."""
    rows = [r for r in table if r["multiplier"] == multiplier]
    return sorted(rows, key=lambda r: (math.isnan(r["change"]), r["change"] if not math.isnan(r["change"]) else 0))


def topology_table(
    run: RunSpec, base: HardwareWhatIf = HardwareWhatIf(), profile: str | None = None
) -> list[dict[str, Any]]:
    """`evaluate` of `base` on each topology kind at 1:1 and at `base`'s oversubscription (where the kind takes
    one): step time against the network's cost per GPU."""
    over = base.oversubscription if base.oversubscription is not None else run.oversubscription
    rows = []
    for kind in KINDS:
        for o in sorted({1.0, float(over)}):
            row = evaluate(run, replace(base, topology=kind, oversubscription=o), profile)
            rows.append({"kind": kind, **row})
    return rows

"""Hold a profiler trace against the operation list, op class by op class (`v3sim compare-trace`).

A PyTorch-profiler / Chrome trace (DeepSeek publishes V3's: deepseek-ai/profile-data) lists every GPU kernel
with its duration. Each kernel's name is mapped to an op class by the first matching pattern of `CLASSES`;
the trace's seconds per class are set beside what v3sim prices for the same work: `layers` MoE layers, one
micro-batch forward and one backward (the trace's DualPipe chunk pair), every op of the list priced as the
training model prices it (on the SMs left beside the all-to-all), dispatch and combine at the links' rates.
Kernels that match no class are reported as `other`, never dropped.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from hwmodels.files import MAX_PROFILE_BYTES, loads_json, read_text
from hwmodels.kernels import elementwise_rates
from hwmodels.profile import Profile, RateCaps
from simulator.analytic.epcomm import compute_sm_share, ep_link_s
from simulator.analytic.pricing import op_s, priced_class
from simulator.analytic.profile import KernelRates, apply_profile
from simulator.analytic.training import block_ops, tokens_per_gpu
from simulator.runspec import RunSpec
from workloads.activations import recomputed
from workloads.ops import Op, ep_ops

# (class, pattern on the kernel name), first match wins. Classes are v3sim's: a compute op's profile class
# (`workloads.ops.Op.profile_class`), an element-wise kernel's own class, the EP ops.
CLASSES: tuple[tuple[str, str], ...] = (
    ("gemm_wgrad_fp8", r"dptp128c_acc|wgrad"),
    ("grouped_gemm_fp8", r"m_grouped_fp8"),
    ("gemm_fp8", r"fp8_ptp128c|fp8.*gemm|gemm.*fp8"),
    ("gemm_bf16", r"xmma_gemm_bf16|gemm.*bf16|bf16.*gemm|cutlass.*Gemm"),
    ("attention_fwd_bf16", r"compute_attn|FlashAttnFwd|flash_fwd"),
    ("attention_bwd_bf16", r"FlashAttnBwd|flash_bwd"),
    ("ep_notify", r"notify|get_dispatch_layout|clean_and_count"),
    ("ep_dispatch", r"ep::.*dispatch"),
    ("ep_combine", r"ep::.*combine"),
    ("cast_transpose", r"cast_and_transpose|batched_transpose|utils::transpose"),
    ("permute", r"expand_to_fused|fused_mapping|permute"),  # tokens into expert order, with their scales
    ("dequant", r"cast_back"),  # fp8 -> bf16 after the dispatch
    ("cast", r"cast_to_fp8|cast"),
    ("norm_backward", r"ln_bwd|norm_bwd|norm_backward|norm_grad|GammaBetaBackward"),
    ("norm", r"layer_norm|rms_?norm|ln_fwd"),
    ("swiglu", r"swiglu"),
    ("combine", r"reduce_fused|topk_sum"),
    ("copy", r"elementwise|copy|rotary|reduce_kernel|gather|scatter|topk|memset|fill"),
)
_PATTERNS = [(cls, re.compile(pattern, re.I)) for cls, pattern in CLASSES]
# A trace's attention kernels, held against the classes of MLA's head shape where v3sim prices those.
MLA_CLASSES = {"attention_fwd_bf16": "attention_fwd_mla_bf16", "attention_bwd_bf16": "attention_bwd_mla_bf16"}
COMM = ("ep_dispatch", "ep_combine", "ep_notify")


def classify(name: str) -> str:
    """The op class of a kernel name (`other` when no pattern matches)."""
    return next((cls for cls, pattern in _PATTERNS if pattern.search(name)), "other")


def trace_events(path: str | Path) -> list[dict[str, Any]]:
    """The complete ("X") events of a PyTorch-profiler / Chrome-trace JSON file that have a name and a finite,
    non-negative start and duration (microseconds); anything else is skipped."""
    data = loads_json(read_text(path, "trace", MAX_PROFILE_BYTES), str(path))
    events = data.get("traceEvents") if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise ValueError(f"{path}: no traceEvents list; give a PyTorch profiler or Chrome trace JSON file")
    out = []
    for e in events:
        if isinstance(e, dict) and e.get("ph") == "X" and isinstance(e.get("name"), str):
            ts, dur = e.get("ts"), e.get("dur")
            if all(isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x < 1e18 for x in (ts, dur)):
                out.append(e)
    return out


def trace_kernels(path: str | Path) -> list[tuple[str, float]]:
    """(name, seconds) of every GPU kernel in a Chrome-trace JSON file (events of category `kernel`)."""
    out = [(e["name"], e["dur"] / 1e6) for e in trace_events(path) if e.get("cat") == "kernel"]
    if not out:
        raise ValueError(f"{path}: no GPU kernel events (cat 'kernel'); profile with CUDA activities on")
    return out


def trace_table(kernels: list[tuple[str, float]]) -> dict[str, tuple[float, int]]:
    """Seconds and kernel count per class."""
    table: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for name, seconds in kernels:
        row = table[classify(name)]
        row[0] += seconds
        row[1] += 1
    return {cls: (row[0], int(row[1])) for cls, row in table.items()}


def _op_class(op: Op, rates: KernelRates) -> str:
    """The class a priced op is compared in: the profile class that priced it, an element-wise kernel's own."""
    return op.component if op.kind == "elementwise" else priced_class(op, rates)


def _ops_run(run: RunSpec) -> list[Op]:
    """One MoE layer's ops as the training model runs them: each once, and again those recomputation runs in the
    backward (`workloads.activations.recomputed`)."""
    ops = list(block_ops(run, True))
    return ops + recomputed(ops, run.recompute, run.model.attention == "mla")


def model_table(run: RunSpec, rates: KernelRates, layers: int = 4) -> dict[str, float]:
    """v3sim's seconds per class for `layers` MoE layers, one micro-batch forward and one backward, priced as
    the training model prices them."""
    table: dict[str, float] = defaultdict(float)
    hbm, share = run.node.gpu.hbm_bw_bytes_per_s, compute_sm_share(run)
    for op in _ops_run(run):
        table[_op_class(op, rates)] += layers * op_s(op, rates, share, 1.0, hbm)
    phases = ("forward", "backward_input")
    for op in ep_ops(
        run.model, run.layout, tokens_per_gpu(run), phases, run.node_limit, run.precision, run.ep_dispatcher
    ):
        table[f"ep_{op.kind}"] += layers * ep_link_s(run, op)
    return dict(table)


def compare_trace(path: str | Path, run: RunSpec, rates: KernelRates, layers: int = 4) -> dict[str, Any]:
    """The trace and v3sim side by side, class by class, with signed errors (v3sim / trace - 1)."""
    kernels = trace_kernels(path)
    traced, modelled = trace_table(kernels), model_table(run, rates, layers)
    for base, cls in MLA_CLASSES.items():  # the trace's attention kernels are the MLA-shaped ones v3sim priced
        if cls in modelled and base in traced:
            traced[cls] = traced.pop(base)
    rows = []
    named = [c for c, _ in CLASSES] + ["other"]
    for cls in named + sorted(set(modelled) - set(named)):  # a class v3sim prices that no pattern names too
        trace_s, calls = traced.get(cls, (0.0, 0))
        model_s = modelled.get(cls, 0.0)
        if not trace_s and not model_s:
            continue
        error = model_s / trace_s - 1 if trace_s else None
        rows.append({"class": cls, "trace_s": trace_s, "kernels": calls, "v3sim_s": model_s, "rel_error": error,
                     "stream": "comm" if cls in COMM else "compute"})  # fmt: skip
    compute = [r for r in rows if r["stream"] == "compute"]
    return {
        "trace": str(path),
        "profile": rates.name,
        "layers": layers,
        "kernels": len(kernels),
        "rows": rows,
        "compute_trace_s": sum(r["trace_s"] for r in compute),
        "compute_v3sim_s": sum(r["v3sim_s"] for r in compute),
    }


def trace_profile(path: str | Path, run: RunSpec, base: Profile, layers: int = 4) -> Profile:
    """A profile whose rates are the trace's (`v3sim calibrate trace`): each compute class of `base` sped up or
    slowed down by v3sim's / the trace's seconds for that class on `run`'s operation list, each element-wise
    class's share of the HBM datasheet likewise (held to the datasheet). Kernel-level: every class from its own
    kernels' time, none from a step time; a run this trace came from is in sample under it. Classes the trace
    does not hold keep `base`'s rates; its link kernels (dispatch, combine, notify) are reported, not taken."""
    gpu = run.node.gpu
    rates = replace(apply_profile(base, gpu), gemm_tables={})  # the fits it scales, not the GEMMs timed by shape
    compared = compare_trace(path, run, rates, layers)
    table = elementwise_rates().share
    moved: dict[str, tuple[float, int]] = {}  # element-wise class -> v3sim's bytes and kernels in those layers
    for op in _ops_run(run):
        if op.kind == "elementwise":
            nbytes, count = moved.get(op.component, (0.0, 0))
            moved[op.component] = (nbytes + layers * op.hbm_bytes, count + layers)
    fits, shares, notes = dict(base.fits), {}, []
    for row in compared["rows"]:
        cls, trace_s, model_s = row["class"], row["trace_s"], row["v3sim_s"]
        if not (trace_s and model_s) or row["stream"] != "compute":
            if trace_s and cls != "other":
                notes.append(f"{cls}: {trace_s * 1e3:.2f} ms in the trace, not priced from it")
            continue
        k = model_s / trace_s  # > 1: the trace ran this class faster than `base` prices it
        if cls in fits:
            f = fits[cls]
            scaled = replace(f.scaled(k, k, f"trace: {k:.3f} x {base.name}"), overhead_s=f.overhead_s / k)
            fits[cls] = scaled.within(RateCaps.of(gpu, cls))  # no rate above the datasheet
        elif cls in table:  # the share that prices v3sim's bytes of this class, with its fixed costs, at trace_s
            nbytes, count = moved.get(cls, (0.0, 0))
            left_s = trace_s - count * elementwise_rates().fixed_s(gpu.die)
            share = nbytes / (gpu.hbm_bw_bytes_per_s * left_s) if left_s > 0 else math.inf
            shares[cls] = min(1.0, share)
            if share > 1:
                notes.append(f"{cls}: the trace's rate is above the HBM datasheet; held at it")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    return Profile(
        name=f"trace-{Path(path).stem}",
        kind="measured",
        device=base.device,
        catalog_gpu=base.catalog_gpu,
        fits=fits,
        source=(
            f"profiler trace {Path(path).name} (sha256 {digest}), {compared['kernels']} kernels, held against "
            f"v3sim's operation list for {run.model.name} ep{run.ep} tp{run.tp} seq {run.seq_len}, {layers} "
            f"layers forward + backward, priced by {base.name}"
        ),
        created=date.today().isoformat(),
        notes=(
            "Each class's rates are base x (v3sim's seconds / the trace's seconds) for the same operations: the "
            "trace is the source of every class it holds; a run the trace came from is in sample under this "
            "profile.",
            *notes,
        ),
        elementwise_share=shares,
    )

"""Fit kernel samples to the smooth roofline of hwmodels.profile, and build profiles.

Per kernel class the fit is a non-negative least-squares solve (scipy's
`nnls`) of time_s = flops * a + bytes * b + c over the samples, each row
divided by its measured time so that every sample weighs by its relative
error (a 10 us kernel counts as much as a 10 ms one). Terms the samples
cannot determine (too few samples) are left out rather than guessed. Classes
a profile has no samples for are derived from a sibling class and say so.
"""

from __future__ import annotations

import math
import tomllib
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from hwmodels.files import read_text
from hwmodels.profile import KernelFit, Profile, Sample
from hwmodels.registry import load_gpu
from workloads.dtypes import dtype_bytes
from workloads.gemms import gemm_bytes

PUBLISHED_DIR = Path(__file__).parent / "data" / "published"
# Where a class with no samples borrows its fit: (from class, FLOP ratio by peaks "dtype/dtype" or 1).
DERIVATIONS = {
    "gemm_bf16": ("gemm_fp8", ("bf16", "fp8")),
    "grouped_gemm_fp8": ("gemm_fp8", None),
    "grouped_gemm_bf16": ("gemm_bf16", None),
    "attention_bwd_bf16": ("attention_fwd_bf16", None),
}
TERA, GIGA = 1e12, 1e9


def fit_kernel(samples: list[Sample]) -> KernelFit:
    """The smooth-roofline fit of one kernel class's samples."""
    if not samples:
        raise ValueError("no samples to fit")
    flops = np.array([s.flops for s in samples], dtype=float)
    nbytes = np.array([s.bytes for s in samples], dtype=float)
    t = np.array([s.time_s for s in samples], dtype=float)
    columns = {"flops": flops, "bytes": nbytes, "overhead": np.ones_like(t)}
    if not flops.any():
        del columns["flops"]
    if not nbytes.any():
        del columns["bytes"]
    # A term needs samples that can tell it apart: fewer samples than terms keeps the leading one only.
    if len(samples) < len(columns):
        lead = "flops" if "flops" in columns else "bytes"
        columns = {lead: columns[lead]}
    names = list(columns)
    a = np.column_stack([columns[n] for n in names]) / t[:, None]
    coef, _ = nnls(a, np.ones_like(t))
    values = dict(zip(names, coef, strict=True))
    if not any(values.get(n, 0) > 0 for n in ("flops", "bytes")):
        # Only the overhead fitted (flat timings): keep a rate term so the fit still scales with work.
        lead = "flops" if "flops" in columns else "bytes"
        values = {lead: float(np.median(t / columns[lead]))}
    pred = sum(columns[n] * values.get(n, 0.0) for n in names)
    rel = pred / t - 1
    return KernelFit(
        flop_per_s=1 / values["flops"] if values.get("flops", 0) > 0 else math.inf,
        bytes_per_s=1 / values["bytes"] if values.get("bytes", 0) > 0 else math.inf,
        overhead_s=float(values.get("overhead", 0.0)),
        samples=len(samples),
        rel_rmse=float(np.sqrt(np.mean(rel**2))),
    )


def fit_classes(samples: list[Sample]) -> dict[str, KernelFit]:
    """One fit per kernel class present in `samples`."""
    by_class: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_class[s.kernel_class].append(s)
    return {cls: fit_kernel(group) for cls, group in sorted(by_class.items())}


def derive_missing(fits: dict[str, KernelFit], catalog_gpu: str | None) -> tuple[dict[str, KernelFit], list[str]]:
    """Fill classes with no samples from DERIVATIONS; returns the fits and a note per derived class."""
    out, notes = dict(fits), []
    gpu = load_gpu(catalog_gpu) if catalog_gpu else None
    for cls, (src, peaks) in DERIVATIONS.items():
        if cls in out or src not in out:
            continue
        ratio, how = 1.0, f"{src} fit"
        if peaks:
            if gpu is None:
                continue  # no peaks to scale by: leave the class absent
            ratio = gpu.peak_flop_per_s(peaks[0]) / gpu.peak_flop_per_s(peaks[1])
            how = f"{src} fit x {peaks[0]}/{peaks[1]} peak ratio {ratio:.2f} (ASSUMED: same fraction of peak)"
        out[cls] = out[src].scaled(ratio, 1.0, note=how)
        notes.append(f"{cls}: no samples; derived from the {how}")
    return out, notes


def build_profile(
    samples: list[Sample],
    name: str,
    kind: str,
    device: str,
    catalog_gpu: str | None,
    source: str = "",
    notes: tuple[str, ...] = (),
    **meta: str,
) -> Profile:
    """Fit every class of `samples`, derive the missing ones, and wrap it all as a Profile."""
    fits, derived = derive_missing(fit_classes(samples), catalog_gpu)
    return Profile(
        name=name,
        kind=kind,
        device=device,
        catalog_gpu=catalog_gpu,
        fits=fits,
        samples=tuple(samples),
        source=source,
        created=meta.pop("created", date.today().isoformat()),
        notes=(*notes, *derived),
        **meta,
    )


def samples_from_series(series: dict) -> list[Sample]:
    """Samples from one published table: rows of shapes and the achieved TFLOPS or GB/s.

    A published figure gives a rate, not a time; the time is the rate's
    FLOPs (or bytes) divided by it, with the bytes a GEMM must move at least.
    """
    kernel, dtype, source = series["kernel"], series["dtype"], series["source"]
    cols = series["columns"]
    out = []
    for row in series["rows"]:
        if len(row) != len(cols):
            raise ValueError(f"{source}: row {row} does not match columns {cols}")
        r = dict(zip(cols, row, strict=True))
        if kernel == "memory":
            nbytes = r.get("bytes", 1e9)
            out.append(Sample("memory", dtype, 0.0, nbytes, nbytes / (r["gb_per_s"] * GIGA), source=source))
            continue
        if kernel.startswith("attention"):
            flops, nbytes, shape = _attention_counts(kernel, r), _attention_bytes(r, dtype), {}
        else:
            m, n, k, g = r["m"], r["n"], r["k"], r.get("groups", 1)
            flops = 2.0 * m * n * k * g
            nbytes = gemm_bytes(m, n, k, g, dtype_bytes(dtype), dtype_bytes("bf16"))
            shape = {"m": m, "n": n, "k": k, "groups": g}
        out.append(Sample(kernel, dtype, flops, nbytes, flops / (r["tflops"] * TERA), source=source, **shape))
    return out


def _attention_counts(kernel: str, r: dict) -> float:
    """FlashAttention's FLOP convention: 4*b*h*s_q*s_k*d forward (half with a causal mask), 2.5x backward."""
    fwd = 2.0 * r["batch"] * r["heads"] * r["seq_q"] * r["seq_k"] * (r["qk_dim"] + r["v_dim"])
    fwd *= 0.5 if r.get("causal", 0) else 1.0
    return fwd * (2.5 if kernel == "attention_bwd" else 1.0)


def _attention_bytes(r: dict, dtype: str) -> float:
    """Q, K, V read and O written once."""
    b, h, hk = r["batch"], r["heads"], r.get("kv_heads", r["heads"])
    elems = b * h * r["seq_q"] * (r["qk_dim"] + r["v_dim"]) + b * hk * r["seq_k"] * (r["qk_dim"] + r["v_dim"])
    return elems * dtype_bytes(dtype)


def published_profile(path: str | Path) -> Profile:
    """Build a published profile from a TOML file of kernel-benchmark tables (calibration/data/published)."""
    path = Path(path)
    try:
        data = tomllib.loads(read_text(path, "published table"))
        samples = [s for series in data["series"] for s in samples_from_series(series)]
        return build_profile(
            samples,
            name=data["name"],
            kind="published",
            device=data["device"],
            catalog_gpu=data.get("catalog_gpu"),
            source=data.get("source", ""),
            notes=tuple(data.get("notes", [])),
            created=data.get("created", ""),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed published table ({exc})") from None

"""Fit kernel samples to the roofline of hwmodels.profile, and build profiles.

Per kernel class the fit is a bounded least-squares solve (scipy's
`least_squares`) of time_s = max(flops / F, bytes / B) + overhead over the
samples (plus items x a cost per item where the samples count pieces of work:
decode attention's (sequence, KV head) pairs, a timed attention's scores),
each residual relative to its measured time so that every sample
weighs by its relative error (a 10 us kernel counts as much as a 10 ms one).
F and B are bounded by the datasheet of the GPU the samples were timed on
(its dense peak for the dtype, its HBM bandwidth), so no fitted rate is one
the hardware cannot reach; a device outside the catalog (a CPU) has no
datasheet and is left unbounded. A rate that limits no sample is not
determined by them: it sits at the datasheet, or is left out where there is
none. Classes a profile has no samples for are derived from a sibling class
and say so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares, nnls

from calibration.moeops import moe_sample
from hwmodels.files import clean_text, is_finite_number, loads_toml, read_text
from hwmodels.profile import (
    DTYPES,
    KERNELS,
    MAX_FIT_RMSE,
    STAND_INS,
    KernelFit,
    Profile,
    RateCaps,
    Sample,
    check_fields,
    class_dtype,
    kernel_class,
    peak_ratios,
)
from hwmodels.registry import catalog, load_gpu
from workloads.dtypes import dtype_bytes
from workloads.flops import attended_keys, window_tile_factor
from workloads.gemms import gemm_bytes
from workloads.servingops import decode_attention_op
from workloads.spec import ModelSpec

PUBLISHED_DIR = Path(__file__).parent / "data" / "published"
# Where a class with no samples borrows its fit: (from class, FLOP ratio by peaks "dtype/dtype" or 1).
DERIVATIONS = {
    "gemm_bf16": ("gemm_fp8", ("bf16", "fp8")),
    "grouped_gemm_fp8": ("gemm_fp8", None),
    "grouped_gemm_bf16": ("gemm_bf16", None),
    "gemm_wgrad_fp8": ("gemm_fp8", None),
    "attention_bwd_bf16": ("attention_fwd_bf16", None),
    # an FP8 cache's MLA decode where only the bf16 cache's kernel was timed: its rates (the FP8 cache's halved
    # reads priced at them), not those of another kernel's bf16 GQA decode (ASSUMED: the same kernel's rates)
    "attention_decode_mla_fp8": ("attention_decode_mla_bf16", None),
    **{cls: (src, None) for cls, src in STAND_INS.items()},
}
UNBOUNDED = RateCaps()  # a device outside the catalog: no datasheet to bound its fits by
DERIVED_NOTE = ": no samples; derived from the "  # the note a derived class adds to its profile
TERA, GIGA = 1e12, 1e9


def fit_kernel(samples: list[Sample], caps: RateCaps = UNBOUNDED) -> KernelFit:
    """The roofline fit of one kernel class's samples, its rates within `caps`; where the samples count pieces
    of work (`Sample.items`), a cost per piece beside the overhead.

    Each rate is solved as a multiple of the best rate a sample achieved (1: that rate, so every variable is
    near 1), from three starts (the best achieved rates, the caps, the additive fit's), keeping the best.
    """
    if not samples:
        raise ValueError("no samples to fit")
    t = np.array([s.time_s for s in samples], dtype=float)
    work = {"flops": np.array([s.flops for s in samples], float), "bytes": np.array([s.bytes for s in samples], float)}
    items = np.array([s.items for s in samples], dtype=float)
    cap = {"flops": caps.flop_per_s, "bytes": caps.bytes_per_s}
    terms = [n for n in ("flops", "bytes") if work[n].any()]
    best = {n: float(np.max(work[n] / t)) for n in terms}  # the fastest achieved rates
    # Per sample, each term's time at the best rate, the pieces' at the shortest time per piece and the
    # overhead's at the shortest time, over the time.
    counted = items > 0
    item_ref = float(np.min(t[counted] / items[counted])) if counted.any() else 0.0
    additive = ([items * item_ref / t] if item_ref else []) + [t.min() / t]
    cols = np.array([work[n] / best[n] / t for n in terms] + additive)
    lower = np.array([best[n] / cap[n] for n in terms] + [0.0] * len(additive))  # a multiple at its bound: the cap
    # A term needs samples that can tell it apart. A rate whose work is the same in every sample is one more
    # constant, not told from the overhead: it stays at its bound. As many samples as varying terms fits them
    # with no overhead; fewer, or no work that varies, keeps the leading term only, the others at their
    # bounds and no overhead.
    varies = [bool(np.ptp(work[n]) > 1e-9 * work[n].max()) for n in terms]
    # The pieces are told apart from a lone rate only where they are not a fixed multiple of its work (a windowed
    # attention series of one head shape, no bytes fitted: its scores and FLOPs in one ratio, any split between
    # the two equally good, and which one a solver lands on a matter of its build).
    if item_ref:
        lone = items / work[terms[0]] if len(terms) == 1 and work[terms[0]].all() else None
        apart = lone is None or bool(np.ptp(lone) > 1e-9 * lone.max())
        varies.append(bool(np.ptp(items) > 1e-9 * items.max()) and apart)
    free = np.array([*varies, len(samples) > sum(varies)])
    if len(samples) < sum(varies) or not any(varies[: len(terms)]):
        free = np.arange(len(cols)) == (varies.index(True) if any(varies[: len(terms)]) else 0)
    rates = len(terms)
    starts = [np.maximum(lower, [1.0] * rates + [0.0] * len(additive))]
    if np.isfinite([cap[n] for n in terms]).any():
        starts.append(np.where(lower > 0, lower, starts[0]))
    coef, _ = nnls((cols * free[:, None]).T, np.ones_like(t))
    starts.append(np.maximum(lower, coef))
    solved = [_solve(cols, lower, free, np.where(free, x0, lower), rates) for x0 in starts]
    x = min(solved, key=lambda x: float(np.sum(_residuals(cols, x, rates) ** 2)))
    x = np.where(x - lower < 1e-9, lower, x)  # the solver stays strictly inside its bounds: one a hair off is on it
    # A rate that limits no sample is not determined by them: at its bound (the datasheet, or left out).
    binding = np.argmax(x[:rates, None] * cols[:rates], axis=0)
    x[:rates] = np.where(np.isin(np.arange(rates), binding), x[:rates], lower[:rates])
    rate = {n: min(best[n] / x[i], cap[n]) if x[i] > 0 else math.inf for i, n in enumerate(terms)}
    overhead_s, item_s = float(x[-1] * t.min()), float(x[rates] * item_ref) if item_ref else 0.0
    if all(math.isinf(r) for r in rate.values()) and not item_s:
        # Only the overhead fitted (flat timings): keep a rate term so the fit still scales with work.
        rate, overhead_s = {terms[0]: float(np.median(work[terms[0]] / t))}, 0.0
    # A term no sample has work in (a windowed attention series' bytes) is not fitted: at its bound.
    fit = KernelFit(rate.get("flops", cap["flops"]), rate.get("bytes", cap["bytes"]), overhead_s, len(samples),
                    item_s=item_s)  # fmt: skip
    rel = np.array([fit.time_s(s.flops, s.bytes, s.items) / s.time_s - 1 for s in samples])
    return replace(fit, rel_rmse=float(np.sqrt(np.mean(rel**2))))


def _residuals(cols: np.ndarray, x: np.ndarray, rates: int) -> np.ndarray:
    """Relative errors of the roofline with multiples `x`: the slowest of the first `rates` terms plus the
    additive ones (the pieces of work, the overhead), less 1."""
    return np.max(x[:rates, None] * cols[:rates], axis=0) + x[rates:] @ cols[rates:] - 1


def _solve(cols: np.ndarray, lower: np.ndarray, free: np.ndarray, x0: np.ndarray, rates: int) -> np.ndarray:
    """The multiples, from `x0`, that minimise the squared relative errors, the `free` ones varied within
    [lower, inf), the others held (the jacobian of the max: each sample's binding term)."""
    n = cols.shape[1]

    def full(z: np.ndarray) -> np.ndarray:
        x = x0.copy()
        x[free] = z
        return x

    def jac(z: np.ndarray) -> np.ndarray:
        x = full(z)
        out = np.zeros((len(x), n))
        bind = np.argmax(x[:rates, None] * cols[:rates], axis=0)
        out[bind, np.arange(n)] = cols[bind, np.arange(n)]
        out[rates:] = cols[rates:]
        return out[free].T

    res = least_squares(
        lambda z: _residuals(cols, full(z), rates),
        x0[free],
        jac=jac,
        bounds=(lower[free], np.inf),
        method="trf",
        ftol=1e-12,
        xtol=1e-12,
        gtol=1e-12,
    )
    return full(res.x)


def fit_classes(
    samples: list[Sample], catalog_gpu: str | None = None, measured_on: Mapping[str, str] | None = None
) -> dict[str, KernelFit]:
    """One fit per kernel class present in `samples`, bounded by the datasheet of the GPU it was timed on:
    `measured_on` names it per class where that is not `catalog_gpu` (None: a device outside the catalog)."""
    by_class: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if s.enters_fit:  # another GPU's MoE timings price that GPU's runs alone, few-pair ones serving's lookups
            by_class[s.kernel_class].append(s)
    fits = {}
    for cls, group in sorted(by_class.items()):
        gpu = (measured_on or {}).get(cls, catalog_gpu)
        fits[cls] = fit_kernel(group, RateCaps.of(load_gpu(gpu) if gpu else None, cls))
    return fits


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
        notes.append(f"{cls}{DERIVED_NOTE}{how}")
    return out, notes


def build_profile(
    samples: list[Sample],
    name: str,
    kind: str,
    device: str,
    catalog_gpu: str | None,
    source: str = "",
    notes: tuple[str, ...] = (),
    measured_on: Mapping[str, str] | None = None,
    **meta: str,
) -> Profile:
    """Fit every class of `samples` within its datasheet (see `fit_classes`), derive the missing ones, and wrap
    it all as a Profile."""
    fits, looked_up = lookup_only(fit_classes(samples, catalog_gpu, measured_on), samples)
    fits, derived = derive_missing(fits, catalog_gpu)
    return Profile(
        name=name,
        kind=kind,
        device=device,
        catalog_gpu=catalog_gpu,
        fits=fits,
        samples=tuple(samples),
        source=source,
        created=meta.get("created", date.today().isoformat()),
        torch_version=meta.get("torch_version", ""),
        cuda_version=meta.get("cuda_version", ""),
        notes=(*notes, *looked_up, *derived),
    )


def lookup_only(fits: dict[str, KernelFit], samples: list[Sample]) -> tuple[dict[str, KernelFit], list[str]]:
    """`fits` less the classes timed only as whole MoE operators whose roofline misses them by more than
    MAX_FIT_RMSE (one roofline over several shapes' kernels): those shapes are priced by looking them up
    (`simulator.analytic.profile.moe_tables`), other shapes as the class falls back (`FALLBACKS`, FP4 from FP8);
    a note each."""
    out, notes = dict(fits), []
    for cls, fit in fits.items():
        own = [s for s in samples if s.kernel_class == cls and s.enters_fit]
        if not fit.passes and own and all(s.op == "moe" for s in own):
            del out[cls]
            notes.append(
                f"{cls}: one roofline misses its {len(own)} MoE-operator timings by {100 * fit.rel_rmse:.0f}% rms "
                f"(over {MAX_FIT_RMSE:.0%}): the shapes timed are priced as timed, others as the class it falls "
                "back on"
            )
    return out, notes


def refit_profile(profile: Profile) -> Profile:
    """A measured profile fitted again from its own samples (after the fit changed), everything else kept; a
    published one is rebuilt from its table instead (`published_profile`: its series say where each was timed)."""
    if profile.kind != "measured":
        raise ValueError(f"profile {profile.name} is {profile.kind}: only a measured profile is refitted")
    if not profile.samples:
        raise ValueError(f"profile {profile.name} has no samples to fit")
    return build_profile(
        list(profile.samples),
        name=profile.name,
        kind=profile.kind,
        device=profile.device,
        catalog_gpu=profile.catalog_gpu,
        source=profile.source,
        notes=tuple(n for n in profile.notes if DERIVED_NOTE not in n),
        created=profile.created,
        torch_version=profile.torch_version,
        cuda_version=profile.cuda_version,
    )


def samples_from_series(series: dict, gpu: str | None = None) -> list[Sample]:
    """Samples from one published table: rows of shapes and the achieved TFLOPS or GB/s.

    A published figure gives a rate, not a time; the time is the rate's
    FLOPs (or bytes) divided by it, with the bytes a GEMM must move at least.
    A GEMM row with a `speedup` column prices the kernel it was published
    against (DeepGEMM's tables: its speedup over DeepSeek's internal CUTLASS
    kernels): that kernel's rate is the row's TFLOPS over the speedup. Rows of
    whole MoE ops (an `ms` column) are `moe_sample`s, on catalog GPU `gpu`;
    timed decode-attention shapes are `decode_sample`s.
    """
    kernel, dtype, source = series["kernel"], series["dtype"], series["source"]
    cols = series["columns"]
    if "ms" in cols and kernel.startswith("attention_decode"):
        return [decode_sample(dict(zip(cols, row, strict=True)), kernel, dtype, source) for row in series["rows"]]
    if "ms" in cols and kernel == "grouped_gemm":
        if gpu is None:
            raise ValueError(f"{source}: MoE op timings need the catalog GPU they were timed on")
        timed_on = load_gpu(gpu)
        return [moe_sample(dict(zip(cols, row, strict=True)), dtype, source, timed_on) for row in series["rows"]]
    out = []
    for row in series["rows"]:
        if len(row) != len(cols):
            raise ValueError(f"{source}: row {row} does not match columns {cols}")
        r = dict(zip(cols, row, strict=True))
        if kernel == "memory":
            nbytes = r.get("bytes", 1e9)
            out.append(Sample("memory", dtype, 0.0, nbytes, nbytes / (r["gb_per_s"] * GIGA), source=source))
            continue
        if kernel == "attention_decode":  # a bound's rate without a shape: one large sample at that bound
            if "gb_per_s" in r:
                out.append(Sample(kernel, dtype, 0.0, 1e9, 1e9 / (r["gb_per_s"] * GIGA), source=source))
            if "tflops" in r:
                out.append(Sample(kernel, dtype, 1e12, 0.0, 1e12 / (r["tflops"] * TERA), source=source))
            continue
        if kernel.startswith("attention"):
            # a window's FLOPs grow with the sequence as its bytes do: no bytes rate to tell apart, none fitted
            nbytes = 0.0 if "window" in r else _attention_bytes(r, dtype)
            flops, shape = _attention_counts(kernel, r), {}
            if "ms" in r:  # timed shapes (AIConfigurator's): each sample's scores are its items
                scores = flops / (2.0 * (r["qk_dim"] + r["v_dim"])) / (2.5 if kernel.startswith("attention_bwd") else 1)
                out.append(Sample(kernel, dtype, flops, nbytes, r["ms"] * 1e-3, source=source, items=scores))
                continue
        else:
            m, n, k, g = r["m"], r["n"], r["k"], r.get("groups", 1)
            flops = 2.0 * m * n * k * g
            nbytes = gemm_bytes(m, n, k, g, dtype_bytes(dtype), dtype_bytes("bf16"))
            shape = {"m": m, "n": n, "k": k, "groups": g}
        rate = r["tflops"] / r.get("speedup", 1.0)  # a rate published against another kernel: that kernel's
        out.append(Sample(kernel, dtype, flops, nbytes, flops / (rate * TERA), source=source, **shape))
    return out


def decode_sample(r: dict, kernel: str, dtype: str, source: str) -> Sample:
    """A decode-attention sample from one timed shape: `batch` sequences, one query each, over `kv_len` cached
    tokens at `kv_bytes` per element (1: an FP8 cache, 2: bf16), `heads` query heads of `qk_dim` / `v_dim` over
    `kv_heads` KV heads (GQA: qk_dim = v_dim; MLA, `attention_decode_mla`: the one cached latent, `qk_dim` wide,
    whose first `v_dim` are the values). Its counts are the op's (`workloads.servingops.decode_attention_op` for that
    shape), and so is its class: the series' dtype must be the one the cache computes in."""
    cache = {1: "fp8", 2: "bf16"}.get(r["kv_bytes"])
    if cache is None:
        raise ValueError(f"{source}: row {r}: kv_bytes must be 1 (an FP8 cache) or 2 (bf16)")
    if kernel == "attention_decode_mla":
        if r["qk_dim"] <= r["v_dim"]:
            raise ValueError(f"{source}: row {r}: MLA's qk_dim (latent + rope) must exceed v_dim (the latent)")
        # the absorbed form reads the latent and its rope key alone: the per-head dims are not used
        shape = {"attention": "mla", "kv_lora_rank": r["v_dim"], "qk_rope_head_dim": r["qk_dim"] - r["v_dim"],
                 "qk_nope_head_dim": r["v_dim"], "v_head_dim": r["v_dim"]}  # fmt: skip
    else:
        if r["qk_dim"] != r["v_dim"] or r["heads"] % r["kv_heads"]:
            raise ValueError(f"{source}: row {r}: GQA needs qk_dim = v_dim and heads a multiple of kv_heads")
        shape = {"num_key_value_heads": r["kv_heads"], "head_dim": r["qk_dim"]}
    spec = ModelSpec(name="decode op", num_hidden_layers=1, hidden_size=r["heads"] * r["qk_dim"],
                     num_attention_heads=r["heads"], vocab_size=1, intermediate_size=1, **shape)  # fmt: skip
    op = decode_attention_op(spec, r["batch"], r["kv_len"], 1, cache)
    if op.profile_class != kernel_class(kernel, dtype):
        raise ValueError(f"{source}: a {cache} cache's decode computes in {op.precision}: use dtype {op.precision}")
    counts = float(op.flops), float(op.hbm_bytes)
    # its shape, as `simulator.analytic.decodetables` looks it up: MLA's heads all read the one latent
    shape = {"m": int(r["kv_len"]), "k": int(op.k), "n": int(op.n), "groups": r["heads"] // r.get("kv_heads", 1)}
    return Sample(kernel, dtype, *counts, r["ms"] * 1e-3, source=source, items=float(op.items), op="decode", **shape)


def _attention_counts(kernel: str, r: dict) -> float:
    """FlashAttention's FLOP convention: 4*b*h*s_q*s_k*d forward (half with a causal mask), 2.5x backward. A
    sliding window's rows count the keys each query attends (`workloads.flops.attended_keys`, as the benchmark
    reports its TFLOPS), times the key tiles its kernel runs for them (`window_tile_factor`): the convention
    pricing prices windowed ops in."""
    if "window" in r:
        keys = attended_keys(r["seq_k"], bool(r.get("causal", 0)), r["window"]) * window_tile_factor(r["window"])
        fwd = 2.0 * r["batch"] * r["heads"] * r["seq_q"] * keys * (r["qk_dim"] + r["v_dim"])
    else:
        fwd = 2.0 * r["batch"] * r["heads"] * r["seq_q"] * r["seq_k"] * (r["qk_dim"] + r["v_dim"])
        fwd *= 0.5 if r.get("causal", 0) else 1.0
    return fwd * (2.5 if kernel.startswith("attention_bwd") else 1.0)


def _attention_bytes(r: dict, dtype: str) -> float:
    """Q, K, V read and O written once."""
    b, h, hk = r["batch"], r["heads"], r.get("kv_heads", r["heads"])
    elems = b * h * r["seq_q"] * (r["qk_dim"] + r["v_dim"]) + b * hk * r["seq_k"] * (r["qk_dim"] + r["v_dim"])
    return elems * dtype_bytes(dtype)


# A published table's keys and each series' keys, with their types (as hwmodels.profile.check_fields reads them).
TABLE_KEYS = {"name": "str", "device": "str", "catalog_gpu": "str", "created": "str", "source": "str"}
TABLE_KEYS |= {"notes": "list", "series": "list", "inherits": "str", "not_inherited": "list"}
SERIES_KEYS = {"kernel": "str", "dtype": "str", "source": "str", "columns": "list", "rows": "list"}
# A series timed on another catalog GPU of the same die (an H200 for the H100): its class is fitted as measured,
# within that GPU's datasheet, and its bytes rate scaled by the two GPUs' HBM datasheets, as
# `simulator.analytic.profile.apply_profile` does.
SERIES_OPTIONAL = {"measured_on": "str"}


def series_toml(
    kernel: str, dtype: str, columns: list[str], rows: list[list[float]], source: str, measured_on: str | None = None
) -> str:
    """One [[series]] block of a published kernel table, as the reducers of a source print it (SERIES_KEYS)."""
    where = [f'measured_on = "{measured_on}"'] if measured_on else []
    names = ", ".join(f'"{c}"' for c in columns)
    return "\n".join(
        ["[[series]]", f'kernel = "{kernel}"', f'dtype = "{dtype}"', *where, f'source = "{source}"',
         f"columns = [{names}]", "rows = [", ",\n".join(f"  {r}" for r in rows), "]", ""]
    )  # fmt: skip


# The columns of a series, by kernel: (required, optional). Rates are finite numbers > 0, `causal` is 0 or 1,
# `bytes` and `speedup` numbers > 0, and every other column a shape: an integer from 1 to MAX_SHAPE.
GEMM_COLUMNS = ({"m", "n", "k", "tflops"}, {"groups", "speedup"})
# A whole MoE layer's experts timed as one op (`moe_samples`): its shape, the EP degree, the tokens on the GPU and
# the op's milliseconds. A grouped_gemm series gives either these columns or a GEMM's.
MOE_COLUMNS: tuple[set[str], set[str]] = ({"hidden", "inter", "experts", "topk", "ep", "tokens", "ms"}, set())
# Attention: a rate (`tflops`, a benchmark's table) or a time (`ms`, a timed shape whose scores are its items).
ATTENTION_COLUMNS = ({"batch", "heads", "seq_q", "seq_k", "qk_dim", "v_dim"}, {"kv_heads", "causal", "tflops", "ms"})
WINDOW_COLUMNS = (ATTENTION_COLUMNS[0] | {"window"}, ATTENTION_COLUMNS[1])  # `window`: keys, seq_q = seq_k
COLUMNS = {
    "gemm": GEMM_COLUMNS,
    "grouped_gemm": GEMM_COLUMNS,
    "gemm_wgrad": GEMM_COLUMNS,
    "attention_fwd": ATTENTION_COLUMNS,
    "attention_bwd": ATTENTION_COLUMNS,
    "attention_fwd_mla": ATTENTION_COLUMNS,
    "attention_bwd_mla": ATTENTION_COLUMNS,
    "attention_fwd_window": WINDOW_COLUMNS,
    "attention_bwd_window": WINDOW_COLUMNS,
    "attention_decode": (set(), {"gb_per_s", "tflops"}),  # its memory-bound and compute-bound rates
    "attention_decode_mla": ({"batch", "heads", "qk_dim", "v_dim", "kv_len", "kv_bytes", "ms"}, set()),
    "memory": ({"gb_per_s"}, {"bytes"}),
}
# Decode attention timed shape by shape (`decode_sample`): the GQA kernels' columns (MLA's, above, have no
# KV heads: one latent).
DECODE_COLUMNS: tuple[set[str], set[str]] = (COLUMNS["attention_decode_mla"][0] | {"kv_heads"}, set())
RATE_COLUMNS = ("tflops", "gb_per_s", "ms")  # an achieved rate, or a time
MAX_SHAPE = 1 << 40  # far beyond any benchmarked shape; keeps FLOP counts (products of five) finite


def published_profile(path: str | Path) -> Profile:
    """Build a published profile from a TOML file of kernel-benchmark tables (calibration/data/published): a
    regular file of at most MAX_CONFIG_BYTES, read as data by `published_from_dict`."""
    where = clean_text(path)
    return published_from_dict(_read_table(path, where), where)


def _read_table(path: str | Path, where: str) -> object:
    """A published table's TOML as data (a regular file of at most MAX_CONFIG_BYTES), unchecked."""
    return loads_toml(read_text(path, "published table"), where)


def published_from_dict(data: object, where: str = "published table") -> Profile:
    """The profile of a parsed published table, every key and column checked with its type (a rate is a
    number > 0, a shape an integer); any defect is a one-line ValueError naming `where`, the series and
    the field. A table that `inherits` another shipped table keeps that table's series of the classes it does
    not give itself (`_inherited`)."""
    d = check_fields(data, TABLE_KEYS, where, ("name", "device", "series"))
    if not all(isinstance(n, str) for n in d.get("notes", [])):
        raise ValueError(f"{where}: notes must be a list of strings")
    for i, series in enumerate(d["series"]):
        _check_series(series, f"{where}: series {i}")
    skipped = d.get("not_inherited", [])
    if skipped and "inherits" not in d:
        raise ValueError(f"{where}: not_inherited needs inherits (the table whose series it leaves out)")
    if not all(isinstance(k, str) and k in KERNELS for k in skipped):
        shown = clean_text(repr(skipped), 80)
        raise ValueError(f"{where}: not_inherited {shown} must list kernels, of {', '.join(KERNELS)}")
    if "inherits" in d:
        d = {**d, "series": [*d["series"], *_inherited(d, where)]}
    elsewhere = [s for s in d["series"] if _moe_timed_elsewhere(s, d.get("catalog_gpu"))]
    moved = {kernel_class(s["kernel"], s["dtype"]): s["measured_on"] for s in d["series"]
             if "measured_on" in s and s not in elsewhere}  # fmt: skip
    try:
        profile = build_profile(
            [
                replace(s, timed_on=series["measured_on"]) if series in elsewhere else s
                for series in d["series"]
                for s in samples_from_series(series, series.get("measured_on") or d.get("catalog_gpu"))
            ],
            name=clean_text(d["name"], 120),
            kind="published",
            device=clean_text(d["device"], 120),
            catalog_gpu=d.get("catalog_gpu"),
            source=clean_text(d.get("source", ""), 1000),
            notes=tuple(clean_text(n, 1000) for n in d.get("notes", [])),
            created=clean_text(d.get("created", ""), 60),
            measured_on=moved,
        )
        return _rescaled_to_target(profile, moved)
    except ValueError as err:  # a rate that makes a time of 0 or infinity, an unknown catalog GPU
        raise ValueError(f"{where}: {err}") from None


def _moe_timed_elsewhere(series: dict, catalog_gpu: str | None) -> bool:
    """Whether `series` times whole MoE operators on a GPU other than the table's: its samples keep that GPU
    (`Sample.timed_on`), price its runs as timed and fit nothing."""
    on = series.get("measured_on")
    return series["kernel"] == "grouped_gemm" and "ms" in series["columns"] and bool(on) and on != catalog_gpu


def _inherited(d: dict, where: str) -> list[dict]:
    """The series of the table `d` inherits (another shipped table, by file stem, one level deep) whose kernel
    class `d` does not give itself nor lists in `not_inherited` (kernels it derives from its own fits instead):
    a table that re-prices a few classes keeps the rest of its die's table. Inherited from another GPU's table,
    each series is `measured_on` the GPU it was timed on (its own, where it names one; else that table's)."""
    tables = {p.stem: p for p in PUBLISHED_DIR.glob("*.toml")}
    name = d["inherits"]
    if name not in tables:
        shown = clean_text(repr(name), 60)
        raise ValueError(f"{where}: inherits {shown} is not a shipped table; use one of {', '.join(sorted(tables))}")
    base = check_fields(_read_table(tables[name], name), TABLE_KEYS, name, ("series",))
    if "inherits" in base:
        raise ValueError(f"{where}: inherits {name}, which inherits in turn; name the table it inherits instead")
    for i, series in enumerate(base["series"]):
        _check_series(series, f"{name}: series {i}")
    skipped = d.get("not_inherited", [])
    own = {(s["kernel"], s["dtype"]) for s in d["series"]}
    kept = [s for s in base["series"] if (s["kernel"], s["dtype"]) not in own and s["kernel"] not in skipped]
    timed_on = base.get("catalog_gpu")
    if timed_on and timed_on != d.get("catalog_gpu"):  # another GPU's table: its series as measured there
        kept = [{"measured_on": timed_on, **s} for s in kept]
    return kept


def _rescaled_to_target(profile: Profile, moved: dict[str, str]) -> Profile:
    """The classes whose series were timed on another GPU (`moved`: class -> that GPU), with their bytes rate
    scaled by the HBM datasheets and, on a GPU of the same die (a GB200 for the B200), their FLOP rate by the
    dtype's dense peaks, as `simulator.analytic.profile.apply_profile` carries a profile across a die; a series
    from another die keeps its FLOP rate (a floor, its source says so). The classes derived from them are
    derived again."""
    if not moved or not profile.catalog_gpu:
        return profile
    target = load_gpu(profile.catalog_gpu)
    fits, notes = dict(profile.fits), list(profile.notes)
    for cls, gpu in moved.items():
        if cls not in fits:  # a series with no rows left fits nothing
            continue
        timed_on = load_gpu(gpu)
        flops, ratio = peak_ratios(cls, timed_on, target)
        flops = flops if target.die and target.die == timed_on.die else 1.0
        how = f"bytes rate x {ratio:.2f} (HBM datasheets)"
        how += f", FLOP rate x {flops:.2f} ({class_dtype(cls)} peaks, the same die)" if flops != 1.0 else ""
        fits[cls] = fits[cls].scaled(flops, ratio, note=f"timed on {gpu}: {how}")
        notes.append(f"{cls}: timed on the {gpu}; its {how}")
    sampled = {s.kernel_class for s in profile.samples}
    stale = [cls for cls, (src, _) in DERIVATIONS.items() if src in moved and cls not in sampled]
    fits, _ = derive_missing({c: f for c, f in fits.items() if c not in stale}, profile.catalog_gpu)
    return replace(profile, fits=fits, notes=tuple(notes))


def _check_series(series: object, where: str) -> None:
    """One [[series]]: a known kernel and dtype, the kernel's columns, rows of numbers of their types."""
    s = check_fields(series, SERIES_KEYS | SERIES_OPTIONAL, where, tuple(SERIES_KEYS))
    if "measured_on" in s and s["measured_on"] not in catalog("gpus"):
        raise ValueError(f"{where}: measured_on {clean_text(repr(s['measured_on']), 40)} is not a catalog GPU")
    if s["kernel"] not in KERNELS or s["dtype"] not in DTYPES:
        shown = clean_text(f"{s['kernel']!r}/{s['dtype']!r}", 80)
        raise ValueError(f"{where}: kernel/dtype {shown}; use one of {', '.join(KERNELS)} / {', '.join(DTYPES)}")
    cols = s["columns"]
    moe = s["kernel"] == "grouped_gemm" and "ms" in cols
    shaped = s["kernel"] == "attention_decode" and "ms" in cols  # a decode series of timed shapes
    required, optional = MOE_COLUMNS if moe else DECODE_COLUMNS if shaped else COLUMNS[s["kernel"]]
    if not all(isinstance(c, str) for c in cols) or len(set(cols)) != len(cols) or not required <= set(cols):
        raise ValueError(f"{where}: columns must name each of {', '.join(sorted(required))} once")
    if set(cols) - required - optional:
        shown = clean_text(", ".join(sorted(set(cols) - required - optional)), 80)
        raise ValueError(f"{where}: unknown columns {shown}; known: {', '.join(sorted(required | optional))}")
    if not set(cols) & set(RATE_COLUMNS):
        raise ValueError(f"{where}: columns must include a rate ({' or '.join(RATE_COLUMNS)})")
    if {"tflops", "ms"} <= set(cols):
        raise ValueError(f"{where}: columns give a rate (tflops) or a time (ms), not both")
    for j, row in enumerate(s["rows"]):
        if not isinstance(row, list) or len(row) != len(cols):
            raise ValueError(f"{where}: row {j} must be a list of {len(cols)} numbers ({', '.join(cols)})")
        for col, value in zip(cols, row, strict=True):
            _check_cell(col, value, f"{where}: row {j}")


def _check_cell(col: str, value: object, where: str) -> None:
    """One number of a row: a rate, `bytes` or `speedup` finite and > 0, `causal` 0 or 1, a shape from 1 to
    MAX_SHAPE."""
    if col in (*RATE_COLUMNS, "bytes", "speedup"):
        ok, want = is_finite_number(value) and value > 0, "a finite number > 0"  # a number: checked
    elif col == "causal":
        ok, want = value in (0, 1) and not isinstance(value, bool | float), "0 or 1"
    else:
        ok, want = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SHAPE, "an integer"
        want += f" from 1 to {MAX_SHAPE:,}"
    if not ok:
        raise ValueError(f"{where}: {col}={clean_text(repr(value), 60)} must be {want}")

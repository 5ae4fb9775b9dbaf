"""Kernel rates for one GPU: a calibration profile applied to the GPU a run uses.

`--profile` takes `sol` (peaks only), `published` (kernel benchmarks from
public sources, shipped), `measured` (kernels timed on the run's GPU or one of
its die: the newest `v3sim calibrate run` wrote, else the one we measured on an
H200 for the GH100 die), a shipped profile's name, or a JSON file.

Where a profile may price a run (`refusal`): on the GPU it was measured on, as
measured; on another GPU of the same die (an H200's timings for an H800: the
same SMs, clocks and tensor cores), as the same fractions of that GPU's peaks,
FLOP/s by the dtype's dense peak and bytes/s by the HBM datasheet. A profile
measured on a device outside the catalog (a CPU) or on another die is refused:
its speed says nothing of this GPU's. A published table alone may stand in for
a die no table covers (the A100, MI300X), as fractions of peaks, and says so.
A fit that misses its own samples by more than MAX_FIT_RMSE prices nothing.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from hwmodels.bmmtables import BmmTable, bmm_tables
from hwmodels.gemmtables import GemmTable, gemm_tables
from hwmodels.profile import (
    MAX_FIT_RMSE,
    PROFILE_DIR,
    KernelFit,
    Profile,
    class_dtype,
    peak_ratios,
    read_profile,
    shipped_profiles,
)
from hwmodels.registry import load_gpu
from hwmodels.specs import GPUSpec
from simulator.analytic.decodetables import DecodeKey, DecodeTable, decode_tables
from simulator.analytic.memo import Memo
from simulator.analytic.moetables import MoEKey, MoETable, moe_tables
from simulator.names import PROFILE_CHOICES

SHIPPED_DIR = PROFILE_DIR
DEFAULT_PROFILE = "published"
FALLBACK_PUBLISHED = "h800-published"
# Kernel timings we measured on a GPU, shipped: what `measured` falls back to on a GPU of their die.
SHIPPED_MEASURED = ("h200-measured",)


def user_profile_dir() -> Path:
    """Where `v3sim calibrate run` writes measured profiles: $V3SIM_PROFILE_DIR or ~/.v3sim/profiles."""
    return Path(os.environ.get("V3SIM_PROFILE_DIR") or Path.home() / ".v3sim" / "profiles")


@dataclass(frozen=True, slots=True)
class KernelRates:
    """A profile's fits as they apply to one GPU: seconds for a kernel of given FLOPs and bytes."""

    name: str
    kind: str
    device: str
    gpu: str
    fits: dict[str, KernelFit]
    notes: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)  # kernel class -> where its samples came from
    elementwise_share: dict[str, float] = field(default_factory=dict)  # a profile's own element-wise shares
    die: str = ""  # the GPU's die: element-wise kernels reach its share of the datasheet (hwmodels.kernels)
    moe_tables: dict[MoEKey, MoETable] = field(default_factory=dict)  # timed expert shapes (moetables)
    decode_tables: dict[DecodeKey, DecodeTable] = field(default_factory=dict)  # timed decode shapes (decodetables)
    gemm_tables: dict[str, GemmTable] = field(default_factory=dict)  # timed dense GEMM shapes (hwmodels.gemmtables)
    bmm_tables: dict[str, BmmTable] = field(default_factory=dict)  # timed MLA decode BMMs (hwmodels.bmmtables)

    def fit(self, cls: str) -> KernelFit:
        """The fit that prices class `cls`; a one-line error when there is none or it failed (MAX_FIT_RMSE)."""
        if cls not in self.fits:
            have = ", ".join(sorted(self.fits))
            hint = "; use --precision bf16" if cls.endswith("fp8") else ""
            raise ValueError(f"profile {self.name} has no {cls} fit (it has {have}){hint}")
        f = self.fits[cls]
        if not f.passes:
            raise ValueError(failed_fit_message(self.name, cls, f))
        return f

    def time_s(
        self, cls: str, flops: float, bytes_moved: float = 0.0, sm_share: float = 1.0, items: float = 0.0
    ) -> float:
        """Seconds for one kernel of class `cls` over `items` pieces of work, its compute on `sm_share` of the
        SMs (HBM is shared by all of them, so the share slows the FLOP term and the pieces only): the roofline
        max of the two terms, plus each piece's cost and the overhead."""
        f = self.fit(cls)
        compute = max(flops / (f.flop_per_s * sm_share), bytes_moved / f.bytes_per_s)
        return compute + items * f.item_s / sm_share + f.overhead_s

    def scaled(self, k: float) -> KernelRates:
        """Every rate times `k` (a sensitivity probe)."""
        fits = {c: f.scaled(k, k) for c, f in self.fits.items()}
        tables = {key: table.scaled(k) for key, table in self.moe_tables.items()}
        decode = {key: table.scaled(k) for key, table in self.decode_tables.items()}
        gemms = {key: table.scaled(k) for key, table in self.gemm_tables.items()}
        bmms = {key: table.scaled(k) for key, table in self.bmm_tables.items()}
        return replace(self, name=f"{self.name} x{k:g}", fits=fits, moe_tables=tables, decode_tables=decode,
                       gemm_tables=gemms, bmm_tables=bmms)  # fmt: skip


FP4_KERNELS = ("gemm", "grouped_gemm")  # FP4 weights (NVFP4) run GEMMs; attention stays bf16 / fp8
ATTENTION_KERNELS = ("attention_fwd", "attention_bwd", "attention_decode")


@lru_cache(maxsize=64)
def sol_rates(gpu: GPUSpec) -> KernelRates:
    """Speed of light: every kernel at the GPU's dense peak FLOP/s and HBM bandwidth, no overhead."""
    fits = {"memory": KernelFit(bytes_per_s=gpu.hbm_bw_bytes_per_s)}
    for dtype in ("bf16", "fp8", "fp4"):
        if getattr(gpu, f"peak_{dtype}_flop_per_s"):
            peak = gpu.peak_flop_per_s(dtype)
            kernels = FP4_KERNELS if dtype == "fp4" else ("gemm", "grouped_gemm", *ATTENTION_KERNELS)
            for kernel in kernels:
                fits[f"{kernel}_{dtype}"] = KernelFit(peak, gpu.hbm_bw_bytes_per_s)
    return KernelRates("sol", "sol", gpu.name, gpu.name, fits, (f"peaks of the {gpu.name} datasheet",))


def sample_sources(profile: Profile) -> dict[str, str]:
    """Per kernel class, the distinct sources of its samples (the part before the first comma)."""
    out: dict[str, list[str]] = {}
    for s in profile.samples:
        short = s.source.split(",")[0]
        if short not in out.setdefault(s.kernel_class, []):
            out[s.kernel_class].append(short)
    return {cls: "; ".join(v) for cls, v in out.items()}


def failed_fit_message(name: str, cls: str, fit: KernelFit) -> str:
    """The one-line refusal of a fit over MAX_FIT_RMSE: the profile, the class, its error, the limit, the fix."""
    return (
        f"profile {name}: its {cls} fit misses its own samples by {100 * fit.rel_rmse:,.0f}% rms, over the "
        f"{MAX_FIT_RMSE:.0%} a fit may miss by; measure again (`v3sim calibrate run` on an idle machine) or use "
        "--profile published"
    )


def failed_classes(fits: dict[str, KernelFit]) -> list[str]:
    """The classes whose fit misses its samples by more than MAX_FIT_RMSE, worst first."""
    return sorted((c for c, f in fits.items() if not f.passes), key=lambda c: -fits[c].rel_rmse)


def refusal(profile: Profile, gpu: GPUSpec) -> str:
    """Why `profile` may not price a run on `gpu`, in one line naming where it was measured and the fix; ""
    when it may. A device outside the GPU catalog (a CPU) has no datasheet to scale its rates by, and a GPU
    of another die runs other kernels at other fractions of its peaks; a published table may stand in for a
    die no table covers (see `published_for`), its rates saying so."""
    fix = f"use --profile published, or run `v3sim calibrate run` on the {gpu.name} itself"
    if not profile.catalog_gpu:
        return (
            f"profile {profile.name} was measured on {profile.device}, not on a catalog GPU: its rates cannot "
            f"price a run on the {gpu.name}; {fix}"
        )
    src = load_gpu(profile.catalog_gpu)
    if profile.kind == "measured" and src.name != gpu.name and not (gpu.die and src.die == gpu.die):
        return (
            f"profile {profile.name} was measured on the {src.name} ({_die(src)}), another die than the "
            f"{gpu.name}'s ({_die(gpu)}): its rates cannot price a run on the {gpu.name}; {fix}"
        )
    return ""


def _die(gpu: GPUSpec) -> str:
    return f"die {gpu.die}" if gpu.die else "no die in its datasheet"


def apply_profile(profile: Profile, gpu: GPUSpec) -> KernelRates:
    """`profile`'s fits for `gpu`: as measured on the same GPU, else as the same fractions of the peaks of the
    GPU it was measured on (FLOP/s by the dtype's dense peak, bytes/s by the HBM datasheet, overhead as
    measured); a one-line error where `refusal` says it may not. Classes of a dtype `gpu` has no tensor cores
    for are left out."""
    reason = refusal(profile, gpu)
    if reason:
        raise ValueError(reason)
    head = (profile.name, profile.kind, profile.device, gpu.name)
    sources = sample_sources(profile)
    shares = profile.elementwise_share  # a share of the HBM datasheet carries to any GPU as a share
    src = load_gpu(str(profile.catalog_gpu))
    tables, decode = moe_tables(profile.samples, src, gpu), decode_tables(profile.samples, src, gpu)
    gemms = gemm_tables(gpu) if profile.kind == "published" else {}  # a measured profile's GEMMs are its own
    bmms = bmm_tables(gpu) if profile.kind == "published" else {}
    if profile.catalog_gpu == gpu.name:
        fits, notes = _with_fp4(dict(profile.fits), gpu)
        return KernelRates(*head, fits, (*profile.notes, *notes), sources, shares, gpu.die, tables, decode, gemms, bmms)
    usable = (c for c in profile.fits if c == "memory" or getattr(gpu, f"peak_{class_dtype(c)}_flop_per_s"))
    fits = {c: profile.fits[c].scaled(*peak_ratios(c, src, gpu)) for c in usable}
    kin = f"the same die, {gpu.die}" if gpu.die and gpu.die == src.die else "another die: no kernel source for this one"
    note = f"measured on {profile.catalog_gpu} ({kin}): applied to {gpu.name} as the same fractions of its peaks"
    fits, fp4_notes = _with_fp4(fits, gpu)
    notes = (*profile.notes, note, *fp4_notes)
    return KernelRates(*head, fits, notes, sources, shares, gpu.die, tables, decode, gemms, bmms)


def _with_fp4(fits: dict[str, KernelFit], gpu: GPUSpec) -> tuple[dict[str, KernelFit], tuple[str, ...]]:
    """`fits` with FP4 GEMM classes where `gpu` has FP4 tensor cores and the profile has none of its own: the
    FP8 class's fit at the datasheets' FP4/FP8 ratio (the same fraction of the FP4 peak as FP8 reaches of its
    own; bytes and overhead as FP8's). No FP4 GEMM benchmark is in the kernel sources: an assumption, said."""
    if not gpu.peak_fp4_flop_per_s or not gpu.peak_fp8_flop_per_s:
        return fits, ()
    ratio = gpu.peak_fp4_flop_per_s / gpu.peak_fp8_flop_per_s
    added = []
    for kernel in FP4_KERNELS:
        if f"{kernel}_fp4" not in fits and f"{kernel}_fp8" in fits:
            fits[f"{kernel}_fp4"] = fits[f"{kernel}_fp8"].scaled(ratio, 1.0)
            added.append(f"{kernel}_fp4")
    if not added:
        return fits, ()
    note = (
        f"{', '.join(added)}: no FP4 kernel source; the fp8 fits at the {gpu.name} datasheet's FP4/FP8 ratio "
        f"(x{ratio:g}), the same fraction of the FP4 peak (ASSUMED)"
    )
    return fits, (note,)


def user_measured() -> list[Path]:
    """The profile files in the user's profile folder, newest first."""
    folder = user_profile_dir()
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return files[::-1]


def measured_path(gpu: GPUSpec | None = None) -> Path:
    """The file `measured` names for a run on `gpu`: the newest of the user's profiles measured on that GPU,
    else on a GPU of its die, else a shipped one (SHIPPED_MEASURED) on that GPU or its die; a one-line error
    naming the fix when none was. Without a GPU (to show one): the newest of the user's, else the first
    shipped."""
    mine, shipped = user_measured(), [SHIPPED_DIR / f"{n}.json" for n in SHIPPED_MEASURED]
    if gpu is None:
        return (mine or shipped)[0]
    for paths in (mine, shipped):
        profiles = [(path, _read(path)) for path in paths]
        for rank in (2, 1):
            for path, profile in profiles:
                if _kinship(profile, gpu) == rank:
                    return path
    die = f" or another {gpu.die} GPU" if gpu.die else ""
    newest = f"; the newest of yours, {_read(mine[0]).name}, was measured on {_read(mine[0]).device}" if mine else ""
    raise ValueError(
        f"--profile measured: nothing was measured on the {gpu.name}{die}{newest}; use --profile published, or "
        f"run `v3sim calibrate run` on the {gpu.name} (it writes to {user_profile_dir()})"
    )


def _kinship(profile: Profile, gpu: GPUSpec) -> int:
    """2: `profile` timed kernels on `gpu` itself, 1: on a GPU of its die, 0: neither (or it was no measurement)."""
    if profile.kind != "measured" or not profile.catalog_gpu:
        return 0
    if profile.catalog_gpu == gpu.name:
        return 2
    return int(bool(gpu.die) and load_gpu(profile.catalog_gpu).die == gpu.die)


@lru_cache(maxsize=32)
def _read_cached(path: str, mtime_ns: int) -> Profile:
    return read_profile(path)


def _read(path: str | Path) -> Profile:
    """A profile file, parsed once per version of the file (estimates in a sweep reuse it)."""
    path = Path(path)
    if not path.is_file():
        return read_profile(path)  # its one-line error
    return _read_cached(str(path.resolve()), path.stat().st_mtime_ns)


def load_profile(spec: str = DEFAULT_PROFILE, gpu: GPUSpec | None = None) -> Profile:
    """The profile `spec` names (published/measured/shipped name/JSON path), `measured` resolved for a run on
    `gpu` (see `measured_path`); `sol` has none, see sol_rates."""
    if spec == "measured":
        return _read(measured_path(gpu))
    if spec in shipped_profiles():
        return _read(SHIPPED_DIR / f"{spec}.json")
    if spec.endswith(".json") or os.sep in spec:
        return _read(spec)
    choices = ", ".join((*PROFILE_CHOICES, *shipped_profiles()))
    raise ValueError(f"unknown profile {spec!r}; use one of {choices} or a .json file")


def rates_for(spec: str | KernelRates | None, gpu: GPUSpec) -> KernelRates:
    """Kernel rates on `gpu` for a profile choice (default: published)."""
    if isinstance(spec, KernelRates):
        return spec
    if spec is not None and not spec.strip():
        raise ValueError("the profile name is empty; name one (sol, published, measured, a .json file) or leave it out")
    spec = spec or DEFAULT_PROFILE
    if spec == "sol":
        return sol_rates(gpu)
    if spec == "published":
        return _applied(load_profile(published_for(gpu)), gpu)
    return _applied(load_profile(spec, gpu), gpu)


@lru_cache(maxsize=64)
def published_for(gpu: GPUSpec) -> str:
    """The shipped published profile for `gpu`: its own, else one measured on a GPU of the same die (one
    kernel table per die: the H100, H800, H200 and H20 share the GH100's), else the H800's (another die,
    applied as fractions of the peaks, and the rates say so). Once per GPU: the shipped folder is package data."""
    published = [name for name in shipped_profiles() if name.endswith("-published")]
    if f"{gpu.name}-published" in published:
        return f"{gpu.name}-published"
    for name in published:
        measured_on = load_profile(name).catalog_gpu
        if gpu.die and measured_on and load_gpu(measured_on).die == gpu.die:
            return name
    return FALLBACK_PUBLISHED


_APPLIED: Memo[KernelRates] = Memo(256)


def _applied(profile: Profile, gpu: GPUSpec) -> KernelRates:
    """`apply_profile`, once per profile object (a file re-read when it changes is a new object) and GPU: the
    same rates object lets the training model reuse the stage times it priced with it."""
    return _APPLIED.get(gpu, (profile,), lambda: apply_profile(profile, gpu))


def describe(fits: dict[str, KernelFit], sources: dict[str, str]) -> list[dict[str, object]]:
    """One row per kernel class: its rates and where they came from (for --explain and `calibrate show`)."""
    rows: list[dict[str, object]] = []
    for cls, f in sorted(fits.items()):
        rows.append(
            {
                "class": cls,
                "tflops": None if math.isinf(f.flop_per_s) else f.flop_per_s / 1e12,
                "gb_per_s": None if math.isinf(f.bytes_per_s) else f.bytes_per_s / 1e9,
                "overhead_us": f.overhead_s * 1e6,
                "item_ns": f.item_s * 1e9,  # per piece of work (decode attention's sequence-head pairs), 0: none
                "samples": f.samples,
                "rel_rmse": f.rel_rmse,
                "passes": f.passes,  # within MAX_FIT_RMSE: a class that fails prices nothing
                "derived_from": f.derived_from,
                "source": sources.get(cls, ""),
            }
        )
    return rows

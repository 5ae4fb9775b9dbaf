"""Calibration profiles: kernel timings on one device and the fits made from them, as plain JSON data.

A profile holds every raw sample (a kernel, its shape, FLOPs, bytes moved,
seconds, and where the figure came from) and, per kernel class, the fit

    time_s = max(flops / flop_per_s, bytes / bytes_per_s) + items * item_s + overhead_s

a roofline: compute-bound shapes are limited by `flop_per_s`, memory-bound
ones by `bytes_per_s`, tiny ones by the launch overhead. `items` are the
independent pieces of work a kernel runs one thread block each for, where a
class's samples show a fixed cost per piece (decode attention's sequence and
KV-head pairs: each block's set-up and write-back); most classes have none. The max (not a sum)
keeps each rate a rate the hardware can reach: a sum lets a fit trade one term
for the other and land a rate above the datasheet (calibration/fit.py bounds
them by it).

The schema lives here, below both sides and free of torch: `calibration` writes profiles through it, the
simulator reads them through it, and the simulator never imports `calibration`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from hwmodels.files import (
    MAX_PROFILE_BYTES,
    clean_text,
    dumps_json,
    is_finite_number,
    loads_json,
    read_text,
    write_atomic,
)
from hwmodels.kernels import elementwise_rates
from hwmodels.specs import GPUSpec

PROFILE_DIR = Path(__file__).parent / "data" / "profiles"  # the shipped profiles
SCHEMA = "v3sim-calibration-profile"
VERSION = 1
KINDS = ("measured", "published", "sol")
# attention_decode: one query token per sequence over its KV cache (FlashMLA's absorbed MLA decode kernel).
# gemm_wgrad: weight-gradient GEMMs, whose reduction runs over the tokens (the FP8 recipe's are a kernel of
# their own: 1x128 x 1x128 scaling, fp32 accumulation into the main gradients).
# attention_fwd_mla / attention_bwd_mla: training and prefill attention of MLA's head shape (query/key 192, value
# 128), which runs slower per FLOP than the head-dim-128 kernels of attention_fwd / attention_bwd.
# attention_fwd_window / attention_bwd_window: training and prefill attention of sliding-window layers, whose
# kernels run few key tiles per query tile and so far below the full-attention rate; FLOPs counted on the key
# tiles run (`workloads.flops.window_tile_factor`).
# attention_decode_mla: MLA's absorbed decode (queries and keys 576 wide over the one cached latent, values 512),
# whose kernels (FlashMLA, TensorRT-LLM's MLA generation) are not the GQA ones.
KERNELS = (
    "gemm", "grouped_gemm", "gemm_wgrad", "attention_fwd", "attention_bwd", "attention_fwd_mla", "attention_bwd_mla",
    "attention_fwd_window", "attention_bwd_window", "attention_decode", "attention_decode_mla", "memory",
)  # fmt: skip
DTYPES = ("bf16", "fp8", "fp4", "fp32", "w4a16", "w4a8")
# a sample of one kernel, of a whole MoE operator's two grouped GEMMs, or of one timed decode-attention shape
SAMPLE_OPS = ("", "moe", "decode")
# A class named by its operands rather than one dtype computes in this dtype: W4A16 (4-bit weights dequantized to
# bf16 inside the GEMM, TensorRT-LLM's MXFP4 MoE on Hopper) runs on the bf16 tensor cores, W4A8 (4-bit weights
# times FP8 activations, its MXFP4 MoE on Blackwell) on the FP8 ones.
COMPUTE_DTYPES = {"w4a16": "bf16", "w4a8": "fp8"}
# Attention classes with no source of their own stand in for by another's rates: a profile builds them from it
# (calibration.fit derives them) and pricing falls back on it where a profile lacks them (older files, sol).
STAND_INS = {
    "attention_decode_bf16": "attention_fwd_bf16",
    "attention_fwd_mla_bf16": "attention_fwd_bf16",
    "attention_bwd_mla_bf16": "attention_bwd_bf16",
    "attention_fwd_window_bf16": "attention_fwd_bf16",
    "attention_fwd_window_fp8": "attention_fwd_window_bf16",  # a short window's tiles, not fp8's math, set its rate
    "attention_bwd_window_bf16": "attention_bwd_bf16",
}
# Classes a profile need not have: where one lacks it, pricing takes this class's fit instead. Unlike STAND_INS
# they are not derived into profiles, so a profile claims only the classes it measured (or derived from them).
FALLBACKS = {
    "attention_decode_mla_bf16": "attention_decode_bf16",
    "attention_decode_fp8": "attention_decode_bf16",
    "attention_decode_mla_fp8": "attention_decode_fp8",  # FP8 compute first (speed of light has it), then bf16
    "gemm_w4a16": "gemm_bf16",
    "grouped_gemm_w4a16": "grouped_gemm_bf16",
    "gemm_w4a8": "gemm_fp8",
    "grouped_gemm_w4a8": "grouped_gemm_fp8",
}
# Kernel classes a profile may fit: "<kernel>_<dtype>" for compute, "memory" for HBM-bound work.
CLASSES = (*(f"{k}_{d}" for k in KERNELS[:-1] for d in DTYPES), "memory")
# The largest root-mean-square relative error a fit may miss its own samples by and still price a run. The
# shipped GPU fits reach 22.1% (TensorRT-LLM's W4A16 MoE GEMMs, h200-trtllm: whole MoE ops over 16-16,384 tokens;
# its Hopper GQA decode attention 20.7%, head dim 64's long caches ~20% slower than one roofline per cache dtype),
# 20.5% (the internal CUTLASS FP8 GEMMs V3 ran, from DeepGEMM's table over its speedups:
# one roofline cannot follow their small-M rows, 1.4-2.7x slower) and 16.3% (DeepGEMM's FP8 table on the H800:
# its K = 512 row); the others 0-11% (CUDA events repeat within 1-2%). 25% is above all of them; past it a
# fit misses its own kernels by more than v3sim's whole compute gap to V3's training trace (17.7%,
# docs/calibration.md), so the kernel rates would be the largest error in the answer. Timings on a busy CPU
# (perf_counter, 2 threads) land at 26-50%, and a noisy run at 3,583%: those fail.
MAX_FIT_RMSE = 0.25


def shipped_profiles() -> list[str]:
    """The names of the shipped profiles (their files' stems in PROFILE_DIR)."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def kernel_class(kernel: str, dtype: str) -> str:
    """The fit a sample belongs to: `gemm_fp8`, `attention_bwd_bf16`, ... or `memory`."""
    return "memory" if kernel == "memory" else f"{kernel}_{dtype}"


def class_dtype(cls: str) -> str:
    """The dtype a compute class computes in, `kernel_class` read back: `gemm_fp8` -> fp8, `grouped_gemm_w4a16`
    -> bf16 (its peaks bound and scale the class)."""
    dtype = cls.rsplit("_", 1)[-1]
    return COMPUTE_DTYPES.get(dtype, dtype)


def peak_ratios(cls: str, src: GPUSpec, dst: GPUSpec) -> tuple[float, float]:
    """(FLOP, bytes) ratios that carry class `cls` from `src` to `dst` as the same fractions of their datasheets:
    the class dtype's dense peaks (1 for memory, which does no FLOPs) and the HBM bandwidths."""
    flops = 1.0 if cls == "memory" else dst.peak_flop_per_s(class_dtype(cls)) / src.peak_flop_per_s(class_dtype(cls))
    return flops, dst.hbm_bw_bytes_per_s / src.hbm_bw_bytes_per_s


# An MoE operator's timing enters its class's fit from this many token-expert pairs per expert: every expert's
# weights read, a tile's rows each (fewer pairs price serving's few-token steps by lookup alone).
MOE_FIT_MIN_PAIRS = 4


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed kernel. GEMMs are (m x k) @ (k x n), `groups` times (MoE grouped GEMMs); `items` the pieces of
    work its class's fit may price one by one (decode attention's sequence and KV-head pairs; 0: none).
    `op` "moe": a whole MoE operator's two grouped GEMMs (gate-up and down) timed together, its shape the
    experts' (`k` the hidden size, `n` the expert intermediate size, `groups` the GPU's experts, `m` the
    token-expert pairs each runs on average, below 1 where only that share of them gets a token): pricing looks
    such shapes up (`moe_tables`) rather than a roofline, and only those of `MOE_FIT_MIN_PAIRS` pairs or more
    enter their class's fit (`enters_fit`).
    `op` "decode": one timed decode-attention shape, `m` its cached tokens, `k` and `n` the widths it reads per
    token and KV head, `groups` the query heads per KV head (MLA: its heads over the one latent), `items` its
    (sequence, KV head) pairs: pricing looks those up too (`simulator.analytic.decodetables`).
    `timed_on` names the catalog GPU such a sample was timed on where that is not the profile's own (a GB200's
    timings in a B200 table): it prices that GPU's runs as timed and enters no fit."""

    kernel: str
    dtype: str
    flops: float
    bytes: float
    time_s: float
    m: float = 0
    n: int = 0
    k: int = 0
    groups: int = 1
    source: str = ""
    items: float = 0.0
    op: str = ""
    timed_on: str = ""

    def __post_init__(self) -> None:
        if self.timed_on and self.op != "moe":
            raise ValueError("only an MoE operator's sample may name another GPU it was timed on")
        if self.op not in SAMPLE_OPS:
            raise ValueError(f"sample op {_shown(self.op)}: use one of {', '.join(map(repr, SAMPLE_OPS))}")
        if self.kernel not in KERNELS:
            raise ValueError(f"sample kernel {_shown(self.kernel)}: use one of {', '.join(KERNELS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"sample dtype {_shown(self.dtype)}: use one of {', '.join(DTYPES)}")
        for name, least in (("m", 0), ("n", 0), ("k", 0), ("groups", 1)):
            value = getattr(self, name)
            if name == "m" and self.op == "moe" and _is(value, "number") and value > 0:
                continue  # an MoE operator's mean pairs per expert: fractional where few tokens ran
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
                raise ValueError(f"sample {name}={_shown(value)} must be an integer >= {least}")
        for name in ("flops", "bytes", "time_s", "items"):
            value = getattr(self, name)
            if not (_is(value, "number") and value >= 0):
                raise ValueError(f"sample {name}={_shown(value)} must be a finite number >= 0")
        if self.time_s <= 0:
            raise ValueError(f"sample time_s={self.time_s!r} must be > 0")
        if self.op in ("moe", "decode") and not (self.m and self.n and self.k):
            raise ValueError(f"a sample of op {self.op!r} needs its shape: m, n and k > 0")
        if self.op == "decode" and not (self.kernel.startswith("attention_decode") and self.items > 0):
            raise ValueError("a decode sample is a decode-attention kernel's, with its (sequence, KV head) pairs")

    @property
    def kernel_class(self) -> str:
        return kernel_class(self.kernel, self.dtype)

    @property
    def enters_fit(self) -> bool:
        """Whether its class's roofline fit takes it: not another GPU's MoE timing, nor an MoE operator timed at
        so few pairs per expert that its fixed costs and idle experts, not FLOPs or bytes, set its time."""
        return not self.timed_on and not (self.op == "moe" and self.m < MOE_FIT_MIN_PAIRS)

    @property
    def flop_per_s(self) -> float:
        return self.flops / self.time_s


@dataclass(frozen=True, slots=True)
class RateCaps:
    """The fastest rates a kernel class may be modelled at: a datasheet's dense peak FLOP/s for the class's dtype
    and its HBM bytes/s (infinite: no datasheet to bound by)."""

    flop_per_s: float = math.inf
    bytes_per_s: float = math.inf

    @classmethod
    def of(cls, gpu: GPUSpec | None, kernel_cls: str) -> RateCaps:
        """`gpu`'s datasheet for `kernel_cls`: unbounded without a GPU, FLOPs unbounded without a peak for the
        dtype (the memory class does none)."""
        if gpu is None:
            return cls()
        peak = 0.0 if kernel_cls == "memory" else getattr(gpu, f"peak_{class_dtype(kernel_cls)}_flop_per_s")
        return cls(peak or math.inf, gpu.hbm_bw_bytes_per_s)


@dataclass(frozen=True, slots=True)
class KernelFit:
    """time_s = max(flops / flop_per_s, bytes / bytes_per_s) + items * item_s + overhead_s (an infinite rate
    drops its term)."""

    flop_per_s: float = math.inf
    bytes_per_s: float = math.inf
    overhead_s: float = 0.0
    samples: int = 0
    rel_rmse: float = 0.0  # root-mean-square relative error of the fit over its samples
    derived_from: str = ""  # set when the class had no samples and was derived from another
    item_s: float = 0.0  # seconds per piece of work (a thread block's fixed cost over all the SMs); 0: none

    def __post_init__(self) -> None:
        if not (self.flop_per_s > 0 and self.bytes_per_s > 0 and self.overhead_s >= 0 and self.item_s >= 0):
            raise ValueError(f"fit rates must be > 0 and overhead and item cost >= 0, got {self}")
        if math.isinf(self.flop_per_s) and math.isinf(self.bytes_per_s) and self.overhead_s == self.item_s == 0:
            raise ValueError("a fit needs at least one finite term")
        if not (self.samples >= 0 and self.rel_rmse >= 0):
            raise ValueError(f"fit samples={self.samples} and rel_rmse={self.rel_rmse} must be >= 0")

    @property
    def passes(self) -> bool:
        """Whether the fit follows its own samples within MAX_FIT_RMSE (a fit that fails prices nothing)."""
        return self.rel_rmse <= MAX_FIT_RMSE

    def time_s(self, flops: float, bytes_moved: float = 0.0, items: float = 0.0) -> float:
        """Seconds for a kernel doing `flops` and moving `bytes_moved` over `items` pieces of work: the slower of
        the two, plus each piece's cost and the overhead."""
        return max(flops / self.flop_per_s, bytes_moved / self.bytes_per_s) + items * self.item_s + self.overhead_s

    def within(self, caps: RateCaps) -> KernelFit:
        """The same fit, no rate above `caps`."""
        flop_per_s, bytes_per_s = min(self.flop_per_s, caps.flop_per_s), min(self.bytes_per_s, caps.bytes_per_s)
        return replace(self, flop_per_s=flop_per_s, bytes_per_s=bytes_per_s)

    def scaled(self, flop_ratio: float, bytes_ratio: float, note: str = "") -> KernelFit:
        """The same kernel on a device `flop_ratio` / `bytes_ratio` times as fast (its pieces of work, run on
        the SMs, at the FLOP ratio)."""
        return KernelFit(
            self.flop_per_s * flop_ratio,
            self.bytes_per_s * bytes_ratio,
            self.overhead_s,
            self.samples,
            self.rel_rmse,
            note or self.derived_from,
            self.item_s / flop_ratio,
        )


@dataclass(frozen=True, slots=True)
class Profile:
    """A device's kernel samples and fits. `catalog_gpu` names the hwmodels GPU it was measured on, if any."""

    name: str
    kind: str
    device: str
    catalog_gpu: str | None
    fits: dict[str, KernelFit]
    samples: tuple[Sample, ...] = ()
    source: str = ""
    created: str = ""
    torch_version: str = ""
    cuda_version: str = ""
    notes: tuple[str, ...] = field(default=())
    # element-wise class -> its share of the HBM datasheet, where this profile measured one (a trace does);
    # the others come from hwmodels/data/kernels/elementwise.toml
    elementwise_share: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for cls, share in self.elementwise_share.items():
            if not (is_finite_number(share) and 0 < share <= 1):
                raise ValueError(f"profile {self.name}: element-wise share {cls}={_shown(share)} must be in (0, 1]")
        if self.kind not in KINDS:
            raise ValueError(f"profile {self.name}: kind {_shown(self.kind)}, use one of {', '.join(KINDS)}")
        unknown = sorted(set(self.fits) - set(CLASSES))
        if unknown:
            shown = clean_text(", ".join(unknown), 120)
            raise ValueError(f"profile {self.name}: unknown kernel classes {shown}; known: {', '.join(CLASSES)}")
        if not self.fits:
            raise ValueError(f"profile {self.name}: no fits")

    def to_dict(self) -> dict:
        def fit_dict(f: KernelFit) -> dict:
            out = asdict(f)
            for key in ("flop_per_s", "bytes_per_s"):
                out[key] = None if math.isinf(out[key]) else out[key]
            if not out["item_s"]:
                del out["item_s"]  # most classes price no pieces of work: their files stay as they were
            return out

        def sample_dict(s: Sample) -> dict:
            out = asdict(s)
            for key in ("items", "op", "timed_on"):
                if not out[key]:
                    del out[key]  # most samples price neither: their files stay as they were
            return out

        return {
            "schema": SCHEMA,
            "version": VERSION,
            "name": self.name,
            "kind": self.kind,
            "device": self.device,
            "catalog_gpu": self.catalog_gpu,
            "created": self.created,
            "torch_version": self.torch_version,
            "cuda_version": self.cuda_version,
            "source": self.source,
            "notes": list(self.notes),
            "fits": {k: fit_dict(v) for k, v in sorted(self.fits.items())},
            **({"elementwise_share": dict(sorted(self.elementwise_share.items()))} if self.elementwise_share else {}),
            "samples": [sample_dict(s) for s in self.samples],
        }


# Each key of a profile file, a fit and a sample, with its type: "number" (finite; not a bool or a string),
# "rate" (a number, or null: infinite), "int", "str", "str?" (a string or null), "list", "dict".
PROFILE_KEYS = {
    "schema": "str",
    "version": "int",
    "name": "str",
    "kind": "str",
    "device": "str",
    "catalog_gpu": "str?",
    "created": "str",
    "torch_version": "str",
    "cuda_version": "str",
    "source": "str",
    "notes": "list",
    "fits": "dict",
    "elementwise_share": "dict",
    "samples": "list",
}
PROFILE_REQUIRED = ("schema", "version", "name", "kind", "device", "fits")
FIT_KEYS = {
    "flop_per_s": "rate",
    "bytes_per_s": "rate",
    "overhead_s": "number",
    "samples": "int",
    "rel_rmse": "number",
    "derived_from": "str",
    "item_s": "number",
}
SAMPLE_KEYS = {
    "kernel": "str",
    "dtype": "str",
    "flops": "number",
    "bytes": "number",
    "time_s": "number",
    "m": "number",
    "n": "int",
    "k": "int",
    "groups": "int",
    "source": "str",
    "items": "number",
    "op": "str",
    "timed_on": "str",
}
_KIND_WORDS = {
    "number": "a finite number",
    "rate": "a number or null",
    "int": "an integer",
    "str": "a string",
    "str?": "a string or null",
    "list": "a list",
    "dict": "an object",
}


def _is(value: object, kind: str) -> bool:
    """Whether `value` is of `kind` (a key of _KIND_WORDS); a bool is never a number."""
    if kind in ("number", "rate"):
        if value is None:
            return kind == "rate"
        return is_finite_number(value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "str?":
        return value is None or isinstance(value, str)
    return isinstance(value, {"str": str, "list": list, "dict": dict}[kind])


def check_fields(data: object, keys: dict[str, str], where: str, required: tuple[str, ...] = ()) -> dict:
    """`data` checked against `keys`: an object, no unknown key, the required ones present, each of its type."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object of named fields, not {type(data).__name__}")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ValueError(f"{where}: unknown field {clean_text(unknown[0], 60)!r}; known: {', '.join(keys)}")
    for key in required:
        if key not in data:
            raise ValueError(f"{where}: missing field {key!r}")
    for key, value in data.items():
        if not _is(value, keys[key]):
            raise ValueError(f"{where}: {key}={clean_text(repr(value), 60)} must be {_KIND_WORDS[keys[key]]}")
    return data


def profile_from_dict(data: object, origin: str = "profile") -> Profile:
    """A Profile from parsed JSON, checked field by field with its type (a `true` is not version 1, a string
    is not a rate, unknown fields are refused); any defect is a one-line ValueError naming `origin`."""
    d = check_fields(data, PROFILE_KEYS, origin, PROFILE_REQUIRED)
    if d["schema"] != SCHEMA:
        raise ValueError(f"{origin}: not a v3sim calibration profile (schema {clean_text(d['schema'], 60)!r})")
    if d["version"] != VERSION:
        raise ValueError(f"{origin}: profile version {_shown(d['version'])}, this v3sim reads version {VERSION}")
    try:
        fits = {}
        for cls, raw in d["fits"].items():
            if cls not in CLASSES:
                shown = clean_text(cls, 60)
                raise ValueError(f"{origin}: unknown kernel class {shown!r}; known: {', '.join(CLASSES)}")
            f = check_fields(raw, FIT_KEYS, f"{origin}: fit {cls}")
            rates = {k: math.inf if f.get(k) is None else float(f[k]) for k in ("flop_per_s", "bytes_per_s")}
            fits[cls] = KernelFit(
                **rates,
                overhead_s=float(f.get("overhead_s", 0.0)),
                samples=f.get("samples", 0),
                rel_rmse=float(f.get("rel_rmse", 0.0)),
                derived_from=f.get("derived_from", ""),
                item_s=float(f.get("item_s", 0.0)),
            )
        samples = tuple(
            Sample(**check_fields(raw, SAMPLE_KEYS, f"{origin}: sample {i}", tuple(SAMPLE_KEYS)[:5]))
            for i, raw in enumerate(d.get("samples", []))
        )
        notes = d.get("notes", [])
        if not all(isinstance(n, str) for n in notes):
            raise ValueError("notes must be a list of strings")
        shares = d.get("elementwise_share", {})
        known = elementwise_rates().share
        for cls, share in shares.items():
            if cls not in known:
                raise ValueError(f"unknown element-wise class {clean_text(cls, 60)!r}; known: {', '.join(known)}")
            if not _is(share, "number"):
                raise ValueError(f"element-wise share {cls}={clean_text(repr(share), 60)} must be a number")
        return Profile(
            name=clean_text(d["name"], 120),
            kind=d["kind"],
            device=clean_text(d["device"], 120),
            catalog_gpu=clean_text(d.get("catalog_gpu") or "", 120) or None,
            fits=fits,
            samples=samples,
            source=clean_text(d.get("source", ""), 1000),
            created=clean_text(d.get("created", ""), 60),
            torch_version=clean_text(d.get("torch_version", ""), 60),
            cuda_version=clean_text(d.get("cuda_version", ""), 60),
            notes=tuple(clean_text(n, 1000) for n in notes),
            elementwise_share={str(k): float(v) for k, v in shares.items()},
        )
    except ValueError as exc:
        if str(exc).startswith(origin):
            raise
        raise ValueError(f"{origin}: {exc}") from None


def read_profile(path: str | Path) -> Profile:
    """A profile from a JSON file (a regular file of at most MAX_PROFILE_BYTES, strict JSON)."""
    where = clean_text(path)
    text = read_text(path, "profile file", MAX_PROFILE_BYTES)
    return profile_from_dict(loads_json(text, where), where)


def write_profile(profile: Profile, path: str | Path) -> Path:
    """Write `profile` as indented JSON (creating the folder), whole or not at all; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps_json(profile.to_dict(), indent=1) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def _shown(value: object) -> str:
    """`value` as an error shows it: its repr, without control characters, at most 60 characters."""
    return clean_text(repr(value), 60)

"""Efficiency profiles: achieved kernel throughput on one device, read as plain data.

A profile says how fast the kernels a training step is made of run on the
device it was measured on (fp8 / bf16 GEMMs, attention, HBM-bound ops). Its
figures are stored as achieved rates and used as fractions of that device's
peaks, so a profile from one GPU can be applied to another of the same
generation (stated in the report when it is).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from hwmodels.registry import load_gpu
from hwmodels.specs import GPUSpec

PROFILE_DIR = Path(__file__).parent / "data" / "profiles"
DEFAULT_PROFILE = "h800-published"
TERA = 1e12


@dataclass(frozen=True, slots=True)
class EfficiencyProfile:
    """Fractions of the device's peaks that each kernel class reaches."""

    name: str
    device: str
    fp8_dense_gemm: float  # of the fp8 peak
    fp8_grouped_gemm: float  # of the fp8 peak (MoE grouped GEMMs)
    bf16_gemm: float  # of the bf16 peak
    attention_fwd: float  # of the bf16 peak
    attention_bwd: float  # of the bf16 peak
    hbm: float  # of the HBM bandwidth
    source: str

    def __post_init__(self) -> None:
        for field in ("fp8_dense_gemm", "fp8_grouped_gemm", "bf16_gemm", "attention_fwd", "attention_bwd", "hbm"):
            value = getattr(self, field)
            if not 0 < value <= 1:
                raise ValueError(f"profile {self.name}: {field}={value:.3f} must be a fraction of peak in (0, 1]")


def profile_from_dict(name: str, data: dict, gpu: GPUSpec) -> EfficiencyProfile:
    """A profile from its TOML tables of achieved TFLOPS and GB/s, as fractions of `gpu`'s peaks."""
    try:
        gemm, attn, mem = data["gemm"], data["attention"], data["memory"]
        fp8, bf16 = gpu.peak_flop_per_s("fp8"), gpu.peak_flop_per_s("bf16")
        return EfficiencyProfile(
            name=data.get("name", name),
            device=data["device"],
            fp8_dense_gemm=gemm["fp8_dense_tflops"] * TERA / fp8,
            fp8_grouped_gemm=gemm["fp8_grouped_tflops"] * TERA / fp8,
            bf16_gemm=gemm["bf16_tflops"] * TERA / bf16,
            attention_fwd=attn["bf16_fwd_tflops"] * TERA / bf16,
            attention_bwd=attn["bf16_bwd_tflops"] * TERA / bf16,
            hbm=mem["hbm_gb_per_s"] * 1e9 / gpu.hbm_bw_bytes_per_s,
            source=data.get("source", ""),
        )
    except KeyError as exc:
        raise ValueError(f"profile {name}: missing {exc.args[0]!r}") from None
    except ZeroDivisionError:
        raise ValueError(f"profile {name}: device {data.get('device')} has no fp8 peak") from None


def load_profile(name_or_path: str = DEFAULT_PROFILE) -> EfficiencyProfile:
    """A profile by name (simulator/data/profiles) or from a TOML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
        raise ValueError(f"unknown profile {name_or_path!r}; use one of {names} or a .toml path")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"profile {path}: {exc}") from None
    try:
        gpu = load_gpu(str(data.get("device", "")).lower())
    except ValueError:
        raise ValueError(f"profile {path}: unknown device {data.get('device')!r}") from None
    return profile_from_dict(path.stem, data, gpu)

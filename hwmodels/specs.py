"""Hardware specs: GPUs, NICs and nodes, as frozen dataclasses in SI units.

Data files quote vendor units (TFLOPS, GB, TB/s, Gb/s; decimal); the `*_from_dict`
constructors convert them once. A key a file lacks, or one it has that is not
known, is an error naming the file and the key (as Calculon loads its configs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hwmodels.files import clean_text, is_finite_number
from hwmodels.units import GB, GIB, MIB

DTYPES = ("fp32", "tf32", "bf16", "fp8", "fp4")
SCALEUP_KINDS = ("nvlink", "infinity-fabric")


@dataclass(frozen=True, slots=True)
class GPUSpec:
    """One accelerator: dense peak FLOP/s per dtype, HBM, scale-up bandwidth, SMs, power, price."""

    name: str
    vendor: str
    peak_fp32_flop_per_s: float
    peak_tf32_flop_per_s: float
    peak_bf16_flop_per_s: float
    peak_fp8_flop_per_s: float  # 0 where the tensor cores have no fp8 (A100)
    peak_fp4_flop_per_s: float  # 0 before Blackwell
    hbm_bytes: float  # what a program sees: the device's own total where the file gives it, else the datasheet's
    hbm_bw_bytes_per_s: float
    scaleup: str
    scaleup_bw_bytes_per_s_bidir: float  # NVLink / Infinity Fabric, both directions together
    sm_count: int
    board_power_w: float
    price_usd_per_gpu_hour: float
    source: str
    die: str = ""  # the silicon (gh100 for the H100, H800, H200, H20): GPUs of one die share a kernel table
    hbm_datasheet_bytes: float = 0.0  # the datasheet's capacity ("80 GB"); 0: hbm_bytes is the datasheet's
    hbm_source: str = ""  # where hbm_bytes comes from when it is not the datasheet's

    def __post_init__(self) -> None:
        _check_text_and_numbers(self)
        for field in (
            "peak_fp32_flop_per_s",
            "peak_bf16_flop_per_s",
            "hbm_bytes",
            "hbm_bw_bytes_per_s",
            "scaleup_bw_bytes_per_s_bidir",
            "sm_count",
            "board_power_w",
            "price_usd_per_gpu_hour",
        ):
            _check_positive(self.name, field, getattr(self, field))
        for field in ("peak_tf32_flop_per_s", "peak_fp8_flop_per_s", "peak_fp4_flop_per_s", "hbm_datasheet_bytes"):
            if getattr(self, field) < 0:
                raise ValueError(f"{self.name}: {field} must be >= 0")
        if self.scaleup not in SCALEUP_KINDS:
            shown = clean_text(repr(self.scaleup), 80)
            raise ValueError(f"{self.name}: scaleup={shown}; use one of {', '.join(SCALEUP_KINDS)}")

    @property
    def scaleup_bw_bytes_per_s(self) -> float:
        """Scale-up bandwidth per direction (half the bidirectional figure vendors quote)."""
        return self.scaleup_bw_bytes_per_s_bidir / 2

    def memory_text(self) -> str:
        """HBM as messages state it: the bytes a program sees and, where the datasheet counts otherwise, its figure
        (vendors' "80 GB" are binary gigabytes: an H100 shows 81,559 MiB, 85.5 GB)."""
        shown = f"{self.hbm_bytes / GB:.1f} GB"
        if self.hbm_datasheet_bytes and self.hbm_datasheet_bytes != self.hbm_bytes:
            shown += f" ({self.hbm_bytes / GIB:.1f} GiB; its datasheet's {self.hbm_datasheet_bytes / GB:g} GB)"
        return shown

    def peak_flop_per_s(self, dtype: str) -> float:
        """Dense peak FLOP/s for `dtype`; an error if the GPU has no tensor-core support for it."""
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
        peak = getattr(self, f"peak_{dtype}_flop_per_s")
        if not peak:
            raise ValueError(f"{self.name} has no {dtype} tensor cores; use bf16")
        return peak


@dataclass(frozen=True, slots=True)
class NICSpec:
    """A scale-out network adapter: line rate and the bandwidth one can actually reach."""

    name: str
    line_rate_bits_per_s: float
    effective_bw_bytes_per_s: float  # per direction, as achieved (ISCA: 40 GB/s of CX7's 50)
    latency_s: float  # one message across one switch, less that switch's own latency (endpoint overhead)
    source: str

    def __post_init__(self) -> None:
        _check_text_and_numbers(self)
        _check_positive(self.name, "line_rate_bits_per_s", self.line_rate_bits_per_s)
        _check_positive(self.name, "effective_bw_bytes_per_s", self.effective_bw_bytes_per_s)
        if not self.latency_s >= 0:
            raise ValueError(f"{self.name}: latency_s={self.latency_s!r} must be >= 0")
        if self.effective_bw_bytes_per_s > self.bw_bytes_per_s:
            raise ValueError(f"{self.name}: effective bandwidth exceeds the line rate")

    @property
    def bw_bytes_per_s(self) -> float:
        """Line rate per direction in bytes/s (400 Gb/s -> 50e9 B/s)."""
        return self.line_rate_bits_per_s / 8


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A server (or a rack-scale NVLink domain): its GPUs, scale-up domain, NICs and PCIe."""

    name: str
    gpu: GPUSpec
    gpus_per_node: int
    scaleup_domain_gpus: int
    nic: NICSpec
    nics_per_node: int
    pcie_bw_bytes_per_s: float  # per GPU, per direction
    scaleup_efficiency: float  # achieved / peak scale-up bandwidth per direction (ISCA, H800: 160 of 200 GB/s)
    scaleup_latency_s: float  # one message over NVLink / Infinity Fabric
    source: str
    storage_bw_bytes_per_s: float = 0.0  # per node: reads from a shared store (3FS) of cached KV; 0: none
    tray_gpus: int = 0  # the smallest block of GPUs a job can take in the node (a GB200 tray: 4); 0: whole nodes
    rack: NodeSpec | None = None  # the whole node, where this is a job's share of it (`job_share`)

    def __post_init__(self) -> None:
        _check_text_and_numbers(self)
        if not self.storage_bw_bytes_per_s >= 0:
            raise ValueError(f"{self.name}: storage_bw_bytes_per_s must be >= 0")
        if self.tray_gpus < 0 or (self.tray_gpus and self.gpus_per_node % self.tray_gpus):
            raise ValueError(f"{self.name}: tray_gpus={self.tray_gpus} must divide gpus_per_node={self.gpus_per_node}")
        for field in ("gpus_per_node", "scaleup_domain_gpus", "nics_per_node", "pcie_bw_bytes_per_s"):
            _check_positive(self.name, field, getattr(self, field))
        if not 0 < self.scaleup_efficiency <= 1:
            raise ValueError(f"{self.name}: scaleup_efficiency={self.scaleup_efficiency} must be in (0, 1]")
        if self.scaleup_latency_s < 0:
            raise ValueError(f"{self.name}: scaleup_latency_s must be >= 0")
        if self.scaleup_domain_gpus % self.gpus_per_node and self.gpus_per_node % self.scaleup_domain_gpus:
            raise ValueError(f"{self.name}: scaleup_domain_gpus must divide or be a multiple of gpus_per_node")

    @property
    def scaleout_bw_bytes_per_s_per_gpu(self) -> float:
        """Line-rate scale-out bandwidth per GPU and direction."""
        return self.nics_per_node * self.nic.bw_bytes_per_s / self.gpus_per_node

    @property
    def scaleout_achieved_bw_bytes_per_s_per_gpu(self) -> float:
        """Achieved scale-out bandwidth per GPU and direction (the NICs' effective rate)."""
        return self.nics_per_node * self.nic.effective_bw_bytes_per_s / self.gpus_per_node

    @property
    def scaleup_achieved_bw_bytes_per_s(self) -> float:
        """Achieved scale-up bandwidth per GPU and direction."""
        return self.gpu.scaleup_bw_bytes_per_s * self.scaleup_efficiency


@dataclass(frozen=True, slots=True)
class SwitchSpec:
    """A network switch and the price of what the cost model counts per switch and per inter-switch link."""

    name: str
    ports: int
    port_rate_bits_per_s: float
    latency_s: float  # port to port
    price_usd: float  # the switch with optics in every port
    isl_price_usd: float  # one switch-to-switch link beyond its two ports (the fiber)
    source: str
    price_source: str

    def __post_init__(self) -> None:
        _check_text_and_numbers(self)
        for field in ("ports", "port_rate_bits_per_s", "latency_s", "price_usd", "isl_price_usd"):
            _check_positive(self.name, field, getattr(self, field))

    @property
    def port_bw_bytes_per_s(self) -> float:
        """Port line rate per direction in bytes/s."""
        return self.port_rate_bits_per_s / 8


GPU_KEYS = {
    "source": str,
    "vendor": str,
    "fp32_tflops": float,
    "tf32_dense_tflops": float,
    "bf16_dense_tflops": float,
    "fp8_dense_tflops": float,
    "fp4_dense_tflops": float,
    "hbm_gb": float,
    "hbm_total_mib": float,  # optional: memory.total as nvidia-smi (or rocm-smi, over 2**20) reports it
    "hbm_total_source": str,  # required with hbm_total_mib: where that total was read
    "hbm_tb_per_s": float,
    "scaleup": str,
    "scaleup_gb_per_s_bidirectional": float,
    "sms": int,
    "board_power_w": float,
    "price_usd_per_gpu_hour": float,
    "die": str,  # optional ("": a die of its own)
}
NIC_KEYS = {"source": str, "line_rate_gbit_per_s": float, "effective_gb_per_s": float, "latency_us": float}
NODE_KEYS = {
    "source": str,
    "gpu": str,
    "gpus_per_node": int,
    "scaleup_domain_gpus": int,
    "nic": str,
    "nics_per_node": int,
    "pcie_gb_per_s": float,
    "scaleup_efficiency": float,
    "scaleup_latency_us": float,
    "storage_gb_per_s": float,  # optional (0: no shared KV store)
    "tray_gpus": int,  # optional (0: a job takes whole nodes)
}

SWITCH_KEYS = {
    "source": str,
    "ports": int,
    "port_gbit_per_s": float,
    "latency_ns": float,
    "price_usd": float,
    "isl_price_usd": float,
    "price_source": str,
}


# Counts in a hardware file, bounded so that a typo cannot build a graph or a loop the size of the machine.
MAX_COUNTS = {
    "gpus_per_node": 1024,
    "scaleup_domain_gpus": 65536,
    "nics_per_node": 1024,
    "sms": 100_000,
    "ports": 1024,
}


KIND_WORDS = {float: "a number", int: "an integer", str: "a string"}


def check_keys(data: Mapping[str, Any], keys: Mapping[str, type], where: str) -> None:
    """Raise ValueError naming `where` for a missing key, an unknown key, a value of the wrong type, a number
    that is not finite (TOML has `nan` and `inf`) or a count beyond MAX_COUNTS."""
    missing = sorted(set(keys) - set(data))
    unknown = sorted(set(data) - set(keys))
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r}")
    if unknown:
        raise ValueError(f"{where}: unknown key {clean_text(unknown[0], 80)!r}; known: {', '.join(keys)}")
    for key, kind in keys.items():
        _check_value(key, data[key], kind, where)


def _check_value(key: str, value: Any, kind: type, where: str) -> None:
    """One value of a hardware file: of type `kind` (a bool is not a number), finite, a count in bounds."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number if kind is float else isinstance(value, kind) and not isinstance(value, bool)):
        raise ValueError(f"{where}: {key}={clean_text(repr(value), 80)} must be {KIND_WORDS[kind]}")
    if key in MAX_COUNTS and not 0 < value <= MAX_COUNTS[key]:
        raise ValueError(f"{where}: {key}={clean_text(f'{value:,}', 40)} must be from 1 to {MAX_COUNTS[key]:,}")
    if number and not is_finite_number(value):
        raise ValueError(f"{where}: {key}={clean_text(value, 40)} must be a finite number")


def gpu_from_dict(name: str, d: Mapping[str, Any], where: str = "") -> GPUSpec:
    """GPUSpec from vendor units (TFLOPS, GB, TB/s, GB/s) and, where the file gives it, the memory total the device
    reports (MiB): what a program can hold, which the datasheet's decimal gigabytes understate by 7%."""
    d = {"die": "", "hbm_total_mib": 0.0, "hbm_total_source": "", **d}
    check_keys(d, GPU_KEYS, where or name)
    datasheet, total = d["hbm_gb"] * GB, d["hbm_total_mib"] * MIB
    if total and not 0.85 * datasheet <= total <= 1.15 * datasheet:
        raise ValueError(
            f"{where or name}: hbm_total_mib={d['hbm_total_mib']:,g} must be within 15% of hbm_gb={d['hbm_gb']:g} "
            "(MiB, as nvidia-smi shows memory.total)"
        )
    if total and not d["hbm_total_source"].strip():
        raise ValueError(f"{where or name}: hbm_total_mib needs hbm_total_source (where that total was read)")
    return GPUSpec(
        name=name,
        vendor=d["vendor"],
        peak_fp32_flop_per_s=d["fp32_tflops"] * 1e12,
        peak_tf32_flop_per_s=d["tf32_dense_tflops"] * 1e12,
        peak_bf16_flop_per_s=d["bf16_dense_tflops"] * 1e12,
        peak_fp8_flop_per_s=d["fp8_dense_tflops"] * 1e12,
        peak_fp4_flop_per_s=d["fp4_dense_tflops"] * 1e12,
        hbm_bytes=total or datasheet,
        hbm_bw_bytes_per_s=d["hbm_tb_per_s"] * 1e12,
        scaleup=d["scaleup"],
        scaleup_bw_bytes_per_s_bidir=d["scaleup_gb_per_s_bidirectional"] * 1e9,
        sm_count=d["sms"],
        board_power_w=d["board_power_w"],
        price_usd_per_gpu_hour=d["price_usd_per_gpu_hour"],
        source=d["source"],
        die=d["die"],
        hbm_datasheet_bytes=datasheet if total else 0.0,
        hbm_source=d["hbm_total_source"],
    )


def nic_from_dict(name: str, d: Mapping[str, Any], where: str = "") -> NICSpec:
    """NICSpec from Gb/s (line rate) and GB/s (effective)."""
    check_keys(d, NIC_KEYS, where or name)
    rate, eff = d["line_rate_gbit_per_s"] * 1e9, d["effective_gb_per_s"] * 1e9
    return NICSpec(name, rate, eff, d["latency_us"] * 1e-6, d["source"])


def switch_from_dict(name: str, d: Mapping[str, Any], where: str = "") -> SwitchSpec:
    """SwitchSpec from Gb/s and ns."""
    check_keys(d, SWITCH_KEYS, where or name)
    return SwitchSpec(
        name=name,
        ports=d["ports"],
        port_rate_bits_per_s=d["port_gbit_per_s"] * 1e9,
        latency_s=d["latency_ns"] * 1e-9,
        price_usd=d["price_usd"],
        isl_price_usd=d["isl_price_usd"],
        source=d["source"],
        price_source=d["price_source"],
    )


def node_from_dict(
    name: str,
    d: Mapping[str, Any],
    where: str,
    gpu_of: Callable[[str], GPUSpec],
    nic_of: Callable[[str], NICSpec],
) -> NodeSpec:
    """NodeSpec from GB/s and us; its GPU and NIC are names or files, resolved by `gpu_of` and `nic_of`
    (the registry's loaders) once the node's own keys are checked."""
    d = {"storage_gb_per_s": 0.0, "tray_gpus": 0, **d}
    check_keys(d, NODE_KEYS, where or name)
    return NodeSpec(
        name=name,
        gpu=gpu_of(d["gpu"]),
        gpus_per_node=d["gpus_per_node"],
        scaleup_domain_gpus=d["scaleup_domain_gpus"],
        nic=nic_of(d["nic"]),
        nics_per_node=d["nics_per_node"],
        pcie_bw_bytes_per_s=d["pcie_gb_per_s"] * 1e9,
        scaleup_efficiency=d["scaleup_efficiency"],
        scaleup_latency_s=d["scaleup_latency_us"] * 1e-6,
        source=d["source"],
        storage_bw_bytes_per_s=d["storage_gb_per_s"] * 1e9,
        tray_gpus=d["tray_gpus"],
    )


def job_share(node: NodeSpec, gpus: int) -> NodeSpec:
    """The part of each node a job of `gpus` GPUs runs on: the whole node where `gpus` is a multiple of it; else,
    where the node lends GPUs by the tray, the same number of trays from each of the fewest nodes (GB200 NVL72:
    256 GPUs are 64 of each of 4 racks, as NVIDIA's Megatron-Bridge runs take them), seen as a node of that many
    GPUs with their NICs and one NVLink domain; else the node as given (the run's check then refuses `gpus`)."""
    whole = node.rack or node
    per_node, tray = whole.gpus_per_node, whole.tray_gpus
    if gpus % per_node == 0 or not tray or gpus % tray:
        return whole
    share = max(d for d in range(tray, per_node, tray) if gpus % d == 0)
    return replace(
        whole,
        gpus_per_node=share,
        scaleup_domain_gpus=min(whole.scaleup_domain_gpus, share),
        nics_per_node=whole.nics_per_node * share // per_node,
        rack=whole,
    )


def _check_text_and_numbers(spec: object) -> None:
    """Clean every text field of `spec` (names and sources are shown in terminals and pages) and refuse a
    number that is not finite, including one that overflowed in a unit conversion (1e300 TFLOPS)."""
    for field in spec.__slots__:  # type: ignore[attr-defined]
        value = getattr(spec, field)
        if isinstance(value, str):
            object.__setattr__(spec, field, clean_text(value, 80 if field == "name" else 1000))
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{clean_text(getattr(spec, 'name', '?'), 80)}: {field}={value} must be a finite number")


def _check_positive(name: str, field: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name}: {field}={value!r} must be positive")

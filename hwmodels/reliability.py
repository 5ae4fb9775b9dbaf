"""How often a synchronous training job is interrupted: failure rates per GPU-hour and per node-hour,
derived from a published count of interruptions by root cause (`data/reliability/*.toml`).

GPU, network, software and unattributed interruptions are counted per GPU-hour (a job of twice the GPUs crosses
twice the HBM stacks and cables, and runs twice the ranks); host ones (NICs, disks, power, CPUs, unplanned
maintenance) per node-hour. A job of n GPUs on nodes of
g is interrupted at n x per_gpu + n / g x per_node per hour, each interruption stopping every rank (the
step is synchronous: Llama 3, section 3.3.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hwmodels.files import is_finite_number, loads_toml, read_text
from hwmodels.specs import check_keys
from hwmodels.units import SECONDS_PER_HOUR

DATA_DIR = Path(__file__).parent / "data" / "reliability"
STORAGE_DIR = Path(__file__).parent / "data" / "storage"
PER_GPU_CLASSES = ("gpu", "network", "software", "unknown")
PER_NODE_CLASSES = ("host",)


@dataclass(frozen=True, slots=True)
class FailureRates:
    """Interruptions per GPU-second and per node-second, by class, and where the counts come from."""

    name: str
    per_gpu_s: dict[str, float]
    per_node_s: dict[str, float]
    source: str

    def job_rate_per_s(self, gpus: int, gpus_per_node: int, classes: tuple[str, ...] | None = None) -> float:
        """Interruptions per second of a job on `gpus` GPUs in nodes of `gpus_per_node` (of `classes` only, when
        given)."""
        nodes = gpus / gpus_per_node
        per_gpu = sum(v for k, v in self.per_gpu_s.items() if classes is None or k in classes)
        per_node = sum(v for k, v in self.per_node_s.items() if classes is None or k in classes)
        return gpus * per_gpu + nodes * per_node

    def mtbf_s(self, gpus: int, gpus_per_node: int) -> float:
        """Mean seconds between a job's interruptions (inf when nothing fails)."""
        rate = self.job_rate_per_s(gpus, gpus_per_node)
        return 1 / rate if rate > 0 else float("inf")

    def scaled(self, factor: float) -> FailureRates:
        """Every rate times `factor` (0: a cluster that never fails)."""
        if not is_finite_number(factor) or factor < 0:
            raise ValueError(f"failure-rate factor {factor!r} must be a finite number >= 0")
        return FailureRates(
            self.name,
            {k: v * factor for k, v in self.per_gpu_s.items()},
            {k: v * factor for k, v in self.per_node_s.items()},
            self.source if factor == 1 else f"{self.source}, x{factor:g}",
        )


def catalog() -> list[str]:
    return _names(DATA_DIR)


@cache
def load_failure_rates(name: str = "llama3-405b") -> FailureRates:
    """The rates of a built-in count (`catalog()`), checked: positive observed GPUs and hours, counts >= 0."""
    path, data = _read(DATA_DIR, name, "failure statistics")
    counts = data.pop("interruptions", None)
    check_keys(data, {"source": str, "gpus": int, "gpus_per_node": int, "hours": float}, str(path))
    if not isinstance(counts, dict):
        raise ValueError(f"{path}: [interruptions] must be a table of counts by class")
    check_keys(counts, dict.fromkeys(PER_GPU_CLASSES + PER_NODE_CLASSES, int), f"{path} [interruptions]")
    gpus, per_node, hours = data["gpus"], data["gpus_per_node"], data["hours"]
    if min(gpus, per_node, hours) <= 0 or min(counts.values()) < 0:
        raise ValueError(f"{path}: gpus, gpus_per_node and hours must be > 0, counts >= 0")
    gpu_s, node_s = gpus * hours * SECONDS_PER_HOUR, gpus / per_node * hours * SECONDS_PER_HOUR
    return FailureRates(
        name,
        {k: counts[k] / gpu_s for k in PER_GPU_CLASSES},
        {k: counts[k] / node_s for k in PER_NODE_CLASSES},
        str(data["source"]),
    )


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.toml"))


def _read(folder: Path, name: str, what: str) -> tuple[Path, dict]:
    """A built-in entry of `folder` by name (never a path joined from user text), parsed."""
    if name not in _names(folder):
        raise ValueError(f"no {what} named {name!r}; use one of {', '.join(_names(folder))}")
    path = folder / f"{name}.toml"
    return path, loads_toml(read_text(path, what), str(path))


@dataclass(frozen=True, slots=True)
class StorageSpec:
    """Where checkpoints go: the file system's aggregate read and write rates for one job, and their source."""

    name: str
    read_bytes_per_s: float
    write_bytes_per_s: float
    source: str


def storage_catalog() -> list[str]:
    return _names(STORAGE_DIR)


@cache
def load_storage(name: str = "3fs") -> StorageSpec:
    """A built-in checkpoint store (`storage_catalog()`), its rates checked positive and finite."""
    path, data = _read(STORAGE_DIR, name, "checkpoint storage")
    check_keys(data, {"source": str, "read_bytes_per_s": float, "write_bytes_per_s": float}, str(path))
    if min(data["read_bytes_per_s"], data["write_bytes_per_s"]) <= 0:
        raise ValueError(f"{path}: read and write rates must be positive")
    return StorageSpec(name, float(data["read_bytes_per_s"]), float(data["write_bytes_per_s"]), data["source"])

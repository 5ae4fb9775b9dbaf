"""The host's launch time: what an eager training framework spends on the CPU to launch one layer's kernels,
measured span by span in a profiler trace (`data/host/*.toml`, written from `simulator.explore.hosttrace`).

A GPU whose kernels finish sooner than the host can launch them waits for the host. CUDA graphs launch a
captured region once, without that per-kernel cost. The figures here are one framework's on one host (DeepSeek's,
in V3's published trace); the simulator carries them to other models per operation of its list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hwmodels.files import is_finite_number, loads_toml, read_text

DATA_DIR = Path(__file__).parent / "data" / "host"
DEFAULT_HOST = "deepseek-v3-train"
PHASES = ("forward", "backward")


@dataclass(frozen=True, slots=True)
class HostTrace:
    """Host seconds per layer, forward and backward, and the layer they were measured on (to count its ops)."""

    name: str
    forward_s_per_layer: float
    backward_s_per_layer: float
    model: str
    tokens: int
    ep: int
    precision: str
    recompute: str  # what the traced run recomputed in its backward (its launches are in the backward's spans)
    launches_per_layer: float  # kernels launched per layer, forward and backward together
    source: str


def per_layer_s(spans: Iterable[Mapping[str, Any]], layers: int) -> dict[str, float]:
    """Host seconds per layer, forward and backward, of spans (each a `phase` and its `host_s`) that ran over a
    window of `layers` layers each way: a shipped table's rows, or a trace's (`simulator.explore.hosttrace`)."""
    out = dict.fromkeys(PHASES, 0.0)
    for row in spans:
        out[row["phase"]] += row["host_s"] / layers
    return out


@cache
def load_host_trace(name: str = DEFAULT_HOST) -> HostTrace:
    """A shipped host-time reduction by name (hwmodels/data/host/NAME.toml); a one-line ValueError if malformed."""
    path = DATA_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in DATA_DIR.glob("*.toml")))
        raise ValueError(f"no host-time table {name!r}; shipped: {known}")
    data = loads_toml(read_text(path, "host-time table"), path.name)
    layers = data.get("layers")
    if not isinstance(layers, int) or isinstance(layers, bool) or layers <= 0:
        raise ValueError(f"{path.name}: layers must be a positive integer")
    rows = data.get("span", {})
    for span, row in rows.items():
        phase, host_s, count = row.get("phase"), row.get("host_s"), row.get("launches")
        if phase not in PHASES or not is_finite_number(host_s) or not is_finite_number(count) or min(host_s, count) < 0:
            raise ValueError(f"{path.name}: span {span!r} needs phase forward/backward, host_s and launches >= 0")
    per_phase = per_layer_s(rows.values(), layers)
    launches = sum(row["launches"] for row in rows.values()) / layers
    if not all(per_phase.values()):
        raise ValueError(f"{path.name}: needs forward and backward spans")
    return HostTrace(
        name=str(data["name"]),
        forward_s_per_layer=per_phase["forward"],
        backward_s_per_layer=per_phase["backward"],
        model=str(data["model"]),
        tokens=int(data["tokens"]),
        ep=int(data["ep"]),
        precision=str(data["precision"]),
        recompute=str(data["recompute"]),
        launches_per_layer=launches,
        source=str(data["source"]),
    )

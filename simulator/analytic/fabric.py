"""What the topology does to a run's communication: the fast network model on the run's own fabric.

Each pattern the analytic model prices across nodes (the expert all-to-all's network legs, the pipeline's
sends, the data-parallel rings) is routed on the run's real topology, ECMP, taper, planes and rails included,
and timed by its busiest link (`hwmodels.routing.link_loads` over the capacities: the flow model's makespan for
these patterns, tests/simulator/test_fabric.py). A pattern's factor is its busiest switch link's time over its NICs'
own time: 1 or less where the NICs are the limit (a full fat tree with ideal routing, V3's multi-plane tree),
above 1 where taper or ECMP collisions make the switches the limit. Patterns scale with their bytes, so each
factor is computed once per (fabric, layout, routing) from unit bytes and cached: in the process, and on disk
(`FactorCache`: a command that finds them there never imports the router, networkx or scipy).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import astuple, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwmodels.files import loads_json, write_atomic
from hwmodels.registry import load_switch
from hwmodels.specs import NodeSpec
from hwmodels.topology import TopologySpec, design_topology, topology_kind
from simulator.analytic.memo import Memo
from simulator.runspec import RunSpec

if TYPE_CHECKING:
    from hwmodels.routing import Fabric

SWITCH = "ib-ndr-64"  # V3's 64-port 400G InfiniBand switch (hwmodels/data/switches)
UNIT = {"dispatch_ib": 1.0, "dispatch_nvlink": 0.0, "combine_ib": 1.0, "combine_nvlink": 0.0}


@dataclass(frozen=True, slots=True)
class FabricFactors:
    """Busiest switch link's seconds over the NICs' seconds, per pattern (0: the pattern never reaches a
    switch link)."""

    dispatch: float  # the expert dispatch's network legs
    combine: float
    pp: float  # every stage's sends to the next stage at once
    dp: float  # every stage's data-parallel rings at once


def run_fabric(run: RunSpec) -> Fabric:
    """The run's topology with its GPUs attached (built once per topology, node and GPU count)."""
    return _fabric(run.topology_spec, run.node, run.gpus)


@lru_cache(maxsize=64)
def _fabric(spec: TopologySpec, node: NodeSpec, gpus: int) -> Fabric:
    from hwmodels.routing import build_fabric

    return build_fabric(spec, node, load_switch(SWITCH), gpus)


_FACTORS: Memo[FabricFactors] = Memo(4096)  # by what sets them: the estimate asks for them many times


def fabric_factors(run: RunSpec) -> FabricFactors:
    """The run's factors: its EP groups' all-to-all, its pipeline sends and its DP rings on its fabric."""
    key = (run.topology, run.radix, run.oversubscription, run.node, run.gpus, run.ep, run.pp, run.ecmp)
    return _FACTORS.get(key, (), lambda: FactorCache.here().get(key, run))


# The modules whose code sets the factors: a change to any of them retires what the disk cache holds.
SOURCES = ("hwmodels.routing", "hwmodels.traffic", "hwmodels.topology", "simulator.analytic.fabric")
CACHE_ENV = "V3SIM_CACHE_DIR"  # where factors are kept between commands; "off" keeps none


@dataclass(frozen=True, slots=True)
class FactorCache:
    """Fabric factors kept on disk between commands, one small JSON file per run key and code version (what
    routing a 2,048-GPU fabric costs, about 0.1-0.3 s and the router's imports, is paid once per machine).
    A file that is missing, unreadable or malformed is computed again; one that cannot be written is skipped:
    the cache never changes an answer, and it can be cleared by deleting its folder."""

    folder: Path | None

    @staticmethod
    def here() -> FactorCache:
        where = os.environ.get(CACHE_ENV)
        if where == "off":
            return FactorCache(None)
        if not where:
            where = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "v3sim")
        return FactorCache(Path(where) / "fabric-factors")

    def get(self, key: tuple, run: RunSpec) -> FabricFactors:
        path = self.folder / f"{_digest(key)}.json" if self.folder else None
        if path is not None:
            try:
                values = loads_json(path.read_text(encoding="utf-8"), str(path))
                if isinstance(values, list) and len(values) == 4 and all(isinstance(v, float) for v in values):
                    return FabricFactors(*values)
            except (OSError, ValueError, UnicodeDecodeError):
                pass  # not there, or not ours: computed again
        factors = _factors(run_fabric(run), run.ep, run.pp, run.ecmp)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, lambda tmp: tmp.write_text(json.dumps(list(astuple(factors))), encoding="utf-8"))
            except OSError:
                pass  # a read-only home: the answer stands, only the next command recomputes it
        return factors


def _digest(key: tuple) -> str:
    """The run key (its node and switch in full) and the code version, as a file name."""
    text = repr((key, load_switch(SWITCH), _code_version()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@lru_cache(maxsize=1)
def _code_version() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        origin = importlib.util.find_spec(name).origin  # type: ignore[union-attr]
        digest.update(Path(str(origin)).read_bytes())
    return digest.hexdigest()


def _factors(fabric: Fabric, ep: int, pp: int, ecmp: str) -> FabricFactors:
    return FabricFactors(*_ep_factors(fabric, ep, ecmp), *_stage_factors(fabric, pp, ecmp))


def _switch_factor(fabric: Fabric, src: np.ndarray, dst: np.ndarray, size: np.ndarray, ecmp: str) -> float:
    """Busiest switch link's time over the busiest NIC link's time of the transfers (0 if none cross a NIC)."""
    from hwmodels.routing import link_loads, transfer_links

    if not len(src):
        return 0.0
    # a stage boundary inside a node puts PP and DP peers on other planes: forwarded over NVLink (NCCL's PXN)
    routed = transfer_links(fabric, src, dst, ecmp, cross_planes=True)[:3]
    time_s = link_loads(fabric, *routed, size) / fabric.capacity_bytes_per_s
    switch_links, g = len(fabric.switch_link_key), fabric.gpus
    nic_s = time_s[switch_links : switch_links + 2 * g].max(initial=0.0)
    return float(time_s[:switch_links].max(initial=0.0) / nic_s) if nic_s > 0 else 0.0


@lru_cache(maxsize=256)
def _ep_factors(fabric: Fabric, ep: int, ecmp: str) -> tuple[float, float]:
    """(dispatch, combine) factors of every EP group's uniform all-to-all at once (1 byte per GPU per leg)."""
    from hwmodels.traffic import moe_transfers

    g = fabric.node.gpus_per_node
    if ep <= g or ep % g:  # inside a node: NVLink only
        return 0.0, 0.0
    out = []
    for phase in ("dispatch", "combine"):
        src, dst, size = moe_transfers(fabric, ep, 1.0, UNIT, phase)
        out.append(_switch_factor(fabric, src, dst, size, ecmp))
    return out[0], out[1]


@lru_cache(maxsize=256)
def _stage_factors(fabric: Fabric, pp: int, ecmp: str) -> tuple[float, float]:
    """(pp, dp) factors: stage s's GPUs send to stage s + 1's; each stage's GPUs run their rings (NCCL's
    rail-aligned rings over the stage's nodes, `hwmodels.traffic.ring_transfers`)."""
    from hwmodels.traffic import ring_transfers, stage_sends

    src, dst = stage_sends(fabric.gpus, pp)
    pp_factor = _switch_factor(fabric, src, dst, np.ones(len(src)), ecmp) if pp > 1 else 0.0
    per_stage = fabric.gpus // pp
    ring_src, ring_dst, ring_size = ring_transfers(fabric, per_stage, 1.0)
    offset = np.repeat(np.arange(pp) * per_stage, len(ring_src))
    dp_factor = _switch_factor(
        fabric, np.tile(ring_src, pp) + offset, np.tile(ring_dst, pp) + offset, np.tile(ring_size, pp), ecmp
    )
    return pp_factor, dp_factor


@lru_cache(maxsize=256)
def pool_transfer_factor(
    kind: str, oversubscription: float, node: NodeSpec, senders: int, receivers: int, ecmp: str = "hash"
) -> float:
    """The busiest switch link's factor of a disaggregated deployment's KV transfer: the prefill pool's
    `senders` GPUs each sending to a GPU of the decode pool's `receivers` (placed after them on the fabric),
    all at once (0: no switch link is crossed)."""
    g = node.gpus_per_node
    gpus = -(-(senders + receivers) // g) * g
    planes = node.nics_per_node if topology_kind(kind).planes != "none" else None
    spec = design_topology(kind, 64, gpus, planes, oversubscription)
    fabric = _fabric(spec, node, gpus)
    src = np.arange(senders, dtype=np.int64)
    dst = senders + src % receivers
    return _switch_factor(fabric, src, dst, np.ones(senders), ecmp)

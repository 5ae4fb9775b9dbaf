"""Kernel classes beyond the fitted profile: element-wise kernels at a measured share of the HBM datasheet,
DeepEP's all-to-all kernels at the rate their SMs reach, HybridEP's by its ranks and SMs, and NVLink collectives as
timed inside one node.

Read from hwmodels/data/kernels/elementwise.toml, deepep.toml, hybridep.toml and collectives.toml (their sources
are in the files). An element-wise share carries across dies of one family (H100, H800, H200) as a share, to
another die times that die's factor (the same benchmark's kernels on both dies); the fixed cost is per kernel. A
DeepEP or HybridEP table is per GPU, or its die's; a collectives table per GPU, or its die's where the NVLink's
datasheet rate is the same.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from hwmodels.files import loads_toml, read_text
from hwmodels.specs import GPUSpec

ELEMENTWISE_PATH = Path(__file__).parent / "data" / "kernels" / "elementwise.toml"
DEEPEP_PATH = Path(__file__).parent / "data" / "kernels" / "deepep.toml"
DEEPEP_KINDS = ("dispatch", "combine")
HYBRIDEP_PATH = Path(__file__).parent / "data" / "kernels" / "hybridep.toml"
HYBRIDEP_DOMAINS = ("ib", "nvlink")  # the links a HybridEP table's rates are for (hybridep.toml)
COLLECTIVES_PATH = Path(__file__).parent / "data" / "kernels" / "collectives.toml"
# NCCL's in-node collectives and TensorRT-LLM's tensor-parallel all-reduce (hwmodels/data/kernels/collectives.toml)
COLLECTIVE_KINDS = ("all_gather", "reduce_scatter", "all_to_all", "all_reduce", "custom_all_reduce")


@dataclass(frozen=True, slots=True)
class ElementwiseRates:
    """Each element-wise class's share of the HBM datasheet, and the fixed seconds every kernel pays; on a die
    of `die_factor` the shares times its factor (the same kernels reach less of another die's datasheet)."""

    share: dict[str, float]
    overhead_s: float
    source: str
    die_factor: dict[str, float] = field(default_factory=dict)
    die_overhead_s: dict[str, float] = field(default_factory=dict)

    def fixed_s(self, die: str = "") -> float:
        """The fixed seconds one kernel pays on `die`: its own small-kernel timing, else the table's."""
        return self.die_overhead_s.get(die, self.overhead_s)

    def time_s(self, kernel_class: str, nbytes: float, hbm_bytes_per_s: float, die: str = "") -> float:
        """Seconds of one kernel of `kernel_class` moving `nbytes` on a GPU of `hbm_bytes_per_s` (datasheet) whose
        die is `die`."""
        if kernel_class not in self.share:
            raise ValueError(f"no element-wise class {kernel_class!r}; known: {', '.join(self.share)}")
        share = self.share[kernel_class] * self.die_factor.get(die, 1.0)
        return nbytes / (share * hbm_bytes_per_s) + self.fixed_s(die)


@cache
def elementwise_rates() -> ElementwiseRates:
    """The shipped element-wise table."""
    data = loads_toml(read_text(ELEMENTWISE_PATH, "element-wise kernel table"), str(ELEMENTWISE_PATH))
    share = {str(k): float(v) for k, v in data["share"].items()}
    factor = {str(k): float(v) for k, v in data.get("die_factor", {}).items()}
    fixed = {str(k): float(v) for k, v in data.get("die_overhead_s", {}).items()}
    if not all(0 < v <= 1 for v in (*share.values(), *factor.values())):
        raise ValueError(
            f"{ELEMENTWISE_PATH.name}: every share and die factor must be in (0, 1]: no rate above the datasheet"
        )
    if not all(0 <= v < 1e-3 for v in (float(data["overhead_s"]), *fixed.values())):
        raise ValueError(f"{ELEMENTWISE_PATH.name}: a kernel's fixed seconds must be in [0, 1 ms)")
    return ElementwiseRates(share, float(data["overhead_s"]), str(data["source"]), factor, fixed)


@dataclass(frozen=True, slots=True)
class DeepEPKernel:
    """One DeepEP kernel (dispatch or combine) on one GPU: at each measured SM count the bytes per second it
    moves and the seconds per token it spends beside them, and the fixed seconds of a call."""

    sms: tuple[int, ...]
    bytes_per_s: tuple[float, ...]
    token_s: tuple[float, ...]
    call_s: float

    def time_s(self, nbytes: float, tokens: float, sms: float) -> float:
        """Seconds of one call's work on `sms` SMs (the call's fixed cost apart): interpolated between the
        measured counts, per SM below the fewest (a share of its rate), held above the most."""
        low = min(sms, self.sms[0]) / self.sms[0]  # below the fewest measured: that count's per-SM rate
        rate = interpolated(sms, self.sms, self.bytes_per_s) * low
        per_token = interpolated(sms, self.sms, self.token_s) / low
        return nbytes / rate + tokens * per_token


def interpolated(x: float, xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    """ys at x, linear between the points of the rising xs, held beyond the ends (numpy.interp without numpy:
    `v3sim --help` loads no heavy library)."""
    i = bisect_left(xs, x)
    if i == 0:
        return ys[0]
    if i == len(xs):
        return ys[-1]
    share = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
    return ys[i - 1] + share * (ys[i] - ys[i - 1])


def non_decreasing(ys: list[float]) -> list[float]:
    """The least-squares non-decreasing fit through ys, equally weighted: runs that fall are pooled to their mean
    (pool-adjacent-violators; scipy.optimize.isotonic_regression without scipy: an answer loads no heavy library)."""
    blocks: list[list[float]] = []  # [mean, count]
    for y in ys:
        blocks.append([y, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (a, n), (b, m) = blocks.pop(-2), blocks.pop()
            blocks.append([(a * n + b * m) / (n + m), n + m])
    return [mean for mean, count in blocks for _ in range(round(count))]


@dataclass(frozen=True, slots=True)
class DeepEPLowLatency:
    """One DeepEP low-latency kernel (decode's dispatch or combine) on one GPU: the bytes per second it moves, the
    seconds per token beside them and the fixed seconds of a call (it runs on every SM: no SM axis)."""

    bytes_per_s: float
    token_s: float
    call_s: float

    def time_s(self, nbytes: float, tokens: float) -> float:
        """Seconds of one call's work (its fixed cost apart): `nbytes`, one copy per routed expert."""
        return nbytes / self.bytes_per_s + tokens * self.token_s


@cache
def _deepep_data() -> dict:
    return loads_toml(read_text(DEEPEP_PATH, "DeepEP kernel table"), str(DEEPEP_PATH))


@cache
def deepep_low_latency_tables() -> dict[str, dict[str, DeepEPLowLatency]]:
    """The shipped low-latency tables by GPU name and die, as `deepep_tables`."""
    data = _deepep_data()
    out: dict[str, dict[str, DeepEPLowLatency]] = {}
    for gpu, kinds in data.items():
        for kind, row in kinds.get("low_latency", {}).items() if gpu != "die" else ():
            rates = (float(row["gb_per_s"]) * 1e9, float(row["ns_per_token"]) * 1e-9, float(row["call_us"]) * 1e-6)
            out.setdefault(str(gpu), {})[kind] = DeepEPLowLatency(*rates)
    return _with_dies(out, data)


@cache
def deepep_low_latency_ib_tables() -> dict[str, dict[int, dict[str, DeepEPLowLatency]]]:
    """The shipped low-latency tables across nodes by GPU name (and die), then by the node count timed."""
    data = _deepep_data()
    out: dict[str, dict[int, dict[str, DeepEPLowLatency]]] = {}
    for gpu, kinds in data.items():
        for kind, row in kinds.get("low_latency_ib", {}).items() if gpu != "die" else ():
            nodes_list = [int(n) for n in row["nodes"]]
            lists = (row["nodes"], row["gb_per_s"], row["ns_per_token"], row["call_us"])
            if nodes_list != sorted(set(nodes_list)) or nodes_list[0] < 2 or len({len(x) for x in lists}) != 1:
                raise ValueError(f"{DEEPEP_PATH.name} [{gpu}.low_latency_ib.{kind}]: nodes must rise from 2, one "
                                 "rate, per-token cost and call for each")  # fmt: skip
            if not all(float(x) > 0 for x in row["gb_per_s"]) or not all(float(x) >= 0 for x in row["call_us"]):
                raise ValueError(f"{DEEPEP_PATH.name} [{gpu}.low_latency_ib.{kind}]: every rate must be positive")
            for nodes, gb_per_s, ns_per_token, call_us in zip(*lists, strict=True):
                kernel = DeepEPLowLatency(float(gb_per_s) * 1e9, float(ns_per_token) * 1e-9, float(call_us) * 1e-6)
                out.setdefault(str(gpu), {}).setdefault(int(nodes), {})[kind] = kernel
    return _with_dies(out, data)


def deepep_low_latency(gpu: GPUSpec, nodes: int = 1) -> dict[str, DeepEPLowLatency] | None:
    """DeepEP's low-latency dispatch and combine on `gpu` (its own table, else its die's) for an EP group on
    `nodes` nodes: inside one, the in-node table; across more, the table timed on the most nodes not above
    `nodes` (deepep.toml: beyond the most timed, that one's; below the fewest, the fewest's), the in-node one
    where none was timed across nodes; None without either."""
    ib = deepep_low_latency_ib_tables()
    across = ib.get(gpu.name) or ib.get(gpu.die) if nodes > 1 else None
    if across:
        return across[max((n for n in across if n <= nodes), default=min(across))]
    tables = deepep_low_latency_tables()
    return tables.get(gpu.name) or tables.get(gpu.die)


@cache
def deepep_tables() -> dict[str, dict[str, DeepEPKernel]]:
    """The shipped DeepEP tables by GPU name (and die: `[die]` names the GPU whose table a die takes)."""
    data = _deepep_data()
    out: dict[str, dict[str, DeepEPKernel]] = {}
    for gpu, kinds in data.items():
        if gpu == "die":
            continue
        out[gpu] = {}
        for kind in DEEPEP_KINDS:
            row = kinds[kind]
            sms = tuple(int(x) for x in row["sms"])
            if list(sms) != sorted(set(sms)) or sms[0] < 1 or not all(float(x) > 0 for x in row["gb_per_s"]):
                raise ValueError(f"{DEEPEP_PATH.name} [{gpu}.{kind}]: SMs must rise from 1 and every rate be positive")
            # more SMs are never slower (DeepEP could leave the extra ones idle): each rate held at its best below
            rate = tuple(accumulate((float(x) * 1e9 for x in row["gb_per_s"]), max))
            token_s = tuple(accumulate((float(x) * 1e-9 for x in row["ns_per_token"]), min))
            out[gpu][kind] = DeepEPKernel(sms, rate, token_s, float(row["call_us"]) * 1e-6)
    return _with_dies(out, data)


def _with_dies(out: dict[str, Any], data: dict) -> dict[str, Any]:
    """`out` (tables by GPU name) with each die of the file's `[die]` table taking the table of the GPU it
    names, where `out` has one (the low-latency tables cover fewer GPUs than the file)."""
    for die, gpu in data.get("die", {}).items():
        if str(gpu) in out:
            out[str(die)] = out[str(gpu)]
    return out


def deepep_kernels(gpu: GPUSpec) -> dict[str, DeepEPKernel] | None:
    """DeepEP's dispatch and combine kernels on `gpu` (its own table, else its die's), None without either."""
    tables = deepep_tables()
    return tables.get(gpu.name) or tables.get(gpu.die)


@dataclass(frozen=True, slots=True)
class HybridEPKernel:
    """HybridEP's dispatch or combine on one GPU through its torch API: the bytes per second of v3sim's count
    (`workloads.comm`) it moves over the links of its `domain` (ib: one copy per remote node; nvlink: one per
    other GPU of the domain), per measured EP rank count and SM count."""

    domain: str
    ranks: tuple[int, ...]
    sms: tuple[int, ...]
    bytes_per_s: tuple[tuple[float, ...], ...]  # one row per rank count, one rate per SM count

    def rate(self, ranks: int, sms: float) -> float:
        """Bytes per second at `ranks` EP ranks on `sms` SMs: linear between the measured counts, held beyond
        them, below the fewest SMs that count's per-SM rate."""
        low = min(sms, self.sms[0]) / self.sms[0]
        by_ranks = tuple(interpolated(sms, self.sms, row) for row in self.bytes_per_s)
        return interpolated(ranks, self.ranks, by_ranks) * low


@cache
def hybridep_tables() -> dict[str, dict[str, HybridEPKernel]]:
    """The shipped HybridEP tables by GPU name (and die, as `deepep_tables`), each rate turned from the
    benchmark's count of bytes into v3sim's (hybridep.toml says how) and held at its best below more SMs."""
    data = loads_toml(read_text(HYBRIDEP_PATH, "HybridEP kernel table"), str(HYBRIDEP_PATH))
    out: dict[str, dict[str, HybridEPKernel]] = {}
    for gpu, row in data.items():
        if gpu == "die":
            continue
        where = f"{HYBRIDEP_PATH.name} [{gpu}]"
        domain, ranks, sms = row["domain"], tuple(int(x) for x in row["ranks"]), tuple(int(x) for x in row["sms"])
        if domain not in HYBRIDEP_DOMAINS:
            raise ValueError(f"{where}: domain={domain!r}; use one of {', '.join(HYBRIDEP_DOMAINS)}")
        if list(ranks) != sorted(set(ranks)) or ranks[0] < 2 or list(sms) != sorted(set(sms)) or sms[0] < 1:
            raise ValueError(f"{where}: ranks must rise from 2 and SMs from 1")
        # the benchmark counts the sender's own node (ib) or the receiver's own tokens (nvlink): v3sim counts
        # neither, so each rate is scaled by 1 - gpus_per_node / ranks, a node of one GPU for nvlink
        per_node = int(row["gpus_per_node"]) if domain == "ib" else 1
        if domain == "ib" and (per_node < 1 or any(r % per_node or r == per_node for r in ranks)):
            raise ValueError(f"{where}: every rank count must span whole nodes of gpus_per_node={per_node}")
        out[gpu] = {}
        for kind in DEEPEP_KINDS:
            table = row[f"{kind}_gb_per_s"]
            if len(table) != len(ranks) or any(len(r) != len(sms) or min(r) <= 0 for r in table):
                raise ValueError(f"{where}: {kind}_gb_per_s needs one positive rate per SM count for each rank count")
            rates = tuple(
                tuple(accumulate((float(x) * 1e9 * (1 - per_node / n) for x in r), max))
                for n, r in zip(ranks, table, strict=True)
            )
            out[gpu][kind] = HybridEPKernel(domain, ranks, sms, rates)
    return _with_dies(out, data)


def hybridep_kernels(gpu: GPUSpec) -> dict[str, HybridEPKernel] | None:
    """HybridEP's dispatch and combine on `gpu` (its own table, else its die's), None without either."""
    tables = hybridep_tables()
    return tables.get(gpu.name) or tables.get(gpu.die)


@dataclass(frozen=True, slots=True)
class CollectiveTable:
    """One collective timed on one node's GPUs: seconds of a call per GPU count at each buffer size (bytes as
    nccl-tests counts them, rising)."""

    nbytes: tuple[float, ...]
    seconds: dict[int, tuple[float, ...]]

    def time_s(self, gpus: int, nbytes: float) -> float | None:
        """Seconds of one call on `gpus` GPUs moving a buffer of `nbytes`: log-log between the timed sizes, the
        smallest size's time below them, growing with the bytes past the largest; None for a count not timed."""
        times = self.seconds.get(gpus)
        if times is None:
            return None
        xs = self.nbytes
        if nbytes <= xs[0]:
            return times[0]
        if nbytes >= xs[-1]:
            return times[-1] * nbytes / xs[-1]
        i = bisect_left(xs, nbytes)
        share = math.log(nbytes / xs[i - 1]) / math.log(xs[i] / xs[i - 1])
        return times[i - 1] * (times[i] / times[i - 1]) ** share


@cache
def _collectives_data() -> dict:
    return loads_toml(read_text(COLLECTIVES_PATH, "collectives table"), str(COLLECTIVES_PATH))


@cache
def collective_tables() -> dict[str, dict[str, CollectiveTable]]:
    """The shipped collectives tables by the name of the GPU they were timed on (`collectives` finds a GPU's).
    A smaller buffer is never slower: each time held at its least over the larger sizes (the few noisy
    small-size rows)."""
    data = _collectives_data()
    out: dict[str, dict[str, CollectiveTable]] = {}
    for gpu in data["nvlink_gb_per_s"]:
        out[gpu] = {}
        for kind in COLLECTIVE_KINDS:
            row = data[gpu][kind]
            nbytes = tuple(float(x) for x in row["bytes"])
            if list(nbytes) != sorted(set(nbytes)) or nbytes[0] <= 0 or len(row["us"]) != len(row["gpus"]):
                raise ValueError(f"{COLLECTIVES_PATH.name} [{gpu}.{kind}]: sizes must rise, one row per GPU count")
            seconds = {}
            for n, us in zip(row["gpus"], row["us"], strict=True):
                if len(us) != len(nbytes) or not all(float(x) > 0 for x in us):
                    raise ValueError(f"{COLLECTIVES_PATH.name} [{gpu}.{kind}]: one positive time per size")
                held = list(accumulate((float(x) * 1e-6 for x in reversed(us)), min))
                seconds[int(n)] = tuple(reversed(held))
            out[gpu][kind] = CollectiveTable(nbytes, seconds)
    return out


@cache
def _collective_rates() -> tuple[dict[str, float], dict[str, str]]:
    """The NVLink rate per direction each table's GPU has (bytes/s), and the GPU whose table each die takes."""
    data = _collectives_data()
    rates = {str(g): float(v) * 1e9 / 2 for g, v in data["nvlink_gb_per_s"].items()}
    return rates, {str(d): str(g) for d, g in data.get("die", {}).items()}


def collectives(gpu: GPUSpec) -> dict[str, CollectiveTable] | None:
    """The in-node collectives timed on `gpu` (its own table, else its die's where the GPU's NVLink has the
    datasheet rate the die's table was timed at), None without either."""
    return collectives_of(gpu.name, gpu.die, gpu.scaleup_bw_bytes_per_s)


@cache
def collectives_of(name: str, die: str, scaleup_bw_bytes_per_s: float) -> dict[str, CollectiveTable] | None:
    """`collectives` of the GPU of that name, die and NVLink rate per direction (looked up once: serving prices a
    collective per layer and batch)."""
    tables = collective_tables()
    if name in tables:
        return tables[name]
    rates, dies = _collective_rates()
    timed_on = dies.get(die)
    if timed_on is None or not math.isclose(rates[timed_on], scaleup_bw_bytes_per_s, rel_tol=0.01):
        return None
    return tables[timed_on]

"""A flow-level network: max-min fair rates on shared links, re-shared as flows start and finish.

Flows are columns of a sparse incidence matrix (links x flows) whose entry is
the share of the flow's rate on that link (1 on a path, 1/k on each of k
sprayed paths). Rates come from progressive filling (Bertsekas & Gallager,
Data Networks, section 6.5.2): raise every unfrozen flow together until a link
saturates, freeze the flows on it, repeat. Everything is a sparse mat-vec over
all flows; Python loops only over filling rounds and events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

SATURATED = 1e-9  # relative residual capacity at which a link counts as full
NEAR_LINKS = 512  # links a filling round looks at: the ones closest to full, refreshed when they are used up
SHARE_TOLERANCE = 1e-2  # a link saturating within this fraction of the rate reached freezes in the same round
BATCH = 1e-2  # flows due within this fraction of the elapsed time end in one event, each at its own time


@dataclass(frozen=True, slots=True)
class FlowSet:
    """Flows over a set of directed links."""

    incidence: csr_matrix  # (links, flows): share of the flow's rate carried by each link
    capacity_bytes_per_s: np.ndarray  # (links,)
    size_bytes: np.ndarray  # (flows,)
    start_s: np.ndarray  # (flows,)
    latency_s: np.ndarray  # (flows,) added once to the flow's finish time

    def __post_init__(self) -> None:
        links, flows = self.incidence.shape
        for name, n in (("capacity_bytes_per_s", links), ("size_bytes", flows), ("start_s", flows)):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"{name} has shape {np.shape(getattr(self, name))}; the incidence needs ({n},)")
        if np.shape(self.latency_s) != (flows,):
            raise ValueError(f"latency_s has shape {np.shape(self.latency_s)}; the incidence needs ({flows},)")
        if not (np.asarray(self.capacity_bytes_per_s) > 0).all():  # NaN fails too
            raise ValueError("capacity_bytes_per_s must be positive")
        for name in ("size_bytes", "start_s", "latency_s"):
            value = np.asarray(getattr(self, name))
            if not np.isfinite(value).all() or (value < 0).any():  # a NaN size would never finish
                raise ValueError(f"{name} must be finite and >= 0")


@dataclass(frozen=True, slots=True)
class FlowResult:
    finish_s: np.ndarray  # (flows,) last byte delivered, plus the flow's latency
    link_bytes: np.ndarray  # (links,) bytes each link carried
    reshares: int  # rate computations (events)

    @property
    def makespan_s(self) -> float:
        return float(self.finish_s.max()) if len(self.finish_s) else 0.0


@dataclass(frozen=True, eq=False)
class Routes:
    """A FlowSet's incidence in the two layouts progressive filling reads: by link (the flows on a link that
    saturates) and by flow (the links whose load a frozen flow leaves). Built once per FlowSet."""

    by_link: csr_matrix  # (links, flows)
    by_flow: csr_matrix  # (flows, links)
    crosses: np.ndarray  # (flows,) the flow crosses at least one link

    @classmethod
    def of(cls, incidence: csr_matrix) -> Routes:
        by_link = csr_matrix(incidence)
        by_flow = by_link.T.tocsr()
        return cls(by_link, by_flow, np.diff(by_flow.indptr) > 0)


def _rows(matrix: csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column index, value) of every stored entry of the given rows of a CSR matrix, without slicing it."""
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = ends - starts
    at = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    return matrix.indices[at], matrix.data[at]


def max_min_rates(
    incidence: csr_matrix | Routes,
    capacity_bytes_per_s: np.ndarray,
    active: np.ndarray | None = None,
    tolerance: float = SHARE_TOLERANCE,
) -> np.ndarray:
    """Max-min fair rate in bytes/s of every flow (0 when inactive; inf when it crosses no link). Links that
    would saturate within `tolerance` (a fraction of the rate reached) of the first saturate in the same
    filling round.

    Each round costs the links still in play plus the entries of what it freezes: the load of a link is
    lowered by the flows frozen in that round only (their rows of `by_flow`), never recomputed, so a filling
    of many levels costs about one pass over the incidence, not one per level."""
    routes = incidence if isinstance(incidence, Routes) else Routes.of(incidence)
    n_flows = routes.by_link.shape[1]
    active = np.ones(n_flows, bool) if active is None else np.asarray(active, bool)
    rate = np.where(active & ~routes.crosses, np.inf, 0.0)
    free = active & routes.crosses
    capacity = np.asarray(capacity_bytes_per_s, float)
    n_links = len(capacity)
    load = routes.by_link @ free.astype(float)  # free flows' shares on each link
    flows_on = np.bincount(routes.by_flow.indices[np.repeat(free, np.diff(routes.by_flow.indptr))], minlength=n_links)
    spare = capacity.copy()  # capacity less the frozen flows' rates
    live = flows_on > 0  # links that still carry a free flow
    fill = np.full(n_links, np.inf)  # the common rate of the free flows at which each link is full
    fill[live] = spare[live] / load[live]
    near = np.zeros(0, np.int64)  # the live links that fill first: every other live link fills above `bound`
    bound = -np.inf
    while True:
        fills = fill[near]
        level = fills.min(initial=np.inf)  # the common rate of the flows frozen now
        if not len(near) or not level * (1 + tolerance) <= bound:  # a link beyond `near` may fill first: widen
            ahead = np.flatnonzero(live)
            if not len(ahead):
                break
            fills = fill[ahead]
            k = min(len(ahead), NEAR_LINKS) - 1
            bound = np.inf if k == len(ahead) - 1 else max(np.partition(fills, k)[k], fills.min() * (1 + tolerance))
            near = ahead[fills <= bound]
            continue
        # links within `tolerance` of full freeze now: their flows give up at most that fraction of their rate
        full = (fills - level <= tolerance * level) | (load[near] * (fills - level) <= SATURATED * capacity[near])
        candidates, _ = _rows(routes.by_link, near[full])
        frozen = np.unique(candidates[free[candidates]])
        rate[frozen] = level
        free[frozen] = False
        links, weights = _rows(routes.by_flow, frozen)
        left = np.bincount(links, weights=weights, minlength=n_links)
        load -= left
        spare -= level * left
        flows_on -= np.bincount(links, minlength=n_links)
        live[links] = flows_on[links] > 0
        fill[links] = np.where(live[links], spare[links] / np.where(live[links], load[links], 1.0), np.inf)
        near = near[live[near]]  # fills only rise as flows leave a link, so `bound` still holds for the rest
    return rate


def simulate_flows(flows: FlowSet) -> FlowResult:
    """Completion time of every flow: rates re-shared at each start and finish. Flows due within BATCH x the
    time elapsed at the next finish end in the same event, each at its own time at its current rate (the bytes
    they free are re-shared at the end of the batch), so many small flows cost a bounded number of events."""
    size = np.asarray(flows.size_bytes, float)
    start = np.asarray(flows.start_s, float)
    remaining = size.copy()
    done_s = np.full(len(size), np.nan)
    routes = Routes.of(flows.incidence)
    instant = (size == 0) | ~routes.crosses
    done_s[instant] = start[instant]
    now, reshares = 0.0, 0
    while np.isnan(done_s).any():
        pending = np.isnan(done_s)
        active = pending & (start <= now)
        if not active.any():
            now = start[pending].min()
            continue
        rate = max_min_rates(routes, flows.capacity_bytes_per_s, active)
        reshares += 1
        to_finish = np.where(active, remaining / np.where(active, rate, 1.0), np.inf)
        first = to_finish.min()
        later = start[pending & (start > now)]
        next_start = later.min() - now if len(later) else np.inf
        finished = active & (to_finish <= min(first + BATCH * (now + first), next_start))
        step = min(to_finish[finished].max(initial=first), next_start)
        if next_start < first:
            finished[:] = False
        done_s[finished] = now + to_finish[finished]
        remaining[active] -= rate[active] * step
        remaining[finished] = 0.0
        now += step
    link_bytes = flows.incidence @ size
    return FlowResult(done_s + flows.latency_s, np.asarray(link_bytes).ravel(), reshares)

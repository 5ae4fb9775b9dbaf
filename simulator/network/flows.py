"""A flow-level network: max-min fair rates on shared links, re-shared as flows start and finish.

Flows are columns of a sparse incidence matrix (links x flows) whose entry is
the share of the flow's rate on that link (1 on a path, 1/k on each of k
sprayed paths). Rates come from progressive filling (Bertsekas & Gallager,
Data Networks, section 6.5.2): raise every unfrozen flow together until a link
saturates, freeze the flows on it, repeat. Everything is a sparse mat-vec over
all flows; Python loops only over filling rounds and events. A re-share after
flows finish starts from the last filling: its rounds below the slowest
finished flow's rate stand as they were (`Filling.rounds_kept`), so only the
few rounds above are rerun.
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
    on_link: csr_matrix  # (links, flows) 1 where the flow crosses the link: a count of flows by mat-vec

    @classmethod
    def of(cls, incidence: csr_matrix) -> Routes:
        by_link = csr_matrix(incidence)
        by_flow = by_link.T.tocsr()
        on_link = csr_matrix((np.ones(by_link.nnz), by_link.indices, by_link.indptr), shape=by_link.shape)
        return cls(by_link, by_flow, np.diff(by_flow.indptr) > 0, on_link)


def _rows(matrix: csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column index, value) of every stored entry of the given rows of a CSR matrix, without slicing it."""
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = ends - starts
    at = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    return matrix.indices[at], matrix.data[at]


@dataclass(frozen=True, eq=False)
class Filling:
    """One progressive filling, round by round: each flow's rate and the round that froze it, and each round's
    level. What a filling of fewer flows can start from (`progressive_filling`'s `previous`)."""

    active: np.ndarray  # (flows,) bool: the flows it filled
    rate_bytes_per_s: np.ndarray  # (flows,)
    round_of: np.ndarray  # (flows,) the round that froze the flow; the number of rounds when none did
    level_bytes_per_s: np.ndarray  # (rounds,) the common rate each round froze its flows at, increasing

    def rounds_kept(self, active: np.ndarray) -> int:
        """How many of this filling's first rounds a filling of `active` (a subset of this one's flows) runs
        unchanged: those below the lowest rate of the flows that left. A flow that left was still free in
        those rounds, so none of its links filled in them; without it their fill is only higher, so they still
        do not, and every round's level (set by links it does not cross) and frozen flows stay the same.
        Exact, not a heuristic: max-min rates are not monotone in the flows, but the rounds below stand."""
        below = self.level_bytes_per_s < self.rate_bytes_per_s[self.active & ~active].min(initial=np.inf)
        return len(below) if below.all() else int(below.argmin())


def max_min_rates(
    incidence: csr_matrix | Routes,
    capacity_bytes_per_s: np.ndarray,
    active: np.ndarray | None = None,
    tolerance: float = SHARE_TOLERANCE,
) -> np.ndarray:
    """Max-min fair rate in bytes/s of every flow (0 when inactive; inf when it crosses no link). Links that
    would saturate within `tolerance` (a fraction of the rate reached) of the first saturate in the same
    filling round."""
    routes = incidence if isinstance(incidence, Routes) else Routes.of(incidence)
    return progressive_filling(routes, capacity_bytes_per_s, active, tolerance).rate_bytes_per_s


def progressive_filling(
    routes: Routes,
    capacity_bytes_per_s: np.ndarray,
    active: np.ndarray | None = None,
    tolerance: float = SHARE_TOLERANCE,
    previous: Filling | None = None,
) -> Filling:
    """The progressive filling behind `max_min_rates`. With `previous` (a filling of the same routes, capacity
    and tolerance over a superset of `active`) the rounds it shares with this one are taken from it, not
    rerun, and the loads and spare capacity after them summed afresh (equal to rounding): when the flows that
    finish are the fast ones, as in a simulation, that is nearly every round (V3's EP all-to-alls: 97%).

    Each round costs a pass over the links plus the entries of what it freezes: the load of a link is
    lowered by the flows frozen in that round only (their rows of `by_flow`), never recomputed, so a filling
    of many levels costs about one pass over the incidence, not one per level."""
    n_flows = routes.by_link.shape[1]
    active = np.ones(n_flows, bool) if active is None else np.asarray(active, bool)
    rate = np.where(active & ~routes.crosses, np.inf, 0.0)
    free = active & routes.crosses
    round_of = np.full(n_flows, np.iinfo(np.int64).max)
    levels: list[float] = []
    done = np.zeros(n_flows, bool)  # frozen in the rounds taken from `previous`
    if previous is not None and not (active & ~previous.active).any():  # no flow joined: the first rounds stand
        kept = previous.rounds_kept(active)
        levels = previous.level_bytes_per_s[:kept].tolist()
        done = free & (previous.round_of < kept)
        rate = np.where(done, previous.rate_bytes_per_s, rate)  # np.where: a masked copy costs 5x more
        round_of = np.where(done, previous.round_of, round_of)
        free &= ~done
    capacity = np.asarray(capacity_bytes_per_s, float)
    n_links = len(capacity)
    load = routes.by_link @ free.astype(float)  # free flows' shares on each link
    flows_on = routes.on_link @ free.astype(float)  # free flows on each link (whole numbers)
    spare = capacity - routes.by_link @ np.where(done, rate, 0.0) if levels else capacity.copy()  # less frozen rates
    live = flows_on > 0  # links that still carry a free flow
    # the common rate of the free flows at which each link is full
    fill_at = np.divide(spare, load, out=np.full(n_links, np.inf), where=live)
    near = np.zeros(0, np.int64)  # the live links that fill first: every other live link fills above `bound`
    bound = -np.inf
    while True:
        fills = fill_at[near]
        level = fills.min(initial=np.inf)  # the common rate of the flows frozen now
        if not len(near) or not level * (1 + tolerance) <= bound:  # a link beyond `near` may fill first: widen
            ahead = np.flatnonzero(live)
            if not len(ahead):
                break
            fills = fill_at[ahead]
            k = min(len(ahead), NEAR_LINKS) - 1
            bound = np.inf if k == len(ahead) - 1 else max(np.partition(fills, k)[k], fills.min() * (1 + tolerance))
            near = ahead[fills <= bound]
            continue
        # links within `tolerance` of full freeze now: their flows give up at most that fraction of their rate
        full = (fills - level <= tolerance * level) | (load[near] * (fills - level) <= SATURATED * capacity[near])
        on_full = np.zeros(n_flows, bool)
        on_full[_rows(routes.by_link, near[full])[0]] = True
        frozen = np.flatnonzero(on_full & free)  # in index order, as the sums over them below always add up
        rate[frozen] = level
        round_of[frozen] = len(levels)
        levels.append(level)
        free[frozen] = False
        links, weights = _rows(routes.by_flow, frozen)
        left = np.bincount(links, weights=weights, minlength=n_links)
        load -= left
        spare -= level * left
        flows_on -= np.bincount(links, minlength=n_links)
        live = flows_on > 0  # over every link: cheaper than over the (repeated) links just touched
        fill_at = np.divide(spare, load, out=np.full(n_links, np.inf), where=live)
        near = near[live[near]]  # fills only rise as flows leave a link, so `bound` still holds for the rest
    round_of = np.minimum(round_of, len(levels))
    return Filling(active, rate, round_of, np.array(levels))


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
    filling = None  # the last reshare's, which the next one starts from
    while np.isnan(done_s).any():
        pending = np.isnan(done_s)
        active = pending & (start <= now)
        if not active.any():
            now = start[pending].min()
            continue
        filling = progressive_filling(routes, flows.capacity_bytes_per_s, active, previous=filling)
        rate = filling.rate_bytes_per_s
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
        remaining -= np.where(active, rate, 0.0) * step
        remaining[finished] = 0.0
        now += step
    link_bytes = flows.incidence @ size
    return FlowResult(done_s + flows.latency_s, np.asarray(link_bytes).ravel(), reshares)

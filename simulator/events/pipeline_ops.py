"""Pipeline schedules as data: each rank's ordered operations and their dependencies.

An operation is a forward (F), a backward (B), a weight-gradient pass (W) or
DualPipe's overlapped pair (FB: the forward of one micro-batch and the backward
of another, run together). B is the full backward (inputs and weights) unless
`split_w` says its weight gradient is a later W (zero-bubble schedules).

Stages are model stages along a micro-batch's path: 0 .. pp-1 (interleaved:
0 .. pp*v-1, stage s on rank s % pp). DualPipe sends half the micro-batches
down (direction 0: stage s on rank s) and half up (direction 1: stage s on
rank pp-1-s), so rank r holds stages r and pp-1-r.

Sources: 1F1B is PipeDream-Flush (Narayanan et al. 2021); interleaved 1F1B is
Megatron-LM's (same paper, section 2.2); ZB1P is ZB-H1 (Qi et al. 2023, "Zero
Bubble Pipeline Parallelism", figure 3); DualPipe follows the eight phases of
`DualPipe.step()` in deepseek-ai/DualPipe (our own code).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from simulator.schedules import check_schedule, warmup_forwards

KINDS = ("F", "B", "W", "FB")
Key = tuple[str, int, int, int]  # (kind F/B/W, microbatch, stage, direction): one unit of work

MAX_EVENT_OPS = 500_000  # ~18 s and ~2 GB in the event model (measured: 153,600 ops, 5.4 s, 0.57 GB)


@dataclass(frozen=True, slots=True)
class Op:
    """One operation on one rank; an FB op is its forward plus `backward` run overlapped."""

    kind: str  # F, B, W or FB
    microbatch: int
    stage: int  # model stage along the micro-batch's path (FB: the forward's)
    direction: int = 0  # DualPipe: 0 enters at rank 0, 1 at rank pp-1
    split_w: bool = False  # B only: the weight gradient is left to a later W op
    backward: Op | None = None  # FB only: the backward half

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"op kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if (self.kind == "FB") != (self.backward is not None):
            raise ValueError("an FB op needs its backward half, and only an FB op has one")

    def parts(self) -> tuple[Op, ...]:
        """The units of work this op finishes: itself, or an FB's forward and backward."""
        if self.backward is None:
            return (self,)
        return (Op("F", self.microbatch, self.stage, self.direction), self.backward)

    @property
    def key(self) -> Key:
        return (self.kind, self.microbatch, self.stage, self.direction)


def num_stages(schedule: str, pp: int, virtual_stages: int = 1) -> int:
    """Model stages a micro-batch passes through (interleaved: pp * v chunks)."""
    return pp * virtual_stages if schedule == "interleaved" else pp


def rank_of(schedule: str, pp: int, stage: int, direction: int = 0) -> int:
    """The rank that runs `stage` for micro-batches going in `direction`."""
    if schedule == "dualpipe" and direction == 1:
        return pp - 1 - stage
    return stage % pp


def dependencies(op: Op, n_stages: int) -> list[Key]:
    """Units of work that must finish before this unit (not an FB) starts, within one step.

    F(m, s) needs F(m, s-1); B(m, s) needs F(m, s) and B(m, s+1); W(m, s) needs B(m, s).
    """
    m, s, d = op.microbatch, op.stage, op.direction
    if op.kind == "F":
        return [("F", m, s - 1, d)] if s > 0 else []
    if op.kind == "B":
        return [("F", m, s, d)] + ([("B", m, s + 1, d)] if s < n_stages - 1 else [])
    if op.kind == "W":
        return [("B", m, s, d)]
    raise ValueError("dependencies are per unit; call it on each of an FB op's parts()")


def one_f_one_b(pp: int, n: int, merged: bool = False) -> list[list[Op]]:
    """PipeDream-Flush: pp-1-r warm-up forwards on rank r, then one forward one backward, then cool-down;
    `merged`: each steady forward and backward as one FB op (`_warmup_steady_cooldown`)."""
    return [
        _warmup_steady_cooldown(n, min(warmup_forwards("1f1b", pp, r), n), lambda kind, m, r=r: Op(kind, m, r), merged)
        for r in range(pp)
    ]


def _warmup_steady_cooldown(total: int, warmup: int, unit, merged: bool = False) -> list[Op]:
    """`warmup` forwards, then one forward one backward, then the remaining backwards (units 0..total-1).
    `merged` (Megatron's overlap_moe_expert_parallel_comm): one more forward runs ahead, and each steady forward
    is one FB op with the backward it meets, their all-to-alls under each other's compute as DualPipe's pair."""
    if merged:
        warmup = min(warmup + 1, total)
    ops = [unit("F", k) for k in range(warmup)]
    for i in range(total - warmup):
        f, b = unit("F", warmup + i), unit("B", i)
        ops += [Op("FB", f.microbatch, f.stage, f.direction, backward=b)] if merged else [f, b]
    return ops + [unit("B", k) for k in range(total - warmup, total)]


def interleaved(pp: int, n: int, v: int, merged: bool = False) -> list[list[Op]]:
    """Megatron's interleaved 1F1B: v chunks per rank (stage c*pp + r), micro-batches in groups of pp.

    Virtual micro-batch k runs chunk (k // pp) % v of micro-batch (k // (pp v)) pp + k % pp (forward);
    backwards take the chunks in reverse. Rank r warms up with 2(pp-1-r) + (v-1) pp forwards.
    """
    if n % pp:
        raise ValueError(f"interleaved 1F1B needs microbatches divisible by pp={pp}; got {n}")
    total = n * v

    def unit(kind: str, k: int, r: int) -> Op:
        chunk = (k // pp) % v
        if kind == "B":
            chunk = v - 1 - chunk
        return Op(kind, (k // (pp * v)) * pp + k % pp, chunk * pp + r)

    ranks = []
    for r in range(pp):
        warmup = total if n == pp else min(warmup_forwards("interleaved", pp, r, v), total)
        ranks.append(_warmup_steady_cooldown(total, warmup, lambda kind, k, r=r: unit(kind, k, r), merged))
    return ranks


def zb1p(pp: int, n: int) -> list[list[Op]]:
    """ZB-H1: 1F1B's warm-up and order with B split from W; rank r runs W(m) right after B(m + r).

    Delaying W by r keeps rank r at most pp micro-batches in flight, 1F1B's peak (Qi et al. 2023,
    section 3.1), and lets the backward wave pass without the weight gradients.
    """
    ranks = []
    for r in range(pp):
        warmup = min(pp - 1 - r, n)
        ops = [Op("F", m, r) for m in range(warmup)]
        for i in range(n):
            if warmup + i < n:
                ops.append(Op("F", warmup + i, r))
            ops.append(Op("B", i, r, split_w=True))
            if i >= r:
                ops.append(Op("W", i - r, r))
        ops += [Op("W", m, r) for m in range(max(0, n - r), n)]
        ranks.append(ops)
    return ranks


class _RankBuilder:
    """Appends one DualPipe rank's ops, numbering micro-batches per direction and queueing split W's."""

    def __init__(self, pp: int, n: int, rank: int) -> None:
        self.stage = {0: rank, 1: pp - 1 - rank}
        self.first = {0: 0, 1: n // 2}  # direction 0 runs micro-batches 0 .. n/2-1, direction 1 the rest
        self.f_count = {0: 0, 1: 0}
        self.b_count = {0: 0, 1: 0}
        self.w_queue: deque[Op] = deque()
        self.ops: list[Op] = []

    def _next(self, counts: dict[int, int], d: int) -> int:
        counts[d] += 1
        return self.first[d] + counts[d] - 1

    def f(self, d: int, emit: bool = True) -> Op:
        op = Op("F", self._next(self.f_count, d), self.stage[d], d)
        if emit:
            self.ops.append(op)
        return op

    def b(self, d: int, split_w: bool = False, emit: bool = True) -> Op:
        op = Op("B", self._next(self.b_count, d), self.stage[d], d, split_w=split_w)
        if split_w:
            self.w_queue.append(Op("W", op.microbatch, op.stage, d))
        if emit:
            self.ops.append(op)
        return op

    def w(self) -> None:
        self.ops.append(self.w_queue.popleft())  # first in, first out, as DualPipe's WeightGradStore

    def fb(self, d_f: int, d_b: int) -> None:
        fwd, bwd = self.f(d_f, emit=False), self.b(d_b, emit=False)
        self.ops.append(Op("FB", fwd.microbatch, fwd.stage, d_f, backward=bwd))


def _dualpipe_rank(pp: int, n: int, rank: int) -> list[Op]:
    """The eight phases of DualPipe's step() on one rank; `near` is the direction entering at its end."""
    half, h = pp // 2, min(rank, pp - 1 - rank)
    near = 0 if rank < half else 1
    far = 1 - near
    x = _RankBuilder(pp, n, rank)
    for _ in range(2 * (half - h - 1)):  # 1: forwards of the near direction
        x.f(near)
    for _ in range(h + 1):  # 2: forwards of both directions
        x.f(near)
        x.f(far)
    for _ in range(half - h - 1):  # 3: zero-bubble backward, its W, a forward
        x.b(far, split_w=True)
        x.w()
        x.f(far)
    for i in range(n // 2 - pp + h + 1):  # 4: the main phase, two overlapped pairs
        if i == 0 and h == half - 1:  # the middle ranks run this first pair apart (DualPipe's note)
            x.f(near)
            x.b(far)
        else:
            x.fb(near, far)
        x.fb(far, near)
    for _ in range(half - h - 1):  # 5: a backward and a pair
        x.b(far)
        x.fb(far, near)
    for i in range(h + 1):  # 6: backwards of both directions; the second half leave W for later
        x.b(far, split_w=i > (h + 1) // 2 or (i == (h + 1) // 2 and h % 2 == 1))
        x.b(near, split_w=i >= (h + 1) // 2)
    for _ in range(half - h - 1):  # 7: a W, then a zero-bubble backward
        x.w()
        x.b(near, split_w=True)
    for _ in range(h + 1):  # 8: the remaining W's
        x.w()
    return x.ops


def dualpipe(pp: int, n: int) -> list[list[Op]]:
    """DualPipe: n/2 micro-batches enter at rank 0 and n/2 at rank pp-1 (needs n even and n >= 2 pp)."""
    if n % 2 or n < 2 * pp:
        raise ValueError(f"dualpipe needs an even number of microbatches >= 2*pp={2 * pp}; got {n}")
    return [_dualpipe_rank(pp, n, r) for r in range(pp)]


def schedule_ops(schedule: str, pp: int, n: int, virtual_stages: int = 1, merged: bool = False) -> list[list[Op]]:
    """Each rank's ordered ops for one step of `n` micro-batches; `merged` pairs 1F1B's and the interleaved
    schedule's steady forwards and backwards (ep_comm overlapped)."""
    check_schedule(schedule, pp, virtual_stages)
    if n < 1:
        raise ValueError(f"microbatches={n} must be >= 1")
    ops = pp * n * virtual_stages * (3 if schedule == "zb1p" else 2)
    if ops > MAX_EVENT_OPS:
        raise ValueError(
            f"{ops:,} pipeline ops ({n:,} micro-batches x pp={pp}) are beyond the event model's limit of "
            f"{MAX_EVENT_OPS:,} (about 3.5 KB and 35 us each); use a smaller batch or the analytic model (v3sim train)"
        )
    if merged and schedule not in ("1f1b", "interleaved"):
        raise ValueError(f"{schedule} has no merged forward and backward pairs; 1f1b and interleaved do")
    if schedule == "1f1b":
        return one_f_one_b(pp, n, merged)
    if schedule == "interleaved":
        return interleaved(pp, n, virtual_stages, merged)
    if schedule == "zb1p":
        return zb1p(pp, n)
    if schedule == "dualpipe":
        return dualpipe(pp, n)
    raise ValueError(f"schedule {schedule!r} has no event-model generator yet; use 1f1b, interleaved, zb1p, dualpipe")

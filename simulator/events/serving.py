"""Serving under load: a discrete-event (SimPy) simulation of one decode instance and the prefill instances
that feed it, priced by the analytic serving model (`simulator.analytic.serving`).

The analytic model prices one operating point; this one lets the load set the batch and shows the queues.
- Requests arrive Poisson at `rate_qps`; their prompt and output lengths are drawn from
  `simulator.lengths` distributions. Every draw comes from one numpy Generator seeded by `seed`.
- Prefill: `prefill_instances` instances of max(prefill_ep, tp) GPUs share one FIFO queue. An idle
  instance packs queued prompts into one forward: each prompt's next chunk goes to the attention unit (a
  data-parallel GPU, or a tp group) with the most room, up to the operating point's new tokens per GPU
  (`prefill_point`); what does not fit runs in that instance's next forwards. A forward costs the analytic
  `prefill` at the busiest unit's tokens and the forward's mean prompt length (cache hits at
  `s.cache_hit`): every GPU waits for the busiest one at each MoE layer.
- Decode admission: a prefilled request waits (FIFO) until some unit of the decode instance has KV room for
  its whole sequence (prompt + output, reserved up front so that no sequence is ever evicted) and is under
  the batch cap (the TPOT target's batch, or the given one); it goes to the least-loaded such unit, then its
  KV crosses the network (`kv_transfer`'s rate per prompt token). Its first token counts (TTFT) when the KV
  lands; it joins the next decode step.
- Decode: continuous batching, the units in lock-step. A step costs the analytic `decode` at the busiest
  unit's batch per GPU and the active sequences' mean KV length, with the busiest GPU's routed-expert load
  drawn for the step's tokens from the router simulation (`ep_comm.draw_gpu_loads`, one draw standing for
  every MoE layer of the step; its expert GEMMs priced at that load). A sequence emits
  one token per step, plus one per accepted MTP draft (each at `mtp_acceptance` once the ones before it
  were; drawn per sequence and step).

Co-located (`s.colocated`: prefill and decode on the same GPUs, `v3sim serve --colocated --rate`): one
instance, no prefill instances and no KV transfer.
- Admission: an arriving request waits (FIFO) until some unit has KV room for its whole sequence and is under
  the batch cap (the TPOT target's co-located batch, `colocated_point`, or the given one); it goes to the
  least-loaded such unit, whose steps build its KV chunk by chunk.
- A step has a token budget per GPU: `s.prefill_tokens` (a scheduler's max_num_batched_tokens or chunked
  prefill size: vLLM V1 and SGLang default to 8,192 on large GPUs, and a whole prompt then lands in one step),
  else the analytic operating point's step (its batch's tokens and the piece of prompt a step carries when it
  carries any: `colocated.prompt_piece`, a whole prompt where the average share is smaller). Its decoding
  sequences' tokens come first (one each, and the MTP drafts), the rest goes to the unit's admitted prompts,
  first come first served. It costs the decode step (as above) plus
  what its chunk adds at that batch (the analytic mixed step less the decode step, `colocated.mixed_step`,
  tabulated at the deployment's context); a step of chunks alone costs a prefill forward of them. A
  prompt's first token comes with the step that takes its last chunk (TTFT); it decodes from the next step.
  Without chunked prefill (`ServeSpec.chunked_prefill`, TensorRT-LLM's default) a prompt enters a step whole,
  waiting first come first served for one with room.
- CUDA graphs (`ServeSpec.graph_batches`): a step of decoding alone runs at the captured batch that holds its
  busiest unit's batch (the padding's GEMMs run too); a step with prompt tokens runs at its own batch.

Pricing thousands of steps through `decode` would be slow: `simulator.events.serving_tables` tabulates the
analytic functions on a fine grid, each point priced once when a run first needs it, and interpolates (a test
holds the tables to the functions within 1% off the grid).

The statistics of a run (which requests are measured, latencies, rates): `simulator.events.serving_stats`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import simpy

from simulator import limits
from simulator.analytic.colocated import colocated_numbers, colocated_point
from simulator.analytic.profile import KernelRates
from simulator.analytic.serving import decode_point, prefill_point
from simulator.analytic.servingcomm import kv_transfer
from simulator.analytic.servingmemory import held_tokens, max_sequences_per_gpu, prompt_tokens
from simulator.events.ep_comm import draw_gpu_loads
from simulator.events.serving_stats import summary
from simulator.events.serving_tables import LazyGrid, chunk_table, decode_table, prefill_table
from simulator.lengths import Lengths, parse_lengths
from simulator.presets import EVENT_DEFAULTS
from simulator.servespec import ServeSpec

MIN_REQUESTS = 20  # enough that a warm-up can be cut
RATE_QPS_RANGE = (1e-3, 1e6)  # below: a day between requests; above: a million requests/s at one instance
DRAWS_PER_BIN = 32  # router draws pooled per bin of routed tokens per step (one call draws them all)
LOG_BIN = math.log(1.05)  # bins 5% wide: a step's draw is for its token count to within 2.5%
MAX_EVENTS = 300_000  # decode steps + prefill forwards in one run: about 10 s on a 2-core machine
MAX_PREFILL_INSTANCES = 4096
EPS_S = 1e-12  # events this close count as simultaneous


@dataclass(frozen=True, eq=False)
class Setup:
    """What the simulation needs of the deployment, worked out once: the priced tables, the attention units
    (data-parallel GPUs, or tp groups) of each instance, the KV and batch limits of a decode unit, the KV
    transfer and the router draw."""

    spec: ServeSpec
    rates: KernelRates
    prefill: LazyGrid
    decode: LazyGrid
    prefill_units: int
    prefill_room: int  # new tokens per unit per forward
    decode_units: int
    kv_tokens_per_unit: int
    reserve: np.ndarray  # each request's KV as its unit reserves it (`kv_reserve`), in the requests' order
    batch_cap_per_unit: int | None  # None: the KV cache alone limits the batch
    transfer_latency_s: float
    transfer_s_per_token: float
    experts: tuple[int, int, int] | None  # (ep, expert slots, experts per token) for the router draw
    expert_cv: float | None
    chunk: LazyGrid | None = None  # co-located: what a prompt chunk adds to a decode step (None: separate pools)

    def decode_only(self, busiest: float, ctx: float, imbalance: float) -> float:
        """Seconds of a step of decoding alone at `busiest` sequences per GPU: with CUDA graphs the busiest unit's
        batch padded to the captured size that holds it (`ServeSpec.graph_batch`), the padding's GEMMs run and
        its attention reads no cache (the same KV bytes over the padded batch)."""
        padded = self.spec.graph_batch(busiest * self.spec.tp) / self.spec.tp
        return self.decode(padded, ctx * busiest / padded, imbalance)


def kv_reserve(s: ServeSpec, tokens: np.ndarray) -> np.ndarray:
    """KV a request of `tokens` whole-sequence tokens reserves on its unit, in tokens as the pool holds them
    (the mean over layers: `held_tokens`), rounded up."""
    if not s.model.sliding_window or s.window_kv == "full":
        return tokens
    per_request = np.vectorize(lambda n: math.ceil(held_tokens(s, float(n))), otypes=[np.int64])
    return per_request(tokens)


def build_setup(
    s: ServeSpec, rates: KernelRates, prompts: np.ndarray, outputs: np.ndarray, expert_cv: float | None
) -> Setup:
    """The Setup for requests of these prompt and output lengths."""
    capacity = max_sequences_per_gpu(s)
    if capacity < 1:
        raise ValueError(f"{s.model.name}: no room for one {s.context}-token sequence's KV; raise --ep or --tp")
    batch: float
    if s.colocated:
        batch, limit = colocated_point(s, rates, capacity)
    else:
        point = decode_point(s, rates, capacity)
        batch, limit = point.batch, point.limit
    tp = s.tp
    # a tp group holds tp x the per-GPU sequences (max_sequences_per_gpu); tokens as each layer caches them, the
    # mean over layers (a windowed layer keeps its last window: `kv_reserve`)
    kv_tokens = int(capacity * held_tokens(s, s.context) * tp)
    # sequences one tp unit may hold: a fractional per-GPU batch (a batch per instance smaller than the instance's
    # units) rounds up, so every unit can hold one
    cap = None if limit == "kv" else max(1, math.ceil(batch * tp - 1e-9))
    reserve = kv_reserve(s, prompts + outputs)
    if reserve.max() > kv_tokens:
        raise ValueError(
            f"a drawn request of {int(reserve.max()):,} tokens does not fit one decode GPU's KV cache "
            f"({kv_tokens:,} tokens); shorten --input-len / --output-len or raise --context"
        )
    if s.colocated:  # the step's token budget per GPU (module docstring); the KV is built where it decodes
        steady = batch * s.verify_tokens + colocated_numbers(s, rates, batch)["prompt_piece_tokens_per_gpu"]
        room, latency, per_token = s.prefill_tokens or math.ceil(steady), 0.0, 0.0
    else:
        room = prefill_point(s, rates).tokens
        move = kv_transfer(s)
        latency = s.node.nic.latency_s
        per_token = (float(move["s_per_request"]) - latency) / prompt_tokens(s)  # type: ignore[arg-type]
    new = int(np.rint(prompts.max() * (1 - s.cache_hit)))
    if not s.chunked_prefill and new > room * tp:
        raise ValueError(
            f"a {new:,}-token prompt does not fit a step's {room * tp:,} new tokens without chunked prefill; raise "
            "--prefill-tokens or drop --no-chunked-prefill"
        )
    spec = s.model
    draw = spec.is_moe and s.ep > 1
    return Setup(
        spec=s,
        rates=rates,
        prefill=prefill_table(replace(s, colocated=False), rates),  # a phase alone, as separate pools run it
        decode=decode_table(replace(s, colocated=False), rates),
        prefill_units=max(s.prefill_ep, tp) // tp,
        prefill_room=room * tp,
        decode_units=s.attention_units,
        kv_tokens_per_unit=kv_tokens,
        reserve=reserve,
        batch_cap_per_unit=cap,
        transfer_latency_s=latency,
        transfer_s_per_token=per_token,
        experts=(s.ep, spec.n_routed_experts + s.redundant, spec.num_experts_per_tok) if draw else None,
        expert_cv=expert_cv,
        chunk=chunk_table(s, rates) if s.colocated else None,
    )


class _Serving:
    """The simulation's state: each request's times, the prefill queue, the decode units and active batch."""

    def __init__(
        self,
        env: simpy.Environment,
        setup: Setup,
        rng: np.random.Generator,
        arrival_s: np.ndarray,
        prompts: np.ndarray,
        outputs: np.ndarray,
    ) -> None:
        self.env, self.setup, self.rng = env, setup, rng
        self.arrival_s, self.prompts, self.outputs = arrival_s, prompts, outputs
        n = len(arrival_s)
        self.left = np.maximum(1, np.rint(prompts * (1 - setup.spec.cache_hit))).astype(np.int64)  # new tokens
        nan = np.full(n, np.nan)
        self.prefill_start, self.prefill_end, self.admitted, self.ready, self.finish = (nan.copy() for _ in range(5))
        self.next_arrival = 0
        self.queue: deque[int] = deque()
        self.waiting: deque[int] = deque()  # prefilled, waiting for decode KV room
        self.pending: list[tuple[float, int]] = []  # (KV lands, request)
        units = setup.decode_units
        self.kv_free = np.full(units, setup.kv_tokens_per_unit, dtype=np.int64)
        self.held = np.zeros(units, dtype=np.int64)  # admitted sequences per unit
        self.active_per_unit = np.zeros(units, dtype=np.int64)
        self.unit_of = np.zeros(n, dtype=np.int64)
        self.ids = np.zeros(0, dtype=np.int64)  # the active batch: request, remaining tokens, KV length
        self.remaining = np.zeros(0, dtype=np.int64)
        self.kv = np.zeros(0, dtype=np.int64)
        self.kv_total = 0  # the active sequences' KV tokens
        self.pools: dict[int, np.ndarray] = {}  # routed-token bin -> drawn busiest-GPU loads
        self.done = 0
        self.wake: simpy.Event | None = None
        self.steps: list[tuple[float, float, int, float, float, float, int]] = []
        self.forwards: list[tuple[float, float, float]] = []  # (start, seconds, input tokens)

    # --- prefill ---------------------------------------------------------------------------------------------

    def prefill_instance(self) -> Generator[simpy.Event, Any, None]:
        """One prefill instance: a forward of packed prompts whenever some wait, else idle to the next arrival."""
        env, setup = self.env, self.setup
        carry: list[int] = []  # this instance's prompts part-way through (a chunk's successor waits for it)
        while True:
            self._take_arrivals()
            if not carry and not self.queue:
                if self.next_arrival == len(self.arrival_s):
                    return
                yield env.timeout(self.arrival_s[self.next_arrival] - env.now)
                continue
            carry, finished, busiest, prompt, taken = self._pack(carry)
            step = setup.prefill(busiest / setup.spec.tp, prompt)
            self.forwards.append((env.now, step, taken / (1 - setup.spec.cache_hit)))
            yield env.timeout(step)
            self.prefill_end[finished] = env.now
            self.waiting.extend(finished)
            self._admit()

    def _take_arrivals(self) -> None:
        end = int(np.searchsorted(self.arrival_s, self.env.now + EPS_S, side="right"))
        self.queue.extend(range(self.next_arrival, end))
        self.next_arrival = max(self.next_arrival, end)

    def _pack(self, carry: list[int]) -> tuple[list[int], list[int], float, float, int]:
        """One forward's chunks: (prompts still part-way, prompts finished, the busiest unit's new tokens,
        the token-weighted mean prompt length, new tokens in all)."""
        room = [self.setup.prefill_room] * self.setup.prefill_units
        kept: list[int] = []
        finished: list[int] = []
        weighted = taken = 0

        def place(r: int) -> None:
            nonlocal weighted, taken
            u = room.index(max(room))
            take = int(min(self.left[r], room[u]))
            room[u] -= take
            self.left[r] -= take
            weighted, taken = weighted + take * int(self.prompts[r]), taken + take
            (finished if self.left[r] == 0 else kept).append(r)

        for r in carry:
            if max(room) > 0:
                place(r)
            else:
                kept.append(r)
        while self.queue and max(room) > 0:
            if self.left[self.queue[0]] > max(room) and not self.setup.spec.chunked_prefill:
                break  # a whole prompt waits for the next forward
            r = self.queue.popleft()
            if math.isnan(self.prefill_start[r]):
                self.prefill_start[r] = self.env.now
            place(r)
        busiest = self.setup.prefill_room - min(room)
        return kept, finished, busiest, weighted / taken, taken

    # --- decode ----------------------------------------------------------------------------------------------

    def _admit(self) -> None:
        """Admit waiting requests, first come first served, while some decode unit has room; start their KV."""
        setup, now = self.setup, self.env.now
        while self.waiting:
            r = self.waiting[0]
            if not self._reserve(r):
                return
            self.waiting.popleft()
            self.admitted[r] = now
            lands = now + setup.transfer_latency_s + self.prompts[r] * setup.transfer_s_per_token
            heapq.heappush(self.pending, (lands, r))
            if self.wake is not None and not self.wake.triggered:
                self.wake.succeed()

    def _reserve(self, r: int) -> bool:
        """Reserve request `r`'s whole sequence of KV and a batch slot on the least-loaded unit with room for
        both (`unit_of[r]`); False where none has."""
        fits = self.kv_free >= self.setup.reserve[r]
        if self.setup.batch_cap_per_unit is not None:
            fits &= self.held < self.setup.batch_cap_per_unit
        if not fits.any():
            return False
        u = int(np.argmin(np.where(fits, self.held, np.iinfo(np.int64).max)))
        self.kv_free[u] -= self.setup.reserve[r]
        self.held[u] += 1
        self.unit_of[r] = u
        return True

    def decode_instance(self) -> Generator[simpy.Event, Any, None]:
        """The decode instance: a step of every active sequence while any, else idle until a KV lands."""
        env = self.env
        while self.done < len(self.arrival_s):
            self._activate()
            if not len(self.ids):
                if self.pending:
                    yield env.timeout(self.pending[0][0] - env.now)
                else:
                    self.wake = env.event()
                    yield self.wake
                    self.wake = None
                continue
            start, busiest, ctx = (
                env.now,
                self.active_per_unit.max() / self.setup.spec.tp,
                self.kv_total / len(self.ids),
            )
            imbalance = self._draw_imbalance(len(self.ids))
            step = self.setup.decode_only(busiest, ctx, imbalance)
            yield env.timeout(step)
            emitted = self._emit()
            self.steps.append((start, step, len(self.ids), busiest, ctx, imbalance, emitted))
            self._retire()
            self._admit()

    def _activate(self) -> None:
        """Sequences whose KV has landed join the batch (a one-token request is done at its first token)."""
        joined = []
        while self.pending and self.pending[0][0] <= self.env.now + EPS_S:
            lands, r = heapq.heappop(self.pending)
            self.ready[r] = lands
            joined.append(r)
        if not joined:
            return
        new = np.array(joined, dtype=np.int64)
        self.ids = np.r_[self.ids, new]
        self.remaining = np.r_[self.remaining, self.outputs[new] - 1]
        self.kv = np.r_[self.kv, self.prompts[new] + 1]
        self.kv_total += int(self.prompts[new].sum()) + len(new)
        np.add.at(self.active_per_unit, self.unit_of[new], 1)
        self._retire()

    def _draw_imbalance(self, sequences: int) -> float:
        """The busiest GPU's routed tokens over the mean for this step's tokens (1 without a draw): one of the
        router simulation's draws for the step's bin of routed tokens, drawn when the bin is first met."""
        setup = self.setup
        if setup.experts is None:
            return 1.0
        ep, slots, per_token = setup.experts
        per_seq = setup.spec.verify_tokens  # MTP: the drafts verified per sequence
        b = round(math.log(sequences * per_seq * per_token) / LOG_BIN)
        if b not in self.pools:
            tokens = max(1, round(math.exp(b * LOG_BIN)))
            self.pools[b] = draw_gpu_loads(self.rng, DRAWS_PER_BIN, ep, slots, tokens, setup.expert_cv).max(axis=1)
        return float(self.pools[b][int(self.rng.integers(DRAWS_PER_BIN))])

    def _emit(self) -> int:
        """Each active sequence's tokens this step (MTP: one more per draft accepted, each draft only after the
        ones before it were)."""
        got = np.ones(len(self.ids), dtype=np.int64)
        spec = self.setup.spec
        if spec.mtp_acceptance is not None:
            drafts = self.rng.random((len(self.ids), spec.mtp_tokens)) < np.asarray(spec.acceptances)
            got += np.cumprod(drafts, axis=1).sum(axis=1)
        got = np.minimum(got, self.remaining)
        self.remaining -= got
        self.kv += got
        emitted = int(got.sum())
        self.kv_total += emitted
        return emitted

    def _retire(self) -> None:
        """Finished sequences leave the batch and free their unit's KV and slot."""
        over = self.remaining <= 0
        if not over.any():
            return
        ids, units = self.ids[over], self.unit_of[self.ids[over]]
        self.finish[ids] = np.where(self.outputs[ids] == 1, self.ready[ids], self.env.now)
        np.add.at(self.kv_free, units, self.setup.reserve[ids])
        np.subtract.at(self.held, units, 1)
        np.subtract.at(self.active_per_unit, units, 1)
        self.kv_total -= int(self.kv[over].sum())
        keep = ~over
        self.ids, self.remaining, self.kv = self.ids[keep], self.remaining[keep], self.kv[keep]
        self.done += len(ids)


class _Colocated(_Serving):
    """One co-located instance (module docstring): each unit's admitted prompts, chunked into its steps."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.filling: list[deque[int]] = [deque() for _ in range(self.setup.decode_units)]

    def pool(self) -> Generator[simpy.Event, Any, None]:
        """Steps of the decode batch and the prompts' chunks while any, else idle to the next arrival."""
        env, setup = self.env, self.setup
        assert setup.chunk is not None
        tp = setup.spec.tp
        while self.done < len(self.arrival_s):
            self._take_arrivals()
            self._admit_prompts()
            if not len(self.ids) and not any(self.filling):
                yield env.timeout(self.arrival_s[self.next_arrival] - env.now)
                continue
            start = env.now
            chunks, finished, prompt, taken = self._chunks()
            busiest, chunk = self.active_per_unit.max() / tp, chunks.max() / tp
            ctx = imbalance = 0.0
            if len(self.ids):
                ctx, imbalance = self.kv_total / len(self.ids), self._draw_imbalance(len(self.ids))
                step = (
                    setup.decode(busiest, ctx, imbalance) + setup.chunk(busiest, chunk)
                    if taken
                    else setup.decode_only(busiest, ctx, imbalance)
                )
            else:
                step = setup.prefill(chunk, prompt)
            yield env.timeout(step)
            if len(self.ids):
                emitted = self._emit()
                self.steps.append((start, step, len(self.ids), busiest, ctx, imbalance, emitted))
            if taken:
                self.forwards.append((start, step, taken / (1 - setup.spec.cache_hit)))
            self._retire()
            self.prefill_end[finished] = self.admitted[finished] = env.now  # queueing: the wait to the first chunk
            for r in finished:
                heapq.heappush(self.pending, (env.now, r))
            self._activate()

    def _admit_prompts(self) -> None:
        """Queued requests, first come first served, to the least-loaded unit with KV room and under the cap."""
        while self.queue and self._reserve(self.queue[0]):
            r = self.queue.popleft()
            self.filling[self.unit_of[r]].append(r)

    def _chunks(self) -> tuple[np.ndarray, list[int], float, int]:
        """This step's prompt tokens per unit (each unit's budget less its decode tokens), the prompts they
        finish, the token-weighted mean prompt length and the tokens taken in all."""
        setup = self.setup
        rooms = setup.prefill_room - self.active_per_unit * setup.spec.verify_tokens
        chunks = np.zeros(setup.decode_units, dtype=np.int64)
        finished: list[int] = []
        weighted = taken = 0
        for u, queue in enumerate(self.filling):
            room = int(rooms[u])
            while queue and room > 0:
                r = queue[0]
                if self.left[r] > room and not setup.spec.chunked_prefill:
                    break  # a whole prompt waits for a step with room for it
                if math.isnan(self.prefill_start[r]):
                    self.prefill_start[r] = self.env.now
                take = int(min(self.left[r], room))
                self.left[r] -= take
                room -= take
                chunks[u] += take
                weighted, taken = weighted + take * int(self.prompts[r]), taken + take
                if self.left[r]:
                    break
                finished.append(queue.popleft())
        return chunks, finished, weighted / taken if taken else 0.0, taken


def simulate_serving(
    s: ServeSpec,
    rates: KernelRates,
    rate_qps: float,
    input_len: Lengths | str | None = None,
    output_len: Lengths | str | None = None,
    requests: int = 2000,
    seed: int = 0,
    prefill_instances: int | None = None,
    expert_cv: float | None = EVENT_DEFAULTS["expert_cv"],
) -> dict[str, Any]:
    """Simulate `requests` requests arriving Poisson at `rate_qps` at one decode instance of `s` (JSON-ready
    result); lengths as `request_lengths`; `prefill_instances` None: the fewest whose analytic input
    throughput covers the offered prompt tokens. The same seed gives the same dict."""
    _check(rate_qps, requests, seed, prefill_instances)
    inputs, outputs = request_lengths(s, input_len, output_len)
    rng = np.random.default_rng(seed)
    arrival_s = np.cumsum(rng.exponential(1 / rate_qps, requests))
    prompts, outs = inputs.sample(rng, requests), outputs.sample(rng, requests)
    setup = build_setup(s, rates, prompts, outs, expert_cv)
    if s.colocated and prefill_instances is not None:
        raise ValueError("a co-located pool has no prefill instances: drop --prefill-instances")
    instances = 0 if s.colocated else prefill_instances or _prefill_instances(setup, rate_qps, prompts)
    _check_events(setup, arrival_s, prompts, outs, instances)
    env = simpy.Environment()
    head = {"offered_qps": rate_qps, "input_len": inputs.text, "output_len": outputs.text, "seed": seed}
    if s.colocated:
        pool = _Colocated(env, setup, rng, arrival_s, prompts, outs)
        env.process(pool.pool())
        env.run()
        return head | {"colocated": True, "prefill_load": None} | summary(s, rates, setup, pool, 0)
    sim = _Serving(env, setup, rng, arrival_s, prompts, outs)
    for _ in range(instances):
        env.process(sim.prefill_instance())
    env.process(sim.decode_instance())
    env.run()
    offered = rate_qps * float(prompts.mean()) / (instances * _prefill_instance_tokens_per_s(setup, prompts))
    return head | {"prefill_load": offered} | summary(s, rates, setup, sim, instances)


def request_lengths(
    s: ServeSpec, input_len: Lengths | str | None, output_len: Lengths | str | None
) -> tuple[Lengths, Lengths]:
    """The prompt and output length distributions: as given (text is parsed), else the output fixed at
    `s.output_tokens` and the prompt at the context less the mean output; a mean request longer than the
    deployment's context is refused."""
    if output_len is None:
        if s.output_tokens is None:
            raise ValueError(
                "the serving event model needs output lengths: give --output-len DIST or --output-tokens N"
            )
        output_len = str(s.output_tokens)
    outputs = parse_lengths(output_len) if isinstance(output_len, str) else output_len
    if input_len is None:
        input_len = str(max(1, round(s.context - outputs.mean_tokens)))
    inputs = parse_lengths(input_len) if isinstance(input_len, str) else input_len
    if inputs.mean_tokens + outputs.mean_tokens > s.context:
        raise ValueError(
            f"the mean request ({inputs.mean_tokens:,.0f} prompt + {outputs.mean_tokens:,.0f} output tokens) is "
            f"longer than the deployment's context of {s.context:,} tokens; raise --context"
        )
    return inputs, outputs


def _check(rate_qps: float, requests: int, seed: int, prefill_instances: int | None) -> None:
    low, high = RATE_QPS_RANGE
    if not (isinstance(rate_qps, int | float) and low <= rate_qps <= high):
        raise ValueError(f"rate={rate_qps!r} must be from {low:g} to {high:,.0f} requests per second")
    if not (isinstance(requests, int) and MIN_REQUESTS <= requests <= limits.MAX_SERVE_REQUESTS):
        raise ValueError(f"requests={requests!r} must be from {MIN_REQUESTS} to {limits.MAX_SERVE_REQUESTS:,}")
    if not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    if prefill_instances is not None and not (
        isinstance(prefill_instances, int) and 0 < prefill_instances <= MAX_PREFILL_INSTANCES
    ):
        raise ValueError(f"prefill_instances={prefill_instances!r} must be from 1 to {MAX_PREFILL_INSTANCES:,}")


def _prefill_instances(setup: Setup, rate_qps: float, prompts: np.ndarray) -> int:
    """The fewest prefill instances whose analytic input tokens/s cover the offered prompt tokens."""
    need = max(1, math.ceil(rate_qps * float(prompts.mean()) / _prefill_instance_tokens_per_s(setup, prompts)))
    if need > MAX_PREFILL_INSTANCES:
        raise ValueError(
            f"{rate_qps:,g} requests/s need {need:,} prefill instances to keep up (at most "
            f"{MAX_PREFILL_INSTANCES:,}); lower --rate or give --prefill-instances"
        )
    return need


def _prefill_instance_tokens_per_s(setup: Setup, prompts: np.ndarray) -> float:
    """One prefill instance's analytic input tokens/s: full forwards at the mean prompt length, cache hits
    included."""
    full_s = setup.prefill(setup.prefill_room / setup.spec.tp, float(prompts.mean()))
    return setup.prefill_units * setup.prefill_room / (1 - setup.spec.cache_hit) / full_s


def _check_events(
    setup: Setup, arrival_s: np.ndarray, prompts: np.ndarray, outputs: np.ndarray, instances: int
) -> None:
    """Refuse a run of more than MAX_EVENTS decode steps and prefill forwards (an estimate: a step emits at
    least one token, and runs at least as long as a one-sequence step)."""
    tokens = int((outputs - 1).sum())
    concurrency = setup.decode_units * (setup.batch_cap_per_unit or setup.kv_tokens_per_unit / setup.reserve.max())
    shortest_s = setup.decode(1, float(prompts.min() + 1), 1.0)
    steps = min(tokens, arrival_s[-1] / shortest_s + tokens / concurrency + outputs.max())
    new = np.maximum(1, prompts * (1 - setup.spec.cache_hit))
    forwards = float(np.ceil(new / setup.prefill_room).sum()) + instances
    if steps + forwards > MAX_EVENTS:
        raise ValueError(
            f"this run would take about {steps + forwards:,.0f} decode steps and prefill forwards (at most "
            f"{MAX_EVENTS:,}); give fewer --requests, a higher --rate or shorter lengths"
        )

"""The analytic training model: per-stage times, the step and its breakdown, memory per GPU (the run's report,
GPU-hours and cost: `simulator.analytic.report`).

Per micro-batch and pipeline stage (per GPU, after TP/EP split):
- compute: GEMM FLOPs at the profile's fp8 / bf16 efficiency (MoE experts at
  the grouped-GEMM rate), attention core at the attention rate, element-wise
  ops at the profile's HBM bandwidth, selective recomputation in backward;
  forward F, backward for inputs, backward for weights W (B = both);
- expert-parallel dispatch / combine: bytes per token from `workloads.comm`
  (node-limited routing, one InfiniBand copy per remote node, NVLink
  forwarding), over the NIC and NVLink at their achieved rates, no faster than
  the busiest switch link of the run's topology allows (`simulator.analytic.fabric`);
- pipeline send / recv of the activations, and once per step the ZeRO
  gradient reduce-scatter and weight all-gather where their ranks sit, and the
  optimizer (HBM-bound): `simulator.analytic.dataparallel`.

How much communication is hidden depends on the schedule: DualPipe overlaps a
forward and a backward chunk of two micro-batches, so the pair costs
max(compute, communication) with compute running on the SMs not kept for
communication; the other schedules run them in turn. The pipeline bubble
follows each schedule's formula (`simulator.schedules`), with communication
exposed in the chunks that have no partner.
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from operator import attrgetter

import numpy as np

from hwmodels.collectives import in_node_s
from simulator.analytic.dataparallel import dp_and_optimizer_by_batch
from simulator.analytic.epcomm import compute_sm_share, ep_call_s, ep_link_s
from simulator.analytic.fabric import fabric_factors
from simulator.analytic.host import host_floor, host_s, launched
from simulator.analytic.memo import Memo
from simulator.analytic.pricing import compute_s, priced_by_part
from simulator.analytic.profile import KernelRates, rates_for
from simulator.analytic.stagetimes import StageTimes
from simulator.analytic.tpoverlap import exposed_s, paired_gemm_s
from simulator.runspec import RunSpec
from simulator.schedules import BIDIRECTIONAL, ChunkTimes, bubble_s, warmup_forwards
from workloads.activations import recomputed
from workloads.flops import mean_attended_keys, windowed_keys
from workloads.layout import balanced_layer_counts, is_moe_layer, stage_blocks, stage_layer_counts
from workloads.ops import TRAINING_PHASES, Op, cp_ops, ep_ops, head_ops, layer_ops, pp_ops, tp_ops
from workloads.spec import ModelSpec

BREAKDOWN_KEYS = ("compute", "exposed_ep_comm", "exposed_pp_comm", "bubble", "exposed_dp_comm", "optimizer")


def balanced_stage_layers(run: RunSpec, profile: KernelRates | str | None = None) -> list[int]:
    """Layers per stage that balance the pipeline ranks' time per micro-batch (DualPipe: each rank's F&B pair
    of its two stages; else a stage's F + B with its communication): of `split_candidates`, the one with the
    shorter whole step (the balanced one on a tie)."""
    rates = rates_for(profile, run.node.gpu)
    candidates = split_candidates(run, rates)
    if candidates[0] == candidates[1]:
        return list(candidates[0])
    n = np.array([run.microbatches])
    priced = [step_parts(run.with_split(c), rates, n)[0] for c in candidates]
    return list(candidates[int(split_choice(priced)[0])])


def split_candidates(run: RunSpec, rates: KernelRates) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The balanced split and the even one; neither depends on the batch (a sweep's batch axis shares them).

    The balanced split starts from the better of the even split and `balanced_layer_counts` (the first and
    last stages' extra work in units of a middle layer), then moves one layer at a time off the busiest rank
    while that makes the ranks' loads, busiest first, smaller. Remembered per run (less its batch) and rates.
    """
    key = _stage_key(run)
    return _CANDIDATES.get(key, (rates,), lambda: _split_candidates(run, rates))


def split_choice(priced: list[dict[str, np.ndarray]]) -> np.ndarray:
    """For each micro-batch count, the index of the candidate split whose whole step is shortest (to the
    nanosecond; the first on a tie), from each candidate's `step_parts`."""
    steps = [sum(parts.values(), np.zeros(len(parts["compute"]))) for parts in priced]
    rounded = [[round(float(x), 9) for x in step] for step in steps]  # Python's exact rounding, on every machine
    return np.argmin(np.array(rounded), axis=0)


def _split_candidates(run: RunSpec, rates: KernelRates) -> tuple[tuple[int, ...], tuple[int, ...]]:
    spec, pp = run.model, run.pp
    bidirectional = run.schedule in BIDIRECTIONAL  # a rank holds two stages (DualPipe)
    layers = spec.num_hidden_layers
    even = stage_layer_counts(layers, pp)
    if pp == 1:
        return tuple(even), tuple(even)
    moe = [is_moe_layer(spec, k) for k in range(layers)]
    mtp = (spec.is_moe,) * spec.num_nextn_predict_layers
    stage_cache: dict[tuple[tuple[bool, ...], bool, bool], StageTimes] = {}
    rank_cache: dict[tuple[object, ...], float] = {}

    def stage_keys(counts: list[int]) -> list[tuple[tuple[bool, ...], bool, bool]]:
        keys, start = [], 0
        for stage, n in enumerate(counts):
            last = stage == pp - 1
            keys.append((tuple(moe[start : start + n]) + (mtp if last else ()), stage == 0, last))
            start += n
        return keys

    load = (lambda t: t.overlapped_pair_s()) if run.ep_overlapped else _stage_load  # a rank's F&B pair

    def loads(counts: list[int]) -> list[float]:
        keys = stage_keys(counts)
        for key in keys:
            if key not in stage_cache:
                stage_cache[key] = block_times(run, rates, *key)
        groups = [(keys[r], keys[pp - 1 - r]) for r in range(pp // 2)] if bidirectional else [(k,) for k in keys]
        out = []
        for group in groups:
            if group not in rank_cache:
                times = [stage_cache[k] for k in group]
                rank_cache[group] = load(times[0] if len(times) == 1 else (times[0] + times[1]).scaled(0.5))
            out.append(rank_cache[group])
        return out

    loads(even)  # fills the stage cache
    per_layer = _stage_load(stage_cache[stage_keys(even)[pp // 2]]) / even[pp // 2]
    first, last = (_stage_load(stage_cache[stage_keys(even)[s]]) / per_layer - even[s] for s in (0, pp - 1))
    estimate_split = balanced_layer_counts(layers, pp, max(0.0, first), last, paired=bidirectional)
    counts = min((estimate_split, even), key=lambda c: _settled(loads(c)))
    return tuple(_descend(counts, loads, bidirectional)), tuple(even)


def _settled(loads: list[float]) -> tuple[float, ...]:
    """Loads busiest first, to the picosecond: splits whose loads differ only by rounding (a layer moved
    within one DualPipe rank's pair of stages) compare equal, so the first found is kept on any machine."""
    return tuple(round(x, 12) for x in sorted(loads, reverse=True))


def _stage_load(t: StageTimes) -> float:
    return t.f + t.b + t.ep_f + t.ep_b + t.pp_f + t.pp_b


def _descend(counts: list[int], loads, paired: bool) -> list[int]:
    """Move one layer at a time from a stage of the busiest rank to one of the lightest ranks' stages while
    the loads, sorted busiest first, get lexicographically smaller (a strict descent: it ends)."""
    pp = len(counts)
    current = _settled(loads(counts))
    for _ in range(4 * pp):
        per_rank = loads(counts)
        ranks = sorted(range(len(per_rank)), key=per_rank.__getitem__)
        members = (lambda r: (r, pp - 1 - r)) if paired else (lambda r: (r,))
        sources = [s for s in members(ranks[-1]) if counts[s] > 0]
        targets = [t for r in ranks[:3] for t in members(r) if t not in sources]
        best = None
        for s in sources:
            for t in targets:
                trial = counts.copy()
                trial[s] -= 1
                trial[t] += 1
                value = _settled(loads(trial))
                if value < (best[0] if best else current):
                    best = (value, trial)
        if best is None:
            break
        current, counts = best
    return counts


def resolved(run: RunSpec, profile: KernelRates | str | None = None) -> RunSpec:
    """The run with its stage split fixed (balanced when not given; each balance is remembered per run and
    rates, as a sweep over tokens or prices asks for the same one again)."""
    if run.stage_layers is not None:
        return run
    rates = rates_for(profile, run.node.gpu)
    key = (_stage_key(run), run.global_batch_tokens)
    split = _SPLITS.get(key, (rates,), lambda: tuple(balanced_stage_layers(run, rates)))
    return run.with_split(split)


def _stage_key(run: RunSpec) -> tuple:
    """What a run's per-stage times and candidate splits depend on (`_STAGE_FIELDS`)."""
    return _STAGE_GETTER(run)


def tokens_per_gpu(run: RunSpec) -> float:
    """Tokens one GPU runs per micro-batch (sequence parallelism splits them over the TP group, context
    parallelism each sequence over the CP group)."""
    return run.micro_batch * run.seq_len / (run.tp * run.cp)


def block_ops(run: RunSpec, moe: bool) -> tuple[Op, ...]:
    """The compute ops of one decoder layer of this run on one GPU, per micro-batch, every training phase."""
    overlap = run.tp_comm == "overlapped"
    return _layer_ops(
        run.model,
        moe,
        tokens_per_gpu(run),
        run.seq_len,
        run.layout.ep,
        run.precision,
        run.tp,
        run.fp8_recipe,
        overlap,
        run.ep_dispatcher,
    )


@lru_cache(maxsize=1024)
def _layer_ops(
    spec: ModelSpec, moe: bool, tokens: float, seq_len: int, ep: int, precision: str, tp: int, scaling: str,
    tp_overlap: bool, dispatcher: str,
) -> tuple[Op, ...]:  # fmt: skip
    """`workloads.ops.layer_ops`, built once per distinct layer: the stage balancer prices each many times."""
    ctx, window_ctx = mean_attended_keys(spec, seq_len), windowed_keys(spec, seq_len)
    ops = layer_ops(spec, moe, tokens, ctx, TRAINING_PHASES, ep, precision, window_ctx, tp, scaling, tp_overlap,
                    dispatcher)  # fmt: skip
    return tuple(ops)


def routed_expert_s(run: RunSpec, rates: KernelRates) -> tuple[float, float, float]:
    """Forward, input-gradient and weight-gradient seconds of one MoE layer's routed-expert GEMMs per
    micro-batch on one GPU at the mean load (the event model scales them by each draw's busiest GPU)."""
    routed = [op for op in block_ops(run, True) if op.component == "routed_experts"]
    by_phase = priced_by_part(routed, rates, compute_sm_share(run))
    f, b, w = (by_phase[("mlp", phase)] for phase in TRAINING_PHASES)
    return f, b, w


def stage_times(run: RunSpec, rates: KernelRates, stage: int) -> StageTimes:
    """Per-GPU seconds of one micro-batch on `stage`."""
    blocks = tuple(stage_blocks(run.model, run.layout, stage, include_mtp=True))
    return block_times(run, rates, blocks, first=stage == 0, last=stage == run.pp - 1)


# What a stage's times and the candidate splits depend on: every RunSpec field but the split itself, the batch
# (the choice between the candidates depends on it), the run's length and price, and the caller's defaults.
_NOT_STAGE = ("stage_layers", "defaults", "tokens", "price_per_gpu_hour", "global_batch_tokens")
_STAGE_FIELDS = tuple(f.name for f in fields(RunSpec) if f.name not in _NOT_STAGE)
_STAGE_GETTER = attrgetter(*_STAGE_FIELDS)
_SPLITS: Memo[tuple[int, ...]] = Memo()
_CANDIDATES: Memo[tuple[tuple[int, ...], tuple[int, ...]]] = Memo()
_ALL_STAGES: Memo[tuple[StageTimes, ...]] = Memo()
_STEP_PARTS: Memo[tuple[dict[str, np.ndarray], np.ndarray, list[StageTimes]]] = Memo(1024)
_STAGE_TIMES: Memo[StageTimes] = Memo()
_PRICED: Memo[dict[tuple[str, str], float]] = Memo()


def block_times(run: RunSpec, rates: KernelRates, blocks: tuple[bool, ...], first: bool, last: bool) -> StageTimes:
    """Per-GPU seconds of one micro-batch on a stage that runs `blocks` (each a MoE flag; the last stage's
    include its MTP blocks), the first stage of the pipeline and / or the last: the stage's operation list
    (`workloads.ops`) priced op by op, then grouped into the halves DualPipe overlaps. Remembered per run
    (less its split), rates and stage: an estimate asks for each distinct stage many times."""
    key = (_stage_key(run), blocks, first, last)
    return _STAGE_TIMES.get(key, (rates,), lambda: _block_times(run, rates, blocks, first, last))


def _priced_layer(
    ops: tuple[Op, ...], rates: KernelRates, sm_share: float, imbalance: float, hbm_bytes_per_s: float
) -> dict[tuple[str, str], float]:
    """`priced_by_part` of one layer's op list (a cached tuple: the same object for the same layer), once per
    rates object and pricing inputs; stages and candidate layouts share layers. Read-only."""
    key = (sm_share, imbalance, hbm_bytes_per_s)
    return _PRICED.get(key, (ops, rates), lambda: priced_by_part(ops, rates, sm_share, imbalance, hbm_bytes_per_s))


class _RunParts:
    """What every stage of a run shares, priced once per run (less its split and batch) and rates: each layer
    kind's priced op list, the head, the recomputed up-projections, TP's collectives, one MoE layer's dispatch and
    combine, and the pipeline sends. A stage's times are then sums (`_block_times`)."""

    def __init__(self, run: RunSpec, rates: KernelRates) -> None:
        self.run, self.rates = run, rates
        self.sm_share = compute_sm_share(run)
        self.per_gpu = tokens_per_gpu(run)
        self.hbm = run.node.gpu.hbm_bw_bytes_per_s
        self._layers: dict[bool, dict[tuple[str, str], float]] = {}
        self._again: dict[bool, dict[str, float]] = {}
        self._pp: dict[tuple[bool, bool], tuple[float, float]] = {}
        self._head: dict[tuple[str, str], float] | None = None
        self._ep: dict[str, float] | None = None
        tokens = run.micro_batch * run.seq_len / run.cp  # a TP group's; its TP+SP collectives, forward
        tp = tp_ops(run.model, tokens, run.tp, TRAINING_PHASES[0]) if run.tp > 1 else []
        # one half's all-gather and reduce-scatter (`workloads.ops.tp_ops`: each GPU's shard of the buffer
        # nccl-tests counts; the attention half's, the MLP's moves the same), NCCL's as timed in a node
        self.tp_gather_s, self.tp_scatter_s = (
            sum(in_node_s(kind, run.tp, op.nvlink_bytes * run.tp / (run.tp - 1), run.node)
                for op in tp if op.name == f"{kind}.attn")
            for kind in ("all_gather", "reduce_scatter")
        )  # fmt: skip
        self._cp: dict[bool, tuple[float, float]] = {}
        self._host: dict[bool | None, dict[tuple[str, bool], float]] = {}
        self._paired: dict[bool, dict[tuple[str, str, str], float]] = {}

    def tp_exposed_s(self, moe: bool, part: str, half: str) -> float:
        """One layer's TP seconds in `part`'s `half` (F or B) that show: all of them, or with userbuffers'
        overlap what outlasts the GEMM each runs under (`simulator.analytic.tpoverlap`)."""
        if self.run.tp_comm != "overlapped" or self.run.tp == 1:
            return self.tp_gather_s + self.tp_scatter_s  # 0 without TP
        if moe not in self._paired:
            ops = block_ops(self.run, moe)
            self._paired[moe] = paired_gemm_s(ops, self.rates, self.sm_share, self.hbm)
        return exposed_s(self.tp_gather_s, self.tp_scatter_s, self._paired[moe], part, half)

    def layer(self, moe: bool) -> dict[tuple[str, str], float]:
        if moe not in self._layers:
            ops = block_ops(self.run, moe)
            self._layers[moe] = _priced_layer(ops, self.rates, self.sm_share, self.run.expert_imbalance, self.hbm)
        return self._layers[moe]

    def host_s(self, moe: bool | None) -> dict[tuple[str, bool], float]:
        """Host seconds to launch one layer's (None: the head's) eager ops, by (half, forward?): `analytic.host`."""
        if moe not in self._host:
            run = self.run
            ops, recompute = (list(block_ops(run, moe)), run.recompute) if moe is not None else (
                head_ops(run.model, self.per_gpu, run.model.num_nextn_predict_layers, tp=run.tp), "none")  # fmt: skip
            self._host[moe] = host_s(*launched(ops, recompute, run.model.attention == "mla"), run.cuda_graphs)
        return self._host[moe]

    def head(self) -> dict[tuple[str, str], float]:
        if self._head is None:
            spec = self.run.model
            head = head_ops(spec, self.per_gpu, spec.num_nextn_predict_layers, tp=self.run.tp)
            self._head = priced_by_part(head, self.rates, self.sm_share, hbm_bytes_per_s=self.hbm)
        return self._head

    def recompute_s(self, moe: bool) -> dict[str, float]:
        """Seconds per half of the forward ops selective recomputation runs again in one layer's backward (full
        recomputation's whole forward is the halves' own, with their TP and CP: `_block_times`)."""
        if moe not in self._again:
            run, mla = self.run, self.run.model.attention == "mla"
            ops = recomputed(block_ops(run, moe), run.recompute, mla) if run.recompute == "selective" else []
            priced = priced_by_part(ops, self.rates, self.sm_share, hbm_bytes_per_s=self.hbm)
            self._again[moe] = {half: s for (half, _), s in priced.items()}
        return self._again[moe]

    def cp_exposed_s(self, moe: bool) -> tuple[float, float]:
        """Seconds per layer, forward and backward, that context parallelism's exchange shows: the ring of K/V
        beyond the attention it overlaps (each chunk's transfer under the attention of the one before: TE's
        ring); an all-gather or all-to-all whole, as it runs before the attention needs it (Llama 3: "the
        all-gather communication latency is exposed in the critical path")."""
        if moe not in self._cp:
            run, node = self.run, self.run.node
            across = run.tp * run.cp > node.gpus_per_node
            F, B, _ = TRAINING_PHASES
            core = [o for o in block_ops(run, moe) if o.component == "attn_core"]
            attn = {ph: compute_s([o for o in core if o.phase == ph], self.rates, self.sm_share) for ph in (F, B)}
            steps = run.cp - 1
            if across:
                rate = node.scaleout_achieved_bw_bytes_per_s_per_gpu / max(1.0, fabric_factors(run).dp)
                latency = node.nic.latency_s
            else:
                rate, latency = node.scaleup_achieved_bw_bytes_per_s, node.scaleup_latency_s
            out = {}
            for op in cp_ops(run.model, run.micro_batch * run.seq_len, run.cp, run.tp, across, run.cp_comm):
                link_s = (op.ib_bytes + op.nvlink_bytes) / rate + steps * latency
                out[op.phase] = max(0.0, link_s - attn[op.phase]) if run.cp_comm == "ring" else link_s
            self._cp[moe] = (out.get(F, 0.0), out.get(B, 0.0))
        return self._cp[moe]

    def ep_per_layer(self) -> dict[str, float]:
        """Seconds of one MoE layer's dispatch and combine, forward and backward, each with its call's fixed cost
        (`ep_call_s`)."""
        if self._ep is None:
            run = self.run
            F, B, _ = TRAINING_PHASES
            names = {("dispatch", F): "dispatch_f", ("combine", F): "combine_f", ("dispatch", B): "dispatch_b",
                     ("combine", B): "combine_b"}  # fmt: skip
            self._ep = {
                names[(op.kind, op.phase)]: run.expert_imbalance * ep_link_s(run, op) + ep_call_s(run, op)
                for op in ep_ops(
                    run.model, run.layout, self.per_gpu, (F, B), run.node_limit, run.precision, run.ep_dispatcher
                )
            }
        return self._ep

    def pp_s(self, first: bool, last: bool) -> tuple[float, float]:
        """Seconds of a stage's activation send forward and gradient send backward."""
        if (first, last) not in self._pp:
            run, node = self.run, self.run.node
            pp_f = pp_b = 0.0
            # an interleaved rank runs v model chunks, each ending in a send: v hops per micro-batch each way
            hops = run.virtual_stages if run.schedule == "interleaved" else 1
            pp_slowdown = max(1.0, fabric_factors(run).pp) if run.pp > 1 else 1.0
            for op in pp_ops(run.model, self.per_gpu, first, last) if run.pp > 1 else ():
                rate = node.scaleout_achieved_bw_bytes_per_s_per_gpu / pp_slowdown
                hop = hops * (op.ib_bytes / rate + node.nic.latency_s)
                pp_f, pp_b = (hop, pp_b) if op.phase == TRAINING_PHASES[0] else (pp_f, hop)
            self._pp[(first, last)] = (pp_f, pp_b)
        return self._pp[(first, last)]


_RUN_PARTS: Memo[_RunParts] = Memo(size=1024)


def _block_times(run: RunSpec, rates: KernelRates, blocks: tuple[bool, ...], first: bool, last: bool) -> StageTimes:
    shared = _RUN_PARTS.get(_stage_key(run), (rates,), lambda: _RunParts(run, rates))
    F, B, W = TRAINING_PHASES

    layer = {moe: shared.layer(moe) for moe in set(blocks)}
    t = {key: sum(layer[moe].get(key, 0.0) for moe in blocks) for key in set().union(*layer.values())}
    if last:
        for key, s in shared.head().items():
            t[key] = t.get(key, 0.0) + s
    part = lambda p, ph: t.get((p, ph), 0.0)  # noqa: E731
    n = len(blocks)
    again = {h: sum(shared.recompute_s(moe).get(h, 0.0) for moe in blocks) for h in ("attn", "mlp")}  # selective
    full = run.recompute == "full"

    # Tensor parallelism with sequence parallelism (`workloads.ops.tp_ops`): an all-gather before and a
    # reduce-scatter after each half (attention, MLP), forward and backward, over NVLink as NCCL's collectives
    # were timed in a node; in turn with compute, or (tp_comm="overlapped") each under the GEMM it feeds or
    # drains as far as that lasts (`_RunParts.tp_exposed_s`). The weight gradients' second all-gather of each
    # half's input runs under its input-gradient GEMMs (Megatron's async gather): only what outlasts them shows.
    tp_gather = shared.tp_gather_s * n

    def tp_s(part_name: str, half: str) -> float:
        return sum(shared.tp_exposed_s(moe, part_name, half) for moe in blocks)

    cp = [shared.cp_exposed_s(moe) for moe in blocks] if run.cp > 1 else []  # CP's ring beyond the attention
    cp_f, cp_b = sum(f for f, _ in cp), sum(b for _, b in cp)

    f_attn = part("attn", F) + cp_f + tp_s("attn", "F")
    f_mlp = part("mlp", F) + part("head", F) + tp_s("mlp", "F")
    b_attn = part("attn", B) + part("attn", W) + again["attn"] + (f_attn if full else 0.0) + cp_b
    b_attn += tp_s("attn", "B") + max(0.0, tp_gather - part("attn", B))  # the input re-gathered under the dgrads
    b_mlp = (
        part("mlp", B) + part("mlp", W) + part("head", B) + part("head", W) + again["mlp"] + (f_mlp if full else 0.0)
    )
    b_mlp += tp_s("mlp", "B") + max(0.0, tp_gather - part("mlp", B))

    comm = {"dispatch_f": 0.0, "combine_f": 0.0, "dispatch_b": 0.0, "combine_b": 0.0}
    moe_layers = sum(blocks)
    if moe_layers:
        for name, one_layer_s in shared.ep_per_layer().items():
            comm[name] = moe_layers * one_layer_s
    pp_f, pp_b = shared.pp_s(first, last)
    w = part("attn", W) + part("mlp", W) + part("head", W)

    # The host launches each eager op (`simulator.analytic.host`): a phase lasts at least as long as that takes.
    hosts = [shared.host_s(moe) for moe in blocks] + ([shared.host_s(None)] if last else [])
    f_attn, f_mlp, b_attn, b_mlp, wait = host_floor((f_attn, f_mlp, b_attn, b_mlp), comm, hosts)
    host_f, host_b = (sum(s for layer in hosts for (_, fwd), s in layer.items() if fwd == f) for f in (True, False))
    return StageTimes(
        f_attn, f_mlp, b_attn, b_mlp, w, pp_f=pp_f, pp_b=pp_b, host_wait=wait, host_f=host_f, host_b=host_b, **comm
    )


def all_stage_times(run: RunSpec, rates: KernelRates) -> tuple[StageTimes, ...]:
    """Per-GPU seconds of one micro-batch on each stage, remembered per run (less its batch) and split."""
    key = (_stage_key(run), run.stage_layers)
    return _ALL_STAGES.get(key, (rates,), lambda: tuple(stage_times(run, rates, s) for s in range(run.pp)))


def rank_times(run: RunSpec, profile: KernelRates) -> list[StageTimes]:
    """Per-micro-batch times of each pipeline rank (DualPipe: the mean of its two stages)."""
    stages = all_stage_times(run, profile)
    if run.schedule in BIDIRECTIONAL:
        return [(stages[r] + stages[run.pp - 1 - r]).scaled(0.5) for r in range(run.pp // 2)]
    return list(stages)


def dp_and_optimizer_s(run: RunSpec, profile: KernelRates) -> tuple[float, float]:
    """Exposed seconds per step of the data-parallel collectives, and of the optimizer, busiest rank
    (`dp_and_optimizer_by_batch` at the run's own micro-batch count)."""
    dp_s, opt_s = dp_and_optimizer_by_batch(run, profile, np.array([run.microbatches]), all_stage_times(run, profile))
    return float(dp_s[0]), float(opt_s)


def step_breakdown(run: RunSpec, profile: KernelRates) -> tuple[dict[str, float], StageTimes, ChunkTimes]:
    """Seconds per step by part (BREAKDOWN_KEYS), the busiest rank's times and its chunk times
    (`step_parts` at the run's own micro-batch count)."""
    parts, busiest, ranks = step_parts(run, profile, np.array([run.microbatches]))
    t = ranks[int(busiest[0])]
    return {k: float(v[0]) for k, v in parts.items()}, t, _rank_parts(run, t, np.array([run.microbatches]))[1]


def step_parts(
    run: RunSpec, profile: KernelRates, microbatches: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, list[StageTimes]]:
    """Seconds per step by part (BREAKDOWN_KEYS) at each micro-batch count (one array per part: a sweep's
    batch axis is priced in one pass), the busiest rank's index at each, and every rank's times. The busiest
    rank is the one whose own step (compute, exposed communication and bubble) is longest: a rank with light
    pairs can still be the slowest through the communication its unpaired chunks expose. Remembered per run
    (less its batch), split and counts: the split search prices the split `estimate` then reports. Read-only."""
    key = (_stage_key(run), run.stage_layers, tuple(np.asarray(microbatches).tolist()))
    return _STEP_PARTS.get(key, (profile,), lambda: _step_parts(run, profile, microbatches))


def _step_parts(
    run: RunSpec, profile: KernelRates, microbatches: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, list[StageTimes]]:
    ranks = rank_times(run, profile)
    parts = _ranks_parts(run, ranks, microbatches)[0]  # each (ranks, counts)
    totals = sum(parts.values(), np.zeros((len(ranks), len(microbatches))))
    busiest = np.argmax(totals, axis=0)
    columns = np.arange(len(microbatches))
    breakdown = {k: v[busiest, columns] for k, v in parts.items()}
    dp_s, opt_s = dp_and_optimizer_by_batch(run, profile, microbatches, all_stage_times(run, profile))
    breakdown |= {"exposed_dp_comm": dp_s, "optimizer": np.full(len(microbatches), opt_s)}
    return breakdown, busiest, ranks


def unpaired_microbatches(run: RunSpec) -> float:
    """Micro-batches (whole: every chunk's forward and backward) rank 0 runs outside overlapped F&B pairs.
    DualPipe's code runs 3PP/2 - 1 forwards and as many backwards so (warm-up, zero-bubble steps, cool-down),
    DualPipeV PP. 1F1B with ep_comm overlapped merges each steady forward with the backward beside it: the
    warm-up forwards (pp - 1 of 1F1B, 2(pp - 1) + (v - 1) pp chunks of the interleaved schedule) and one more
    (the first pair's forward runs ahead of its backward) stay unpaired, and as many backwards at the end."""
    if run.schedule == "dualpipe":
        return 3 * run.pp // 2 - 1
    if run.schedule in BIDIRECTIONAL:
        return run.pp
    v = run.virtual_stages if run.schedule == "interleaved" else 1
    return (warmup_forwards(run.schedule, run.pp, 0, v) + 1) / v


def _rank_parts(run: RunSpec, t: StageTimes, microbatches: np.ndarray) -> tuple[dict[str, np.ndarray], ChunkTimes]:
    """One rank's compute, exposed EP and PP communication and bubble per step at each micro-batch count, and
    its chunk times (`_ranks_parts` of one rank)."""
    parts, chunks = _ranks_parts(run, [t], microbatches)
    return {k: v[0] for k, v in parts.items()}, chunks[0]


def _ranks_parts(
    run: RunSpec, ranks: list[StageTimes], microbatches: np.ndarray
) -> tuple[dict[str, np.ndarray], list[ChunkTimes]]:
    """Each rank's compute, exposed EP and PP communication and bubble per step at each micro-batch count
    (arrays of ranks x counts: one pass for the pipeline), and each rank's chunk times."""
    n = np.asarray(microbatches, dtype=float)[None, :]
    paired = run.ep_overlapped
    rows = []  # per rank: F + B, EP and PP per micro-batch, the pairs' uncovered gap, EP's share of it, bubble,
    # the pairs' wait for the host
    chunks = []
    for t in ranks:
        if paired:
            fb, host = t.overlapped_pair_s(), t.pair_host_wait_s()
            comm_pairs = t.ep_f + t.ep_b + t.pp_f + t.pp_b
            ep_share = (t.ep_f + t.ep_b) / comm_pairs if comm_pairs else 0.0
            gap = fb - host - t.f - t.b  # what compute could not cover in the pair's slots
        else:
            fb, ep_share, gap, host = t.f + t.b + t.ep_f + t.ep_b + t.pp_f + t.pp_b, 0.0, 0.0, 0.0
        chunk = ChunkTimes(f=t.f + t.ep_f + t.pp_f, b=t.b + t.ep_b + t.pp_b, w=t.w, fb=fb)
        chunks.append(chunk)
        bubble = bubble_s(run.schedule, run.pp, chunk, run.virtual_stages)
        rows.append((t.f + t.b, t.ep_f + t.ep_b, t.pp_f + t.pp_b, gap, ep_share, 1 - ep_share, bubble, host))
    compute, ep, pp, gap, ep_share, pp_share, bubble, host = (col[:, None] for col in np.array(rows).T)
    waited = 0.0
    if paired:
        # Micro-batches whose forward and backward run outside overlapped pairs, their communication exposed
        unpaired = np.minimum(n, unpaired_microbatches(run))
        short = (n - unpaired) * gap
        exposed_ep = short * ep_share + unpaired * ep
        exposed_pp = short * pp_share + unpaired * pp
        waited = (n - unpaired) * host  # the GPU waiting on the host in the pairs: compute's, as host_wait is
    else:
        exposed_ep, exposed_pp = n * ep, n * pp
    width = (len(ranks), n.shape[1])
    parts = {
        "compute": n * compute + waited,
        "exposed_ep_comm": exposed_ep,
        "exposed_pp_comm": exposed_pp,
        "bubble": np.broadcast_to(bubble, width).copy(),
    }
    return parts, chunks

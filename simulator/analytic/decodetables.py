"""Decode attention timed shape by shape, looked up rather than fitted.

A profile's decode samples (`hwmodels.profile.Sample` with op "decode": TensorRT-LLM's generation attention timed
by AIConfigurator) time one kernel class at one head shape (the widths read per cached token and KV head, the
query heads per KV head) over many (sequence, KV head) pairs and cached lengths. One roofline per cache dtype
misses them by ~21% rms (head dim 64's long caches run slower than it says, head dim 128's faster), so where a
run's decode attention has a timed head shape it is priced as timed: linear in the pairs at each timed length
(held below the fewest, in proportion to the pairs beyond the most: one thread block each), then linear between
the two lengths around the run's (held below the shortest, in proportion beyond the longest). The XQA and
FlashMLA kernels run one thread block per (sequence, KV head) pair, so shapes that differ only in how those pairs
split into sequences and heads share a table. Serving's decode phase only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass

from hwmodels.kernels import interpolated
from hwmodels.profile import Sample, class_dtype
from hwmodels.specs import GPUSpec
from workloads.dtypes import dtype_bytes
from workloads.ops import Op

DecodeKey = tuple[str, int, int, int]  # (kernel class, width read per token and KV head: k, n; query heads a KV head)


@dataclass(frozen=True, slots=True)
class DecodeTable:
    """One decode-attention head shape on one GPU: at each timed cached length, the seconds at each timed count
    of (sequence, KV head) pairs (never fewer for more pairs)."""

    lengths: tuple[int, ...]
    pairs: tuple[tuple[float, ...], ...]
    seconds: tuple[tuple[float, ...], ...]

    def time_s(self, pairs: float, length: float) -> float:
        """Seconds of one kernel over `pairs` (sequence, KV head) pairs of `length` cached tokens."""
        i = bisect_left(self.lengths, length)
        if i == 0 or i == len(self.lengths):  # outside the timed lengths: the nearest, in proportion beyond it
            j = min(i, len(self.lengths) - 1)
            return self._at(j, pairs) * max(1.0, length / self.lengths[j])
        lo, hi = self.lengths[i - 1], self.lengths[i]
        share = (length - lo) / (hi - lo)
        return (1 - share) * self._at(i - 1, pairs) + share * self._at(i, pairs)

    def _at(self, j: int, pairs: float) -> float:
        xs, ys = self.pairs[j], self.seconds[j]
        if pairs >= xs[-1]:
            return ys[-1] * pairs / xs[-1]  # one thread block a pair: in proportion beyond the most timed
        return interpolated(pairs, xs, ys)

    def scaled(self, k: float) -> DecodeTable:
        """This table with every kernel `k` times as fast (a sensitivity probe, as `KernelFit.scaled`)."""
        return DecodeTable(self.lengths, self.pairs, tuple(tuple(s / k for s in row) for row in self.seconds))


def decode_tables(samples: tuple[Sample, ...], src: GPUSpec, gpu: GPUSpec) -> dict[DecodeKey, DecodeTable]:
    """The decode samples as tables for `gpu`: timed on `src` (the profile's GPU), each timing carried to `gpu` by
    the datasheet term that binds it at `src`'s peaks (its FLOPs at the dense peak or its bytes at the HBM
    bandwidth), as `moetables.moe_tables` carries MoE operators."""
    points: dict[DecodeKey, dict[int, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    for s in samples:
        if s.op != "decode":
            continue
        peak_src, peak_dst = (getattr(g, f"peak_{class_dtype(s.kernel_class)}_flop_per_s") for g in (src, gpu))
        if not (peak_src and peak_dst):
            continue  # no tensor cores for it on this GPU
        compute, memory = s.flops / peak_src, s.bytes / src.hbm_bw_bytes_per_s
        ratio = peak_src / peak_dst if compute >= memory else src.hbm_bw_bytes_per_s / gpu.hbm_bw_bytes_per_s
        by_pairs = points[(s.kernel_class, s.k, s.n, s.groups)][int(s.m)]  # a decode sample's cached tokens: whole
        by_pairs[s.items] = max(by_pairs.get(s.items, 0.0), s.time_s * ratio)  # two shapes, one count: the slower
    out = {}
    for key, by_length in points.items():
        lengths = tuple(sorted(by_length))
        pairs, seconds = [], []
        for length in lengths:
            xs = tuple(sorted(by_length[length]))
            held, best = [], 0.0
            for x in xs:  # more pairs never faster
                best = max(best, by_length[length][x])
                held.append(best)
            pairs.append(xs)
            seconds.append(tuple(held))
        out[key] = DecodeTable(lengths, tuple(pairs), tuple(seconds))
    return out


def decode_shape(op: Op) -> tuple[DecodeKey, float]:
    """A decode-attention op's table key and its cached length, from its counts (`workloads.ops.
    decode_attention_op`): it reads each pair's tokens at `k` + `n` wide (MLA: the `k`-wide latent and rope key
    alone) and does 2 x (k + n) FLOPs per token and query head."""
    cls = op.profile_class
    width = op.k if cls.startswith("attention_decode_mla") else op.k + op.n
    length = op.hbm_bytes / (op.items * width * dtype_bytes(op.precision))
    group = op.flops / (2 * length * (op.k + op.n) * op.items)
    return (cls, int(op.k), int(op.n), round(group)), length


def decode_op_s(op: Op, tables: dict[DecodeKey, DecodeTable]) -> float | None:
    """Seconds of a decode-attention op whose head shape was timed; None where none was."""
    if not tables or op.kind != "attention" or op.phase != "decode" or op.items <= 0 or op.hbm_bytes <= 0:
        return None
    key, length = decode_shape(op)
    table = tables.get(key)
    return table.time_s(op.items, length) if table else None

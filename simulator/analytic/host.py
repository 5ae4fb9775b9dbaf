"""The host's launch time under each stage's compute: a GPU cannot run kernels faster than the host launches them.

An eager framework launches every kernel from Python. Where one layer's kernels take the GPU less time than the
host takes to launch them (a small model, a short micro-batch, many small experts), the GPU waits, and the
phase lasts as long as the host's launches. The host's cost is measured, not fitted: DeepSeek's V3 training
trace gives the host seconds of one layer forward and backward (`hwmodels.host`), spread here over the
operations of v3sim's list for that same layer, so that each operation of any model's list costs the host the
same. Operations a run captures in CUDA graphs (`RunSpec.cuda_graphs`) cost the host nothing per kernel.
The floor compares a phase's host time with its GPU time (compute and the expert all-to-all the host's queue
also waits behind) per stage and micro-batch: between two of the host's synchronisations (one per MoE layer in
DeepEP's and Megatron's dispatchers) the host runs ahead of the GPU, so the slower of the two sets the pace.
Under EP overlap a forward and a backward chunk run on two streams but are launched by one host thread, so their
pair lasts at least both chunks' launches (`StageTimes.overlapped_pair_s`): overlap halves the GPU's time, not
the host's.
"""

from __future__ import annotations

from functools import cache

from hwmodels.host import load_host_trace
from workloads.activations import recomputed
from workloads.ops import TRAINING_PHASES, Op, layer_ops
from workloads.registry import load_model

ROUTER_OPS = ("gate", "router_topk")  # Megatron's moe_router and moe_preprocess scopes


def launched(ops: tuple[Op, ...] | list[Op], recompute: str, mla: bool) -> tuple[list[Op], list[Op]]:
    """The ops of a layer the host launches forward and backward: the backward launches again the forward ops
    recomputation runs (`workloads.activations.recomputed`)."""
    F = TRAINING_PHASES[0]
    forward = [op for op in ops if op.phase == F]
    return forward, [op for op in ops if op.phase != F] + recomputed(ops, recompute, mla)


@cache
def host_s_per_op() -> tuple[float, float]:
    """Host seconds one launched operation costs, forward and backward (input and weight gradients): the
    trace's seconds per layer over the ops v3sim launches for the layer the trace ran."""
    trace = load_host_trace()
    spec = load_model(trace.model)
    ops = layer_ops(spec, True, trace.tokens, trace.tokens, TRAINING_PHASES, trace.ep, trace.precision)
    forward, backward = launched(ops, trace.recompute, spec.attention == "mla")
    return trace.forward_s_per_layer / launches(forward), trace.backward_s_per_layer / launches(backward)


def launches(ops: list[Op]) -> float:
    """Kernel launches of these ops per layer: an op of one kind of layer (`Op.layers`) launches in that share."""
    return sum(op.layers for op in ops)


def captured(op: Op, scope: str) -> bool:
    """Whether `op` runs inside a CUDA graph under `scope` (simulator.names.CUDA_GRAPH_SCOPES)."""
    if scope == "full":
        return True
    if "attn" in scope and op.part == "attn":
        return True
    return "router" in scope and op.name in ROUTER_OPS


def host_s(forward: list[Op], backward: list[Op], scope: str) -> dict[tuple[str, bool], float]:
    """Host seconds to launch these ops one by one, by (half, forward?): the attention half's or the rest's;
    what `scope` captures in CUDA graphs costs nothing."""
    per_f, per_b = host_s_per_op()
    out: dict[tuple[str, bool], float] = {}
    for ops, fwd, per_op in ((forward, True, per_f), (backward, False, per_b)):
        for op in ops:
            if op.stream == "compute" and not captured(op, scope):
                key = ("attn" if op.part == "attn" else "mlp", fwd)
                out[key] = out.get(key, 0.0) + per_op * op.layers  # launched in its share of the layers
    return out


def host_floor(
    halves: tuple[float, float, float, float], comm: dict[str, float], hosts: list[dict[tuple[str, bool], float]]
) -> tuple[float, float, float, float, float]:
    """A stage's compute halves (forward attention and MLP, backward attention and MLP) with the GPU's wait for
    the host added, and that wait: per phase, what the host's launches of its layers (`hosts`, one `host_s` each)
    outlast the halves and the all-to-all by, shared between the halves as their launches are."""
    host: dict[tuple[str, bool], float] = {}
    for layer in hosts:
        for key, s in layer.items():
            host[key] = host.get(key, 0.0) + s
    out, wait = list(halves), 0.0
    for i, fwd in ((0, True), (2, False)):
        attn_h, mlp_h = host.get(("attn", fwd), 0.0), host.get(("mlp", fwd), 0.0)
        links = comm["dispatch_f"] + comm["combine_f"] if fwd else comm["dispatch_b"] + comm["combine_b"]
        phase_wait = max(0.0, attn_h + mlp_h - (out[i] + out[i + 1] + links))
        if phase_wait > 0:
            out[i] += phase_wait * attn_h / (attn_h + mlp_h)
            out[i + 1] += phase_wait * mlp_h / (attn_h + mlp_h)
            wait += phase_wait
    return out[0], out[1], out[2], out[3], wait

"""What serving moves between GPUs: a MoE layer's expert all-to-all (its links and DeepEP's kernels), its
tensor-parallel collectives, the bound the network alone puts on time per output token, and a request's KV from
its prefill GPU to its decode GPU.

`network_bound_tpot_s` is that bound by the method of "Insights into DeepSeek-V3" (ISCA 2025, section on
inference speed): per layer two all-to-alls (two micro-batches) of 32 tokens x 9 experts x hidden x (1 byte
dispatch + 2 bytes combine) at the link's bandwidth, times the layers.
"""

from __future__ import annotations

import math

from hwmodels.collectives import in_node_s
from hwmodels.kernels import deepep_kernels, deepep_low_latency
from simulator.analytic.servingmemory import held_tokens, kv_bytes_per_token, prompt_tokens
from simulator.servespec import ServeSpec
from workloads.comm import activation_bytes_per_token
from workloads.engines import load_engine
from workloads.ops import Op
from workloads.servingops import all_reduce_message_bytes, gathered_ep_ops, moe_in_tp_group, serving_ep_ops

PREFILL_COMM_SMS = 24  # SMs DeepEP's normal kernels hold in prefill (DeepEP README: Buffer.set_num_sms(24))
ISCA_TOKENS = 32  # ISCA's decode example: tokens per device per step
ISCA_EXPERTS = 9  # 8 routed + 1 shared, each a copy over the network


def ep_comm_s(
    s: ServeSpec,
    tokens: float,
    ep: int,
    forwarded: bool,
    node_limit: int | None = 4,
    part: str | None = None,
    imbalance: float = 1.0,
) -> float:
    """Seconds of one MoE layer's dispatch + combine (or only `part` of them) of `tokens` per GPU
    (`workloads.servingops.serving_ep_ops`): the NIC and NVLink shares run at once, no faster than DeepEP's kernels
    move them where timed on the GPU (`ep_kernel_s`), each way paying the link's latency and the call's cost.
    The all-to-all ends when its busiest GPU has received its dispatch and sent its combine, `imbalance` x the
    mean GPU's copies (the training model's `expert_imbalance` likewise scales its links, not the call's cost).
    Zero where the experts sit on the attention TP group (`workloads.servingops.moe_in_tp_group`); an all-gather
    and a reduce-scatter where the engine exchanges attention DP's tokens so (`gathers_tokens`)."""
    if moe_in_tp_group(s.tp, ep):
        return 0.0  # the attention TP group holds every token: its all-reduce after the MoE is the layer's op
    if gathers_tokens(s, ep):
        gathered = gathered_ep_ops(s.model, tokens, ep, "decode", gathered_dtype(s))
        return sum(collective_op_s(s, op, ep) for op in gathered if part is None or op.kind == part)
    node = s.node
    ops = serving_ep_ops(s.model, tokens, ep, node.scaleup_domain_gpus, forwarded, "decode", node_limit)
    ops = [op for op in ops if part is None or op.kind == part]
    if not ops:
        return 0.0
    net = sum(op.ib_bytes for op in ops) / node.scaleout_achieved_bw_bytes_per_s_per_gpu
    nvl = sum(op.nvlink_bytes for op in ops) / node.scaleup_achieved_bw_bytes_per_s
    latency = node.nic.latency_s if ep > min(ep, node.scaleup_domain_gpus) else node.scaleup_latency_s
    work, call = ep_kernel_s(s, ops, tokens, forwarded, ep)
    return imbalance * max(net, nvl, work) + len(ops) * latency + call


def gathers_tokens(s: ServeSpec, ep: int) -> bool:
    """Whether the MoE of `s` over `ep` GPUs reaches its experts by an all-gather and a reduce-scatter (the
    engine's `moe_all_gather`, under attention DP) rather than an all-to-all: inside one NVLink domain, unless
    that domain spans nodes (a GB200 rack's trays) and the group is larger than the experts a token picks. An EP
    group across nodes runs an all-to-all (TensorRT-LLM's wide-EP MoE on DeepEP), priced as DeepEP's."""
    node = s.node
    if s.tp != 1 or not 1 < ep <= node.scaleup_domain_gpus or not load_engine(s.engine).moe_all_gather:
        return False
    multi_node_nvlink = 0 < node.tray_gpus < node.scaleup_domain_gpus
    return not (multi_node_nvlink and ep > s.model.num_experts_per_tok)


def gathered_dtype(s: ServeSpec) -> str:
    """The dtype of the hidden vectors the MoE all-gather moves: NVFP4's (FP4 weights and activations), per-tensor
    FP8's (quantized before the gather), else bf16 (block-scaled FP8 and weight-only experts quantize inside the
    MoE op)."""
    if s.weight_dtype == "fp4" and s.activation_dtype is None:
        return "fp4"
    if s.weight_dtype == "fp8" and s.fp8_recipe == "tensor" and s.activation_dtype is None:
        return "fp8"
    return "bf16"


def collective_op_s(s: ServeSpec, op: Op, ep: int | None = None) -> float:
    """Seconds of one layer's collective op on its NVLink, as timed on the node's GPU
    (`hwmodels.collectives.in_node_s`): TP's all-reduce (`workloads.servingops.tp_all_reduce_ops`) as TensorRT-LLM's
    all-reduce over the tp group, the scattered attention's latent all-gather (`latent_all_gather_ops`) as NCCL's
    over the tp group, expert TP's all-gather and reduce-scatter as NCCL's over the expert-TP group, attention DP's
    gathered MoE exchange (`gathered_ep_ops`) as NCCL's over the `ep` GPUs (the buffer each GPU ends with or
    starts from: its received bytes x n / (n - 1))."""
    if op.component == "tp" and op.name.startswith("all_reduce"):
        return in_node_s("custom_all_reduce", s.tp, all_reduce_message_bytes(op, s.tp), s.node)
    n = s.tp if op.component == "tp" else (ep or s.ep) if op.component == "ep_gather" else s.expert_tp
    kind = "all_gather" if op.name.startswith("all_gather") else "reduce_scatter"
    return in_node_s(kind, n, op.nvlink_bytes * n / (n - 1), s.node)


def ep_kernel_s(
    s: ServeSpec, ops: list[Op], tokens: float, forwarded: bool, ep: int | None = None
) -> tuple[float, float]:
    """(work, fixed) seconds of DeepEP's kernels for the dispatch / combine `ops` of `tokens` per GPU among `ep`
    (None: the deployment's)
    (hwmodels/data/kernels/deepep.toml; (0, 0) on a GPU without a table): prefill's normal kernels on
    PREFILL_COMM_SMS SMs over the NVLink copies, decode's low-latency kernels over one copy per routed expert,
    local ones included. ASSUMED for every serving framework's all-to-all: TensorRT-LLM's own (across a GB200
    rack's NVLink) and vLLM's have no such table, and v3sim's serving model runs DeepEP's. An EP group across
    nodes pays the low-latency kernels as timed across as many nodes (`hwmodels.kernels.deepep_low_latency`)."""
    gpu = s.node.gpu
    if forwarded:
        kernels = deepep_kernels(gpu)
        if kernels is None:
            return 0.0, 0.0
        runs = [(kernels[op.kind].time_s(op.nvlink_bytes, tokens, PREFILL_COMM_SMS), kernels[op.kind].call_s)
                for op in ops]  # fmt: skip
    else:
        low_latency = deepep_low_latency(gpu, math.ceil((ep or s.ep) / s.node.scaleup_domain_gpus))
        if low_latency is None:
            return 0.0, 0.0
        copies = tokens * s.model.num_experts_per_tok
        runs = [(low_latency[op.kind].time_s(copies * activation_bytes_per_token(s.model, op.precision), tokens),
                 low_latency[op.kind].call_s) for op in ops]  # fmt: skip
    return sum(work for work, _ in runs), sum(call for _, call in runs)


def network_bound_tpot_s(
    layers: int, bytes_per_s: float, hidden: int, tokens: int = ISCA_TOKENS, experts: int = ISCA_EXPERTS
) -> float:
    """ISCA 2025's bound on time per output token from the network alone: per layer two all-to-alls (two
    micro-batches, computation assumed no longer than communication) of tokens x experts x hidden x (1 byte
    fp8 dispatch + 2 bytes bf16 combine) at `bytes_per_s`."""
    per_all_to_all_s = (1 + 2) * tokens * experts * hidden / bytes_per_s
    return layers * 2 * per_all_to_all_s


def kv_transfer(s: ServeSpec, input_tokens_per_s_per_gpu: float | None = None) -> dict[str, object]:
    """A request's KV moving from its prefill GPU to its decode GPU over RDMA: bytes, seconds (at the NIC's
    achieved rate, times the busiest switch link's factor when a topology is given) and, at the prefill
    pool's rate, the share of a prefill GPU's NIC it takes."""
    node = s.node
    size = held_tokens(s, prompt_tokens(s)) * kv_bytes_per_token(s)
    rate = node.scaleout_achieved_bw_bytes_per_s_per_gpu
    factor = 1.0
    if s.topology is not None:
        from simulator.analytic.fabric import pool_transfer_factor  # builds a fabric: only when one is asked for

        factor = pool_transfer_factor(s.topology, s.oversubscription, node, s.prefill_ep, s.ep)
    out: dict[str, object] = {
        "gb_per_request": size / 1e9,
        "s_per_request": size / rate * max(1.0, factor) + node.nic.latency_s,
        "topology": s.topology or "NIC rate",
        "switch_factor": factor,
    }
    if input_tokens_per_s_per_gpu is not None:
        per_token = size / prompt_tokens(s) * max(1.0, factor)
        out["prefill_nic_share"] = input_tokens_per_s_per_gpu * per_token / rate
    return out


def network_bound(s: ServeSpec) -> float | None:
    """ISCA's bound for this deployment: EP within the scale-up domain at its per-direction NVLink rate, else
    over the NIC at its line rate; every routed and shared expert a network copy. None for dense models."""
    spec, node = s.model, s.node
    if not spec.is_moe or s.ep == 1:
        return None
    inside = s.ep <= node.scaleup_domain_gpus
    bw = node.gpu.scaleup_bw_bytes_per_s if inside else node.nic.bw_bytes_per_s
    experts = spec.num_experts_per_tok + spec.n_shared_experts
    return network_bound_tpot_s(spec.num_hidden_layers, bw, spec.hidden_size, ISCA_TOKENS, experts)

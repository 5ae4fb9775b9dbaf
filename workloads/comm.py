"""Communication volumes in bytes: expert-parallel all-to-all, pipeline, data-parallel.

Expert parallelism (per token and MoE layer). A token goes to its
`num_experts_per_tok` experts, spread uniformly over the `ep` GPUs of its
group, which span `ep_nodes` nodes of `gpus_per_node`. With node-limited
routing (V3: at most M = 4 nodes) and DeepEP-style forwarding, a token
crosses InfiniBand once per distinct remote node, to the GPU with its own
in-node index, and is forwarded over NVLink from there (V3 report, section
3.2.2). Without a node limit, the expected number of distinct nodes among k
experts drawn without replacement from E experts on N nodes is
N * (1 - C(E - E/N, k) / C(E, k)); a limit M caps it. The token's own node is
one of those with probability 1/N, and needs no InfiniBand hop.
"""

from __future__ import annotations

from math import comb

from workloads.dtypes import dtype_bytes
from workloads.layout import ParallelLayout
from workloads.spec import ModelSpec

FP8_SCALE_GROUP = 128  # V3 dispatches fp8 with one fp32 scale per 128 activations (1x128 tiles)


def activation_bytes_per_token(spec: ModelSpec, dtype: str) -> float:
    """Bytes of one token's hidden vector in `dtype`; fp8 carries V3's 1x128 fp32 scales."""
    n = spec.hidden_size * dtype_bytes(dtype)
    if dtype == "fp8":
        n += 4 * -(-spec.hidden_size // FP8_SCALE_GROUP)
    return n


def dispatch_form(dispatcher: str, precision: str) -> tuple[str, bool]:
    """(forward dispatch dtype, direct?) of an all-to-all dispatcher (simulator.names.EP_DISPATCHERS): V3's DeepEP
    dispatches in the run's precision (fp8 under its FP8 recipe), Megatron's dispatchers in bf16; its alltoall
    (NCCL) sends one InfiniBand copy per remote expert rather than one per remote node."""
    return (precision if dispatcher == "deepep-fp8" else "bf16"), dispatcher == "alltoall"


def expected_nodes(experts: int, k: int, nodes: int, node_limit: int | None = None) -> float:
    """Expected distinct nodes (or GPUs), of `nodes` holding `experts` evenly, that k uniformly routed experts sit
    on (capped by `node_limit`)."""
    free = nodes * (1 - comb(experts - experts // nodes, k) / comb(experts, k)) if nodes > 1 else 1.0
    return min(free, node_limit) if node_limit else free


def expected_gpus(experts: int, k: int, gpus: int) -> float:
    """Expected distinct GPUs, of `gpus` holding `experts` evenly, that k uniformly routed experts sit on: k where
    no GPU holds two (as many GPUs as experts or more, redundant copies aside)."""
    return float(k) if gpus >= experts else expected_nodes(experts, k, gpus)


def expected_nodes_per_token(spec: ModelSpec, layout: ParallelLayout, node_limit: int | None = None) -> float:
    """Expected distinct nodes a token's routed experts sit on (uniform routing, capped by `node_limit`)."""
    return expected_nodes(spec.n_routed_experts, spec.num_experts_per_tok, layout.ep_nodes, node_limit)


def ep_bytes_per_token_per_layer(
    spec: ModelSpec,
    layout: ParallelLayout,
    node_limit: int | None = None,
    dispatch_dtype: str = "fp8",
    combine_dtype: str = "bf16",
    direct: bool = False,
) -> dict[str, float]:
    """Bytes one token sends in one MoE layer's dispatch and combine, by link kind.

    `dispatch` / `combine`: every copy to an expert on another GPU (what a plain
    all-to-all moves); `*_ib`: InfiniBand bytes with one copy per remote node
    (`direct`: one per remote expert, as NCCL's all-to-all sends them, no node limit);
    `*_nvlink`: copies delivered inside a node (forwarded or local-node experts), one per destination GPU
    (`direct`: one per expert).
    Combine sends the same copies back, in `combine_dtype`.
    """
    if not spec.is_moe:
        raise ValueError(f"{spec.name} is dense: it has no expert-parallel traffic")
    if node_limit is not None and node_limit <= 0:
        raise ValueError(f"node_limit={node_limit} must be a positive integer")
    k, nodes, g = spec.num_experts_per_tok, layout.ep_nodes, min(layout.ep, layout.gpus_per_node)
    off_gpu = k * (1 - 1 / layout.ep)  # copies bound for another GPU
    # direct: every copy bound for another node crosses on its own
    remote_nodes = (k if direct else expected_nodes_per_token(spec, layout, node_limit)) * (1 - 1 / nodes)
    # Every copy lands on the node's GPU with the sender's in-node index (over IB, or already there when local)
    # and needs an NVLink hop unless its expert is on that GPU: one copy per destination GPU, however many of the
    # token's experts it holds (DeepEP's layout; uniform routing, so node-limited routing, which crowds experts
    # onto fewer GPUs, sends a little less); `direct` sends one per expert.
    gpus = k if direct else expected_gpus(spec.n_routed_experts, k, layout.ep)
    nvlink_copies = gpus * (1 - 1 / g)
    out = {}
    for phase, dtype in (("dispatch", dispatch_dtype), ("combine", combine_dtype)):
        size = activation_bytes_per_token(spec, dtype)
        out[phase] = off_gpu * size
        out[f"{phase}_ib"] = remote_nodes * size
        out[f"{phase}_nvlink"] = nvlink_copies * size
    return out


def pp_bytes_per_token(spec: ModelSpec, dtype: str = "bf16") -> dict[str, float]:
    """Bytes per token crossing one pipeline-stage boundary: activations forward, gradients back."""
    size = activation_bytes_per_token(spec, dtype)
    return {"forward": size, "backward": size}


def dp_gradient_bytes_per_gpu(
    dense_params: float, expert_params: float, layout: ParallelLayout, grad_dtype: str = "fp32"
) -> dict[str, float]:
    """Gradient bytes one GPU reduces per step, and what it sends on the wire.

    `dense_params` / `expert_params` are the GPU's own (after TP / EP split).
    ZeRO 0 all-reduces (ring: 2(n-1)/n of the payload sent), ZeRO >= 1
    reduce-scatters ((n-1)/n) and all-gathers the updated bf16 weights after
    the step ((n-1)/n of the bf16 weights). Experts reduce over the
    expert-data-parallel group.
    """
    grad = dtype_bytes(grad_dtype)
    out = {"payload": grad * (dense_params + expert_params), "sent": 0.0}
    for params, n in ((dense_params, layout.replicas), (expert_params, layout.expert_dp)):
        if n == 1:
            continue
        ring = (n - 1) / n
        if layout.zero_stage == 0:
            out["sent"] += 2 * ring * grad * params
        else:
            out["sent"] += ring * (grad + dtype_bytes("bf16")) * params
    return out

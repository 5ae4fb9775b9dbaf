"""Traffic patterns on a fabric: the (source GPU, destination GPU, bytes) transfers of each collective.

Both network models read these: the flow model (`simulator.network`) runs them with max-min fair rates, the
fast model (`hwmodels.routing.link_loads`) takes their busiest link. With forwarding (DeepEP's
dispatch/combine, and the only way across planes of a multi-plane fat tree) a transfer to another node first
crosses the network to the GPU of the sender's in-node index on the destination node, then NVLink; the legs
of many transfers that share a hop are one transfer, as the kernels batch them.
"""

from __future__ import annotations

import numpy as np

from hwmodels.routing import Fabric


def merge(src: np.ndarray, dst: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the bytes of transfers with the same (src, dst)."""
    n = int(max(src.max(initial=0), dst.max(initial=0))) + 1
    key = src * n + dst
    if n * n <= max(1_000_000, 16 * len(key)):  # dense bincount beats sorting where the pairs are not sparse
        total = np.bincount(key, weights=size, minlength=n * n)
        used = np.flatnonzero(np.bincount(key, minlength=n * n))
        return used // n, used % n, total[used]
    keys, inverse = np.unique(key, return_inverse=True)
    return keys // n, keys % n, np.bincount(inverse, weights=size, minlength=len(keys))


def forward_legs(
    fabric: Fabric, src: np.ndarray, dst: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split transfers to other nodes into a network leg (to the sender's in-node index on the destination
    node) and an NVLink leg (from there to the destination); merge legs that share endpoints."""
    g = fabric.node.gpus_per_node
    relay = (dst // g) * g + src % g
    cross = src // g != dst // g
    leg_src = np.concatenate([src[cross], relay[cross], src[~cross]])
    leg_dst = np.concatenate([relay[cross], dst[cross], dst[~cross]])
    leg_size = np.concatenate([size[cross], size[cross], size[~cross]])
    keep = leg_src != leg_dst
    return merge(leg_src[keep], leg_dst[keep], leg_size[keep])


def ring_transfers(fabric: Fabric, gpus: int, bytes_per_step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of ring collectives over g channels (g = GPUs per node): channel c visits each node's GPUs
    from local index c around to c - 1 and crosses to the next node from there, over the NIC of that GPU
    and NVLink on arrival, so every NIC carries one channel (NCCL's rail-aligned rings)."""
    g = min(fabric.node.gpus_per_node, gpus)
    nodes = gpus // g
    srcs, dsts = [], []
    for c in range(g):
        order = (np.arange(nodes)[:, None] * g + (c + np.arange(g))[None, :] % g).ravel()
        srcs.append(order)
        dsts.append(np.roll(order, -1))
    src, dst = np.concatenate(srcs), np.concatenate(dsts)
    return forward_legs(fabric, src, dst, np.full(len(src), bytes_per_step / g))


def moe_transfers(
    fabric: Fabric,
    ep: int,
    tokens_per_gpu: float | np.ndarray,
    per_token: dict[str, float],
    phase: str = "dispatch",
    gpu_load: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, bytes) of the MoE dispatch (or combine: the same flows reversed) of every EP group of `ep`
    consecutive GPUs, with forwarding.

    `per_token` is `workloads.comm.ep_bytes_per_token_per_layer`. `tokens_per_gpu` is one number or one per
    GPU (0: the GPU takes no part). `gpu_load` is each GPU's routed tokens relative to its group's mean
    (default: all 1, uniform routing): a token's network bytes go to the other nodes of its group in
    proportion to their load (to the sender's in-node index there), its NVLink copies to the group's nodes in
    proportion to their load and, inside a node, from that GPU to the others in proportion to theirs. A group
    inside a node (`ep` dividing its GPUs) moves NVLink copies alone, to the group's other GPUs by their load.
    """
    g = fabric.node.gpus_per_node
    if (ep % g and g % ep) or fabric.gpus % ep:
        raise ValueError(f"ep={ep} must divide or be a multiple of {g} GPUs per node, and divide {fabric.gpus} GPUs")
    n_gpus, nodes = fabric.gpus, ep // g
    tokens = np.broadcast_to(np.asarray(tokens_per_gpu, float), (n_gpus,))
    load = np.ones(n_gpus) if gpu_load is None else np.asarray(gpu_load, float)
    if load.shape != (n_gpus,) or (load < 0).any():
        raise ValueError(f"gpu_load must be {n_gpus} non-negative numbers")
    if ep < g:
        src, dst, size = _in_node_moe(ep, tokens, per_token[f"{phase}_nvlink"], load)
        return (dst, src, size) if phase == "combine" else (src, dst, size)
    node_load = load.reshape(-1, g).sum(axis=1)
    group_load = node_load.reshape(-1, nodes).sum(axis=1)
    s = np.arange(n_gpus)
    ib_src = np.repeat(s, nodes)
    ib_node = np.repeat((s // ep) * nodes, nodes) + np.tile(np.arange(nodes), n_gpus)
    ib_dst = ib_node * g + ib_src % g
    remote = group_load[ib_src // ep] - node_load[ib_src // g]
    ib_share = np.divide(node_load[ib_node], remote, out=np.zeros(len(ib_src)), where=remote > 0)
    ib_size = np.where(ib_node == ib_src // g, 0.0, tokens[ib_src] * per_token[f"{phase}_ib"] * ib_share)
    node_share = np.divide(
        node_load[ib_node], group_load[ib_src // ep], out=np.zeros(len(ib_src)), where=group_load[ib_src // ep] > 0
    )
    nv_relay = np.repeat(ib_dst, g)
    nv_dst = np.repeat(ib_node, g) * g + np.tile(np.arange(g), len(ib_dst))
    others = node_load[nv_dst // g] - load[nv_relay]
    in_node = np.divide(load[nv_dst], others, out=np.zeros(len(nv_dst)), where=others > 0)
    nv_size = np.repeat(tokens[ib_src] * per_token[f"{phase}_nvlink"] * node_share, g) * in_node
    src = np.concatenate([ib_src, nv_relay])
    dst = np.concatenate([ib_dst, nv_dst])
    size = np.concatenate([ib_size, nv_size])
    keep = (src != dst) & (size > 0)
    src, dst, size = merge(src[keep], dst[keep], size[keep])
    return (dst, src, size) if phase == "combine" else (src, dst, size)


def _in_node_moe(
    ep: int, tokens: np.ndarray, nvlink_per_token: float, load: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, bytes) of the dispatch of EP groups of `ep` consecutive GPUs inside a node: each GPU's copies
    to the group's other GPUs in proportion to their load."""
    n_gpus = len(tokens)
    src = np.repeat(np.arange(n_gpus), ep)
    dst = (src // ep) * ep + np.tile(np.arange(ep), n_gpus)
    others = load.reshape(-1, ep).sum(axis=1)[src // ep] - load[src]
    share = np.divide(load[dst], others, out=np.zeros(len(src)), where=others > 0)
    size = np.where(dst == src, 0.0, tokens[src] * nvlink_per_token * share)
    keep = size > 0
    return merge(src[keep], dst[keep], size[keep])


def all_to_all_legs(
    gpus_per_node: int, gpus: int, bytes_per_gpu: float, sources: range | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forwarded legs of a uniform all-to-all of `gpus` GPUs (a multiple of whole nodes), each sending
    bytes_per_gpu / gpus to every GPU, in closed form: `forward_legs` of the gpus^2 transfers without building
    them. GPU s sends one network leg to each other node m (to m's GPU of s's in-node index), carrying what
    s sends to m's g GPUs; GPU r sends one NVLink leg to each other GPU d of its node, carrying r's own
    transfer to d and what r relays to d from the other nodes. Legs in (src, dst) order, as `merge` gives;
    `sources` (a range of GPUs) gives only theirs, the same legs in the same order, nodes + g - 2 per GPU."""
    g = gpus_per_node
    if gpus % g or gpus < 2:
        raise ValueError(f"gpus={gpus} must be whole nodes of {g} GPUs (at least 2 GPUs)")
    nodes, b = gpus // g, bytes_per_gpu / gpus
    sources = range(gpus) if sources is None else sources
    s = np.arange(sources.start, sources.stop, dtype=np.int64)
    node, local = np.divmod(s, g)
    remote = np.arange(nodes, dtype=np.int64)[None, :] * g + local[:, None]  # (gpus, nodes): s's relay on node m
    peers = node[:, None] * g + np.arange(g, dtype=np.int64)[None, :]  # (gpus, g): s's node
    dst = np.concatenate([remote, peers], axis=1)
    size = np.concatenate([np.full(remote.shape, g * b), np.full(peers.shape, nodes * b)], axis=1)
    keep = dst != s[:, None]  # the relay on s's own node is s; s's node holds s
    width = nodes + g - 2
    dst, size = dst[keep].reshape(len(s), width), size[keep].reshape(len(s), width)
    order = np.argsort(dst, axis=1, kind="stable")
    dst, size = np.take_along_axis(dst, order, axis=1), np.take_along_axis(size, order, axis=1)
    return np.repeat(s, width), dst.ravel(), size.ravel()


def stage_sends(gpus: int, stages: int) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of a pipeline's sends: GPU i of stage s (GPUs [s * gpus / stages, ...)) to GPU i of s + 1."""
    per_stage = gpus // stages
    src = np.arange(gpus - per_stage, dtype=np.int64)
    return src, src + per_stage

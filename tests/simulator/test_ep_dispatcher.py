"""`ep_dispatcher`: how the expert all-to-all moves tokens. V3's DeepEP sends one InfiniBand copy per remote node
in fp8 under the FP8 recipe; Megatron dispatches in bf16 (its DeepEP and HybridEP paths have no fp8 dispatch:
megatron/core/transformer/moe/fused_a2a.py), and its alltoall dispatcher (NCCL) one copy per remote expert."""

from __future__ import annotations

import pytest

from simulator.analytic.report import estimate
from simulator.cli import main
from simulator.events.simulate import simulate
from simulator.runspec import build_run
from workloads.comm import activation_bytes_per_token, ep_bytes_per_token_per_layer
from workloads.ops import ep_ops
from workloads.registry import load_model

QWEN3_235B_H100 = {
    "model": "qwen3-235b-a22b", "gpu": "h100", "gpus": 256, "tp": 2, "pp": 8, "ep": 32, "virtual_stages": 4,
    "schedule": "interleaved", "precision": "fp8", "seq_len": 4096, "micro_batch": 1,
    "global_batch_tokens": 1048576, "recompute": "none",
}  # fmt: skip


def test_direct_copies_cross_once_per_remote_expert():
    """Top-8 of 128 experts over 32 GPUs on 4 nodes: 8 x 3/4 = 6 copies leave the node one by one, where DeepEP
    sends one per distinct remote node (~2.7); NVLink carries the same in-node copies either way."""
    run = build_run(QWEN3_235B_H100)
    size = activation_bytes_per_token(run.model, "bf16")
    dedup = ep_bytes_per_token_per_layer(run.model, run.layout, None, "bf16", "bf16")
    direct = ep_bytes_per_token_per_layer(run.model, run.layout, None, "bf16", "bf16", direct=True)
    assert direct["dispatch_ib"] == pytest.approx(6 * size)
    assert 2 * size < dedup["dispatch_ib"] < 3 * size
    assert direct["dispatch"] == dedup["dispatch"]  # the same copies leave the GPU
    assert direct["dispatch_nvlink"] > dedup["dispatch_nvlink"]  # one per expert, not per destination GPU


def test_megatron_dispatches_in_bf16():
    spec, layout = load_model("deepseek-v3"), build_run({}).layout
    ops = {d: ep_ops(spec, layout, 4096, ("forward",), 4, "fp8", d) for d in ("deepep-fp8", "deepep", "alltoall")}
    first = {d: o[0] for d, o in ops.items()}  # the forward dispatch
    assert first["deepep-fp8"].precision == "fp8" and first["deepep"].precision == "bf16"
    assert first["deepep"].ib_bytes == pytest.approx(first["deepep-fp8"].ib_bytes * 14336 / 7392)  # bf16 / fp8+scales
    assert first["alltoall"].ib_bytes > first["deepep"].ib_bytes


def test_every_dispatcher_agrees_between_the_models_and_the_slower_ones_are_slower():
    steps = {}
    for dispatcher in ("deepep-fp8", "deepep", "alltoall"):
        run = build_run({**QWEN3_235B_H100, "ep_dispatcher": dispatcher})
        steps[dispatcher] = estimate(run).step_time_s
        assert simulate(run).step_time_s == pytest.approx(steps[dispatcher], rel=0.05), dispatcher
    assert steps["deepep-fp8"] < steps["deepep"] < steps["alltoall"]


def test_refusal_and_cli(capsys):
    with pytest.raises(ValueError, match="use one of deepep-fp8, deepep, hybridep, alltoall"):
        build_run({"ep_dispatcher": "nccl"})
    args = "train --json --model qwen3-235b-a22b --gpu h100 --gpus 256 --tp 2 --pp 8 --ep 32 --schedule 1f1b"
    args = [*args.split(), "--global-batch-tokens", "1048576", "--recompute", "none"]
    assert main([*args, "--ep-dispatcher", "alltoall"]) == 0
    assert '"ep_dispatcher": "alltoall"' in capsys.readouterr().out

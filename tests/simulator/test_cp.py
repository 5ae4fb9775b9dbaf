"""Context parallelism (issue 26): each sequence split over `cp` ranks, the K/V ring priced on the links beyond the
attention it hides under, activations split, weights replicated over dp x cp, in train, simulate, sweeps and
best-layout."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.analytic.epcomm import compute_sm_share
from simulator.analytic.memory import memory_per_gpu
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.analytic.training import block_ops, compute_s
from simulator.cli import main
from simulator.runspec import build_run
from workloads.layout import ParallelLayout
from workloads.ops import cp_ops
from workloads.registry import load_model

LONG = {"seq_len": 131072, "global_batch_tokens": 480 * 131072, "tokens": 1000 * 480 * 131072}


def _core(run, what: str) -> float:
    ops = [o for o in block_ops(run, True) if o.component == "attn_core" and o.phase == "forward"]
    if what == "flops":
        return sum(o.flops for o in ops)
    return compute_s(ops, rates_for(None, run.node.gpu), compute_sm_share(run))


def test_cp_splits_every_sequence_over_its_ranks():
    """At cp=2 a GPU runs half the tokens: every op's FLOPs halve, attention included (each query still sees its
    causal half of the whole sequence: the balanced split); dp halves, the weights' replicas do not change."""
    one, two = build_run({}), build_run({"cp": 2})
    assert two.dp == one.dp // 2 and two.layout.replicas == one.layout.replicas == 128
    for a, b in zip(block_ops(one, True), block_ops(two, True), strict=True):
        assert b.flops == pytest.approx(a.flops / 2, rel=1e-12), a.name
    m1, m2 = memory_per_gpu(one), memory_per_gpu(two)
    assert m2["activations"] == pytest.approx(m1["activations"] / 2, rel=1e-12)
    for state in ("weights", "gradients", "optimizer_states"):
        assert m2[state] == pytest.approx(m1[state], rel=1e-12)


def test_attention_at_four_times_the_sequence_costs_four_times_per_token():
    """Causal attention: FLOPs per token grow with the keys a query sees, (s + 1) / 2: 4x the sequence, 4x per
    token (to 1e-4); priced by the attention kernel class, within 10% of 4x (its rate moves with the shape)."""
    short = build_run({"seq_len": 32768, "cp": 8, "global_batch_tokens": 1920 * 32768})
    long = build_run({**LONG, "cp": 32})  # the same 4,096 tokens on each GPU
    assert _core(long, "flops") / _core(short, "flops") == pytest.approx((131072 + 1) / (32768 + 1), rel=1e-12)
    assert _core(long, "flops") / _core(short, "flops") == pytest.approx(4.0, rel=1e-4)
    assert _core(long, "s") / _core(short, "s") == pytest.approx(4.0, rel=0.10)


def test_the_ring_moves_the_kernels_k_and_v():
    """(cp - 1) / cp of the group's tokens x K and V per head (bf16, split by TP) forward, twice that backward
    (K/V again and their gradients); over NVLink inside a node, InfiniBand beyond."""
    v3, llama = load_model("deepseek-v3"), load_model("llama-3.1-8b")
    tokens = 131072
    (f, b) = cp_ops(v3, tokens, 4, 1, across_nodes=False)
    assert f.nvlink_bytes == pytest.approx(3 / 4 * tokens * 128 * (192 + 128) * 2) and f.ib_bytes == 0
    assert b.nvlink_bytes == 2 * f.nvlink_bytes
    (f, _) = cp_ops(llama, tokens, 16, 8, across_nodes=True)  # 8 K/V heads over tp 8: one each
    assert f.ib_bytes == pytest.approx(15 / 16 * tokens * 1 * (128 + 128) * 2) and f.nvlink_bytes == 0
    assert cp_ops(llama, tokens, 1, 1, across_nodes=True) == []


def test_cp_one_is_the_run_without_it():
    assert estimate(build_run({"cp": 1})).step_time_s == estimate(build_run({})).step_time_s


@pytest.mark.parametrize(
    "options",
    [
        {"cp": 2},
        {"cp": 8, "seq_len": 32768, "global_batch_tokens": 1920 * 32768},
        {"model": "llama-3.1-8b", "gpu": "h100", "gpus": 64, "tp": 2, "pp": 2, "cp": 4, "seq_len": 65536,
         "global_batch_tokens": 64 * 65536, "schedule": "1f1b", "precision": "bf16"},
    ],
)  # fmt: skip
def test_the_event_model_agrees_with_the_analytic_one_under_cp(capsys, options):
    from simulator.events.simulate import simulate

    run = build_run(options)
    sim = simulate(run, "published")
    assert sim.step_time_s == pytest.approx(estimate(run).step_time_s, rel=0.03)


def test_train_takes_cp(capsys):
    assert main(["train", "--json", "--goodput", "off", "--cp", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run"]["cp"] == 2 and out["run"]["dp"] == 64
    assert main(["train", "--cp", "2"]) == 0
    assert "ep64 cp2 dp64" in capsys.readouterr().out
    for argv, message in (
        (["--cp", "3"], "tp*cp*pp=48 must divide gpus=2048"),
        (["--cp", "2", "--seq-len", "4098", "--global-batch-tokens", str(4098 * 15360)], "2 x cp=4 equal chunks"),
        (["--cp", "0"], "cp=0 must be a positive integer"),
    ):
        assert main(["train", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ValueError, match="ep=64 must divide tp\\*cp\\*dp=32"):
        ParallelLayout(pp=1, dp=4, cp=8, ep=64)


def test_best_layout_finds_context_parallelism_for_long_sequences():
    """128K-token sequences on 2,048 H800: every layout without CP runs out of memory or loses; a CP layout is
    best. A 4K run searches CP 1 alone (no rank keeps a 4K piece at CP 2), so its search is what it was."""
    from simulator.explore.bestlayout import MIN_CP_CHUNK, best_layouts, candidates

    frame = best_layouts(LONG, processes=1)
    best = frame.iloc[0]
    assert best["valid"] and best["cp"] > 1
    no_cp = frame[frame["valid"] & (frame["cp"] == 1)]
    assert no_cp.empty or no_cp["step_time_s"].min() > best["step_time_s"]
    assert {c["cp"] for c in candidates({})} == {1}
    assert {c["cp"] for c in candidates({"seq_len": 32768})} == {1, 2, 4, 8} and MIN_CP_CHUNK == 4096


def test_a_sweep_takes_cp_as_an_axis(capsys):
    from simulator.explore.sweep import run_sweep
    from simulator.explore.sweepspec import sweep_from_dict

    frame = run_sweep(sweep_from_dict({"axes": {"cp": [1, 2, 3]}}), processes=1).set_index("cp")
    assert not frame.loc[3, "valid"] and "must divide gpus" in frame.loc[3, "reason"]
    for cp in (1, 2):
        assert frame.loc[cp, "step_time_s"] == estimate(build_run({"cp": cp})).step_time_s


@given(st.sampled_from([1, 2, 4, 8]), st.sampled_from([8192, 16384, 32768]))
@settings(max_examples=12, deadline=None)
def test_activations_fall_as_one_over_cp(cp, seq_len):
    base = {"model": "llama-3.1-8b", "gpu": "h100", "gpus": 64, "tp": 1, "pp": 1, "seq_len": seq_len,
            "global_batch_tokens": 64 * seq_len, "schedule": "1f1b", "precision": "bf16", "zero_stage": 3}  # fmt: skip
    one = memory_per_gpu(build_run(base))["activations"]
    split = memory_per_gpu(build_run({**base, "cp": cp}))["activations"]
    assert split == pytest.approx(one / cp, rel=1e-12)

"""Context parallelism's three exchanges (`--cp-comm`, issue 26): the ring of K/V chunks hidden under the
attention (TE's p2p, the default), K/V all-gathered before it and exposed (the Llama 3 paper, section 3.3.2:
"the all-gather communication latency is exposed in the critical path"), and the all-to-all that swaps a
sequence split for a head split (Ulysses)."""

from __future__ import annotations

import json

import pytest

from simulator.analytic.memory import memory_per_gpu
from simulator.analytic.report import estimate
from simulator.cli import main
from simulator.names import CP_COMM_MODES
from simulator.runspec import build_run
from workloads.ops import CP_COMM, cp_ops
from workloads.registry import load_model

LONG = {"seq_len": 131072, "global_batch_tokens": 480 * 131072, "tokens": 1000 * 480 * 131072}
LLAMA_LONG = {  # the Llama 3 paper's long-context layout (table 4)
    "model": "llama-3.1-405b", "gpu": "h100", "gpus": 16384, "tp": 8, "cp": 16, "pp": 16, "schedule": "interleaved",
    "precision": "bf16", "seq_len": 131072, "global_batch_tokens": 16777216, "zero_stage": 2,
}  # fmt: skip


def _bytes(op) -> float:
    return op.ib_bytes + op.nvlink_bytes


def test_the_all_gather_moves_the_rings_bytes_and_the_all_to_all_its_own_tokens():
    """All-gather: the ring's K/V bytes, forward and backward. All-to-all: (cp - 1) / cp of this rank's own
    tokens' Q, K, V and output, each way (computed here from the head dims): for MLA's 128 K/V heads, a
    fraction of the ring's bytes. The mode names are the command line's."""
    v3 = load_model("deepseek-v3")
    tokens, cp = 131072, 16
    ring, gather, a2a = (cp_ops(v3, tokens, cp, 1, True, c) for c in ("ring", "all-gather", "all-to-all"))
    assert [_bytes(o) for o in gather] == [_bytes(o) for o in ring]
    assert {o.kind for o in gather} == {"collective"} and {o.kind for o in ring} == {"send_recv"}
    kv = v3.num_key_value_heads * (v3.qk_head_dim + v3.v_dim) * 2
    q_and_out = v3.num_attention_heads * (v3.qk_head_dim + v3.v_dim) * 2
    assert _bytes(a2a[0]) == pytest.approx((cp - 1) / cp * tokens / cp * (kv + q_and_out))
    assert _bytes(a2a[1]) == pytest.approx(_bytes(a2a[0]))  # the gradients of the same tensors
    assert _bytes(a2a[0]) < _bytes(ring[0]) / 4  # MLA's K/V heads: the ring's exchange is the dearest
    with pytest.raises(ValueError, match="cp comm 'latent'"):
        cp_ops(v3, tokens, cp, 1, True, "latent")
    assert CP_COMM == CP_COMM_MODES


def test_an_exposed_all_gather_is_never_faster_than_the_ring():
    """The same bytes; the ring hides what its attention outlasts, the all-gather hides nothing."""
    for options in (LLAMA_LONG, {**LONG, "tp": 8, "cp": 4, "pp": 8, "ep": 16, "schedule": "1f1b"}):
        ring = estimate(build_run(options))
        gather = estimate(build_run({**options, "cp_comm": "all-gather"}))
        assert gather.step_time_s > ring.step_time_s


def test_the_choice_changes_nothing_without_cp():
    base = estimate(build_run({})).step_time_s
    for comm in ("all-gather", "all-to-all"):
        assert estimate(build_run({"cp_comm": comm})).step_time_s == base


def test_the_all_gather_holds_the_gathered_k_and_v():
    """One layer's K/V of the other ranks (and their gradients in the backward) on each GPU: 2 x the forward
    all-gather's bytes more activation memory than the ring; nothing else moves."""
    ring = build_run({**LONG, "tp": 8, "cp": 4, "pp": 8, "ep": 16, "schedule": "1f1b"})
    gather = ring.with_(cp_comm="all-gather")
    a, b = memory_per_gpu(ring), memory_per_gpu(gather)
    extra = 2 * _bytes(cp_ops(ring.model, ring.seq_len, 4, 8, False, "all-gather")[0])
    assert b["activations"] - a["activations"] == pytest.approx(extra)
    assert all(b[k] == a[k] for k in ("weights", "gradients", "optimizer_states"))


def test_without_tensor_parallelism_the_all_to_all_carries_mla_at_128k():
    """V3 at 128K without TP (the report: "we do not use costly tensor parallelism"): the ring moves every
    head's K and V of the whole sequence past each rank; swapping heads for sequence moves far less, and
    best-layout finds it."""
    from simulator.explore.bestlayout import best_layouts

    frame = best_layouts({**LONG, "tp": 1, "pp": 16, "ep": 16}, processes=1)
    best = frame.iloc[0]
    assert best["valid"] and best["cp"] > 1 and best["cp_comm"] == "all-to-all"
    ring = frame[frame["valid"] & (frame["cp_comm"] == "ring")]
    assert ring.empty or ring["step_time_s"].min() > 1.5 * best["step_time_s"]


def test_train_takes_cp_comm(capsys):
    argv = ["train", "--json", "--goodput", "off", "--cp", "2", "--cp-comm", "all-to-all"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["run"]["cp_comm"] == "all-to-all"
    for args, message in (
        (["--cp", "2", "--cp-comm", "latent"], "invalid choice: 'latent'"),
        (["--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "64", "--pp", "1", "--tp", "4", "--cp", "16",
          "--seq-len", "131072", "--cp-comm", "all-to-all"], "splits the 32 attention heads over tp x cp = 64"),
    ):  # fmt: skip
        assert main(["train", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err

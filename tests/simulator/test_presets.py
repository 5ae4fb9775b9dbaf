"""One home for defaults (simulator/presets.py): every command resolves a GPU to the same node, and the
training defaults fit the node instead of failing on it."""

from __future__ import annotations

import json

import pytest

from hwmodels.registry import catalog, load_gpu
from simulator.cli import main
from simulator.presets import V3_BATCH_SEQUENCES, deployment, node_for, training_batch_sequences, training_ep
from simulator.runspec import build_run, v3_pretraining
from workloads.registry import load_model


@pytest.mark.parametrize("gpu", catalog("gpus"))
def test_train_and_serve_resolve_a_gpu_to_the_same_node(gpu):
    node = node_for(gpu)
    assert node.gpu.name == load_gpu(gpu).name
    options = {"gpu": gpu, "model": "llama-3.1-8b", "gpus": node.gpus_per_node * 8, "pp": 2, "schedule": "1f1b"}
    run = build_run(options)
    assert run.node == node and run.precision == ("fp8" if node.gpu.peak_fp8_flop_per_s else "bf16")
    assert deployment("llama-3.1-8b", gpu).node == node


@pytest.mark.parametrize(
    ("gpu", "gpus", "node", "ep", "sequences"),
    [("gb200", 1152, "gb200-nvl72", 8, 15408), ("mi300x", 1024, "mi300x-roce", 64, 15360)],
)
def test_train_answers_on_other_nodes(capsys, gpu, gpus, node, ep, sequences):
    """Issue 19: `v3sim train --gpu gb200 --gpus 1152` failed (no gb200-ib node; EP64 does not divide dp 72)."""
    assert main(["train", "--gpu", gpu, "--gpus", str(gpus), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    run = out["run"]
    assert run["gpu"] == gpu and run["ep"] == ep and out["step_time_s"] > 0
    assert run["global_batch_tokens"] == sequences * 4096
    assert {"ep", "global_batch_tokens"} <= set(out["defaults"])
    assert build_run({"gpu": gpu, "gpus": gpus}).node.name == node


def test_v3s_published_defaults_are_unchanged():
    run = build_run({})
    assert run == v3_pretraining()
    assert (run.ep, run.global_batch_tokens, run.pp, run.gpus) == (64, 15360 * 4096, 16, 2048)


def test_default_ep_and_batch_fit_the_ranks():
    v3 = load_model("deepseek-v3")
    assert training_ep(v3, 128) == 64 and training_ep(v3, 72) == 8 and training_ep(v3, 96) == 32
    assert training_ep(load_model("llama-3.1-8b"), 128) == 1
    assert training_batch_sequences(128, 1, True) == V3_BATCH_SEQUENCES
    for dp in (72, 96, 100, 3):
        seqs = training_batch_sequences(dp, 2, True)
        assert seqs % (dp * 4) == 0 and abs(seqs - V3_BATCH_SEQUENCES) <= dp * 2
    # 8,192 GPUs at PP16 (dp 512): V3's batch would leave 30 micro-batches, DualPipe needs 32
    assert training_batch_sequences(512, 1, True, 16) == 512 * 32
    assert build_run({"gpus": 8192}).microbatches == 32


def test_an_empty_gpu_or_node_is_refused():
    for kwargs in ({"gpu": ""}, {"node": " "}):
        with pytest.raises(ValueError, match="is empty"):
            node_for(**kwargs)
    with pytest.raises(ValueError, match="no catalog node has a tpu GPU"):
        node_for("tpu")

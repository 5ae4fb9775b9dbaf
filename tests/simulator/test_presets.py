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


def test_a_gb200_job_takes_trays_of_racks_as_megatron_bridge_runs_do():
    """NVIDIA's DGX-GB200 runs take 8, 64 and 256 GPUs of NVL72 racks: the same number of 4-GPU trays from each
    of the fewest racks, each share one NVLink domain with its own NICs (hwmodels.specs.job_share)."""

    rack = node_for("gb200")
    run = build_run({"gpu": "gb200", "gpus": 256, "pp": 8, "ep": 32})
    node = run.node
    assert (node.gpus_per_node, node.scaleup_domain_gpus, node.nics_per_node) == (64, 64, 64)
    assert node.rack == rack and node.scaleout_bw_bytes_per_s_per_gpu == rack.scaleout_bw_bytes_per_s_per_gpu
    dense = {"gpu": "gb200", "model": "llama-3.1-8b", "pp": 1, "schedule": "1f1b"}
    assert build_run({**dense, "gpus": 8}).node.gpus_per_node == 8
    assert build_run({**dense, "gpus": 100}).node.gpus_per_node == 20  # 5 racks x 5 trays
    assert build_run({"gpu": "gb200", "gpus": 1152}).node == rack  # whole racks
    with pytest.raises(ValueError, match="gpus=250 is not a multiple of 72 GPUs per node, nor of its 4-GPU trays"):
        build_run({"gpu": "gb200", "gpus": 250})
    with pytest.raises(ValueError, match=r"gpus=12 is not a multiple of 8 GPUs per node$"):
        build_run({"gpu": "h100", "gpus": 12})  # an 8-GPU server is lent whole


def test_train_says_when_it_takes_part_of_each_rack(capsys):
    assert main(["train", "--gpu", "gb200", "--gpus", "256", "--pp", "8", "--ep", "32", "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert notes[0] == (
        "takes 64 of the 72 GPUs of each of 4 gb200-nvl72 nodes (4-GPU trays), each share one NVLink domain"
    )
    # eager V3 on Blackwell no longer waits for the host: DeepEP's kernels, priced at the rate their 20 SMs reach
    # (hwmodels/data/kernels/deepep.toml), outlast the host's launches
    assert len(notes) == 1
    assert main(["train", "--gpu", "gb200", "--gpus", "250"]) == 2
    assert capsys.readouterr().err.strip().endswith("nor of its 4-GPU trays")

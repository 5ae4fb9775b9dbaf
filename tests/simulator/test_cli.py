"""The `v3sim` command: JSON keys, human output, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from simulator.cli import main
from workloads.params import params_total
from workloads.registry import MODELS_DIR, load_model


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_model_json(capsys, v3):
    code, out, _ = run(capsys, "model", "deepseek-v3", "--json")
    data = json.loads(out)
    assert code == 0
    for key in ("params_total", "params_active", "train_flops_per_token", "kv_bytes_per_token", "breakdown"):
        assert key in data
    assert data["params_total"] == params_total(v3)
    assert data["kv_bytes_per_token"] == 70272
    b = data["breakdown"]
    assert sum(b["params_total"].values()) == data["params_total_with_mtp"]
    assert sum(b["train_flops_per_token"].values()) == pytest.approx(data["train_flops_per_token"])
    assert set(b["params_total"]) >= {
        "embedding",
        "attn_proj",
        "dense_ffn",
        "shared_experts",
        "routed_experts",
        "router",
        "output_head",
        "mtp",
    }
    assert "attn_core" in b["train_flops_per_token"]


def test_model_accepts_a_config_path_and_a_convention(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text((MODELS_DIR / "deepseek-v2.json").read_text())
    code, out, _ = run(capsys, "model", str(path), "--convention", "isca-2025", "--json")
    assert code == 0
    assert json.loads(out)["train_flops_per_token"] == pytest.approx(155e9, rel=0.01)


def test_kv_json_compares_models(capsys):
    code, out, _ = run(capsys, "kv", "deepseek-v3", "llama-3.1-405b", "--context", "1000", "--batch", "2", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["model"] for r in rows] == ["deepseek-v3", "llama-3.1-405b"]
    assert rows[1]["kv_bytes_per_token"] == 516096 and rows[1]["kv_bytes_total"] == 516096 * 2000
    code, out, _ = run(capsys, "kv", "deepseek-v3", "--dtype", "fp8", "--json")
    assert json.loads(out)[0]["kv_bytes_per_token"] == 35136


def test_memory_and_comm_json(capsys):
    code, out, _ = run(capsys, "memory", "deepseek-v3", "--pp", "16", "--dp", "128", "--ep", "64", "--json")
    data = json.loads(out)
    assert code == 0 and data["gpus"] == 2048 and len(data["stages"]) == 16
    assert data["training"]["total"] == max(s["total"] for s in data["stages"])
    code, out, _ = run(
        capsys, "comm", "deepseek-v3", "--pp", "16", "--dp", "128", "--ep", "64", "--node-limit", "4", "--json"
    )
    assert code == 0 and json.loads(out)["ep_nodes_per_token"] == 4


@pytest.mark.parametrize(
    "command",
    [
        "model deepseek-v3",
        "kv deepseek-v3 qwen2.5-72b",
        "memory llama-3.1-8b",
        "comm mixtral-8x7b --dp 8 --ep 8",
        "report",
    ],
)
def test_every_command_prints_text_and_json(capsys, command):
    code, text, _ = run(capsys, *command.split())
    assert code == 0 and text.strip()
    code, out, _ = run(capsys, *command.split(), "--json")
    assert code == 0 and json.loads(out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("model nope", "unknown model 'nope'"),
        ("memory deepseek-v3 --dp 48 --ep 48", "ep=48 does not divide 256 routed experts"),
        ("memory deepseek-v3 --zero 5", "zero_stage=5"),
        ("comm llama-3.1-8b --dp 8 --ep 8", "is dense; use ep=1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv.split())
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_config_missing_a_field_through_the_console_script(tmp_path):
    config = json.loads((MODELS_DIR / "llama-3.1-8b.json").read_text())
    del config["intermediate_size"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "model", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "missing 'intermediate_size'" in proc.stderr and "Traceback" not in proc.stderr
    negative = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "model", "deepseek-v3", "--seq-len", "-1"],
        capture_output=True,
        text=True,
    )
    assert negative.returncode == 2 and "not a positive integer" in negative.stderr
    assert len(negative.stderr.strip().splitlines()) == 1


def test_preset_loads_are_cached():
    assert load_model("deepseek-v3") is load_model("deepseek-v3")


def test_hardware_catalog_json(capsys):
    code, out, _ = run(capsys, "hardware", "gpus", "h800", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["name"] == "h800" and row["scaleup_bw_bytes_per_s"] == 200e9
    assert row["hbm_bytes"] == 81559 * 2**20 and row["hbm_datasheet_bytes"] == 80e9 and "DCGM" in row["hbm_source"]
    code, out, _ = run(capsys, "hardware", "gpus", "h800")
    assert code == 0 and "85.5 GB (datasheet 80 GB)" in out
    code, out, _ = run(capsys, "hardware", "nodes", "--json")
    assert code == 0 and {"h800-ib", "gb200-nvl72"} <= {r["name"] for r in json.loads(out)}
    code, _, err = run(capsys, "hardware", "gpus", "h900")
    assert code == 2 and "unknown GPU 'h900'" in err


TOPOLOGY_KEYS = {"endpoints", "switches", "links", "cost_usd", "cost_per_endpoint_usd", "bisection_bytes_per_s"}


def test_topology_json_defaults_to_the_largest_instance(capsys):
    code, out, _ = run(capsys, "topology", "multi-plane", "--json")
    data = json.loads(out)
    assert code == 0 and TOPOLOGY_KEYS | {"diameter_hops"} <= set(data)
    assert (data["endpoints"], data["switches"], data["links"], data["planes"]) == (16384, 768, 16384, 8)
    assert data["bisection_bytes_per_s"] == 8192 * 50e9


def test_topology_text(capsys):
    code, out, _ = run(capsys, "topology", "fat-tree-3", "--radix", "16", "--endpoints", "512")
    assert code == 0 and "endpoints     512" in out and "4 switch hops" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["topology", "fat-tree-2", "--radix", "63"], "radix=63 must be an even number"),
        (["topology", "fat-tree-2", "--endpoints", "4096"], "holds at most 2048 endpoints, not 4096"),
        (["topology", "dragonfly", "--switch", "nope"], "unknown switch 'nope'"),
        (["collective", "all-to-all", "--node", "b300"], "unknown node 'b300'"),
        (["collective", "all-to-all", "--gpus", "12"], "gpus=12 must be a multiple of 8"),
        (["collective", "all-to-all", "--bytes-per-gpu", "-1"], "must be positive"),
        (["collective", "all-to-all", "--gpus", "64", "--no-forwarding"], "no switch path"),
    ],
)
def test_network_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("collective", ["all-to-all", "all-reduce", "reduce-scatter", "all-gather", "send-recv"])
def test_collective_json(capsys, collective):
    code, out, _ = run(capsys, "collective", collective, "--gpus", "64", "--bytes-per-gpu", "1e8", "--json")
    data = json.loads(out)
    assert code == 0
    for key in ("time_s", "bus_bytes_per_s", "algo_bytes_per_s"):
        assert data[key] > 0 and data["alpha_beta"][key] > 0
    assert data["algo_bytes_per_s"] == pytest.approx(1e8 / data["time_s"])


def test_report_leads_with_the_training_estimate(capsys):
    code, out, _ = run(capsys, "report", "--json")
    training = json.loads(out)["training"]
    assert code == 0 and training["run"]["schedule"] == "dualpipe" and training["gpu_hours"] > 0
    code, sol, _ = run(capsys, "report", "--json", "--profile", "sol")
    assert json.loads(sol)["training"]["gpu_hours"] < training["gpu_hours"]

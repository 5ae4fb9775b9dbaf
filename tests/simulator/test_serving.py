"""Serving (`simulator.analytic.serving`, `v3sim serve`): the network bound, MLA vs GQA capacity, MTP, costs, errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.registry import load_node
from simulator.analytic.serving import ServeSpec, serve
from simulator.analytic.servingcomm import network_bound_tpot_s
from simulator.analytic.servingmemory import (
    HBM_RESERVE,
    kv_bytes_per_sequence_per_gpu,
    max_sequences_per_gpu,
    weight_bytes_per_gpu,
)
from simulator.cli import main
from simulator.presets import serving_layout
from workloads.registry import load_model, model_slugs

H800 = load_node("h800-ib")
REQUIRED = {
    "tpot_s",
    "output_tokens_per_s_per_gpu",
    "input_tokens_per_s_per_node",
    "output_tokens_per_s_per_node",
    "max_concurrent_sequences_per_gpu",
    "usd_per_million_output_tokens",
    "usd_per_million_input_tokens",
    "network_bound_tpot_s",
    "breakdown",
}


def spec_for(model: str, node=H800, **changes) -> ServeSpec:
    m = load_model(model)
    return ServeSpec(model=m, node=node, **{**serving_layout(m, node), **changes})


# --- "Insights into DeepSeek-V3" (ISCA 2025), the network-only bound on time per output token ------------------


def test_the_isca_network_bound_step_by_step():
    # ISCA 2025, inference speed: each device holds one expert and runs 32 tokens per step; a token goes to
    # 9 experts (8 routed + 1 shared); dispatch in fp8 (1 byte), combine in bf16 (2 bytes); hidden "7K" = 7,000.
    per_all_to_all_s = (1 + 2) * 32 * 9 * 7000 / 50e9  # 400 Gb/s CX7 = 50 GB/s
    assert per_all_to_all_s == pytest.approx(120.96e-6)
    per_layer_s = 2 * per_all_to_all_s  # two micro-batches, compute no longer than communication
    assert per_layer_s == pytest.approx(241.92e-6)
    assert 61 * per_layer_s == pytest.approx(14.76e-3, rel=1e-3)  # 61 layers: "14.76 ms TPOT", ~67 tokens/s
    assert network_bound_tpot_s(61, 50e9, 7000) == pytest.approx(61 * per_layer_s)
    assert 1 / network_bound_tpot_s(61, 50e9, 7000) == pytest.approx(67.8, abs=0.1)
    # GB200 NVL72, 900 GB/s one way: 6.72 us per all-to-all, "0.82 ms TPOT", about 1,200 tokens/s
    assert pytest.approx(6.72e-6) == (1 + 2) * 32 * 9 * 7000 / 900e9
    assert network_bound_tpot_s(61, 900e9, 7000) == pytest.approx(0.82e-3, rel=1e-2)
    assert 1 / network_bound_tpot_s(61, 900e9, 7000) == pytest.approx(1220, rel=1e-2)


def test_the_cli_applies_the_bound_to_the_deployment_with_v3s_real_hidden_size():
    h800 = serve(spec_for("deepseek-v3"), phase="decode")
    gb200 = serve(spec_for("deepseek-v3", load_node("gb200-nvl72")), phase="decode")
    assert h800["network_bound_tpot_s"] == pytest.approx(network_bound_tpot_s(61, 50e9, 7168))  # over the NIC
    assert gb200["network_bound_tpot_s"] == pytest.approx(network_bound_tpot_s(61, 900e9, 7168))  # NVLink 5
    assert serve(spec_for("qwen2.5-72b"), phase="decode")["network_bound_tpot_s"] is None  # dense: no EP


def test_the_modelled_decode_respects_the_network_bound_at_isca_s_32_tokens():
    # The model's own all-to-all (40 GB/s achieved, 7.8 off-node copies, 58 MoE layers) is of the bound's size.
    out = serve(spec_for("deepseek-v3", batch=32), phase="decode")
    assert out["tpot_s"] >= 0.9 * out["network_bound_tpot_s"]


# --- MLA vs GQA -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three():
    return {m: serve(spec_for(m), phase="decode") for m in ("deepseek-v3", "qwen2.5-72b", "llama-3.1-405b")}


def test_kv_per_sequence_is_the_published_kv_per_token(three):
    # ISCA's KV sizes per token (bf16): V3 70.272 KB, Qwen2.5-72B 327.68 KB, Llama-3.1-405B 516.096 KB. Under
    # TP8 a GQA GPU keeps 1/8 of the KV of 8x the sequences: per sequence it serves, the whole token's KV.
    for model, per_token in (("deepseek-v3", 70272), ("qwen2.5-72b", 327680), ("llama-3.1-405b", 516096)):
        assert three[model]["kv_gb_per_sequence"] * 1e9 == pytest.approx(4096 * per_token)


def test_mla_holds_more_sequences_and_decodes_faster_per_gpu(three):
    v3, qwen, llama = (three[m] for m in ("deepseek-v3", "qwen2.5-72b", "llama-3.1-405b"))
    seqs = [x["max_concurrent_sequences_per_gpu"] for x in (v3, qwen, llama)]
    assert seqs == sorted(seqs, reverse=True) and seqs[0] > 3 * seqs[1]
    speed = [x["output_tokens_per_s_per_gpu"] for x in (v3, qwen, llama)]
    assert speed == sorted(speed, reverse=True)


def test_capacity_is_what_the_hbm_holds_after_weights():
    s = spec_for("deepseek-v3")
    free = H800.gpu.hbm_bytes * (1 - HBM_RESERVE) - weight_bytes_per_gpu(s, s.ep, s.redundant)
    n = max_sequences_per_gpu(s)
    assert n * kv_bytes_per_sequence_per_gpu(s) <= free < (n + 1) * kv_bytes_per_sequence_per_gpu(s)


@settings(max_examples=20, deadline=None)
@given(st.integers(512, 65536), st.integers(512, 65536))
def test_longer_contexts_hold_fewer_sequences(a, b):
    short, long_ = sorted((a, b))
    assert max_sequences_per_gpu(spec_for("deepseek-v3", context=short)) >= max_sequences_per_gpu(
        spec_for("deepseek-v3", context=long_)
    )


# --- MTP, cost, breakdown ---------------------------------------------------------------------------------------


def test_mtp_emits_one_plus_acceptance_tokens_and_gains_most_when_memory_bound():
    small = [serve(spec_for("deepseek-v3", batch=16, mtp_acceptance=a), phase="decode") for a in (0.0, 0.5, 0.85)]
    assert [x["mtp_tokens_per_step"] for x in small] == [1.0, 1.5, 1.85]
    gains = [x["mtp_throughput_gain"] for x in small]
    assert gains == sorted(gains) and gains[0] < 1 < gains[2]
    large = serve(spec_for("deepseek-v3", batch=160, mtp_acceptance=0.85), phase="decode")
    assert large["mtp_throughput_gain"] < gains[2]  # a big batch is compute-bound: the draft costs more


def test_costs_follow_price_throughput_and_cache_hits():
    base = serve(spec_for("deepseek-v3"))
    per_s = base["usd_per_gpu_hour"] / 3600
    assert base["usd_per_million_output_tokens"] == pytest.approx(per_s / base["output_tokens_per_s_per_gpu"] * 1e6)
    assert base["usd_per_million_input_tokens"] == pytest.approx(per_s / base["input_tokens_per_s_per_gpu"] * 1e6)
    dearer = serve(spec_for("deepseek-v3", price_per_gpu_hour=4.0, cache_hit=0.5))
    assert dearer["usd_per_million_output_tokens"] == pytest.approx(2 * base["usd_per_million_output_tokens"])
    # cached prompt tokens are input tokens with a price of their own (loading their KV), not free
    per_s_dearer = 4.0 / 3600
    assert dearer["usd_per_million_input_tokens"] == pytest.approx(
        per_s_dearer / dearer["input_tokens_per_s_per_gpu"] * 1e6
    )
    assert dearer["usd_per_million_input_tokens"] < 2 * base["usd_per_million_input_tokens"]
    assert set(base) >= REQUIRED


def test_the_breakdown_adds_up_to_the_step():
    out = serve(spec_for("deepseek-v3", mtp_acceptance=0.8))
    assert sum(out["breakdown"]["decode"].values()) == pytest.approx(out["decode_step_s"])
    assert sum(out["breakdown"]["prefill"].values()) == pytest.approx(out["prefill_step_s"])
    assert out["tpot_s"] == pytest.approx(out["decode_step_s"] / 1.8)


# --- errors and the CLI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ep", "48", "--redundant", "64"], "pass --redundant 32 (the fewest that divide)"),
        (["--model", "llama-3.1-405b", "--weight-dtype", "bf16"], "does not fit"),
        (["--model", "qwen2.5-72b", "--mtp-acceptance", "0.8"], "no multi-token prediction module"),
        (["--batch", "100000"], "at most"),
        (["--mtp-acceptance", "1.5"], "must be between 0 and 1"),
        (["--gpu", "tpu"], "no catalog node has a tpu GPU"),
        (["--model", "qwen2.5-72b", "--tp", "3"], "tp=3 must divide"),
    ],
)
def test_bad_deployments_are_one_line_errors(capsys, argv, message):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_json_has_what_the_issue_asks(capsys):
    assert main(["serve", "--json", "--mtp-acceptance", "0.85", "--cache-hit", "0.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= REQUIRED and out["ep"] == 320 and out["prefill_ep"] == 32
    assert main(["serve", "--gpu", "gb200", "--phase", "decode"]) == 0
    assert "per node of 72" in capsys.readouterr().out


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(model_slugs()),
    st.sampled_from(["h800-ib", "h100-ib", "gb200-nvl72", "a100-ib"]),
    st.integers(128, 131072),
    st.one_of(st.none(), st.integers(1, 512)),
    st.one_of(st.none(), st.floats(0, 1)),
    st.sampled_from([None, 1, 2, 4, 8]),
)
def test_any_deployment_answers_or_says_what_to_change(model, node, context, batch, mtp, tp):
    m, n = load_model(model), load_node(node)
    try:
        given_ = {**serving_layout(m, n), **({"tp": tp} if tp else {})}
        s = ServeSpec(model=m, node=n, context=context, batch=batch, mtp_acceptance=mtp, **given_)
        out = serve(s)
    except ValueError as err:
        assert str(err) and "\n" not in str(err)
        return
    numbers = [out[k] for k in REQUIRED - {"breakdown", "network_bound_tpot_s"}]
    assert all(0 < x < float("inf") for x in numbers)
    assert out["batch_per_gpu"] <= out["max_concurrent_sequences_per_gpu"]
    assert out["output_tokens_per_s_per_gpu"] == pytest.approx(out["batch_per_gpu"] / out["tpot_s"])


def test_a_request_mix_sizes_the_disaggregated_pools():
    out = serve(spec_for("deepseek-v3", output_tokens=1024, cache_hit=0.5))
    prefill_gpu_s = 3072 / out["input_tokens_per_s_per_gpu"]  # hits count as input tokens
    decode_gpu_s = 1024 / out["output_tokens_per_s_per_gpu"]
    assert out["prefill_gpus_per_decode_gpu"] == pytest.approx(prefill_gpu_s / decode_gpu_s)
    assert out["usd_per_request"] == pytest.approx(2.0 / 3600 * (prefill_gpu_s + decode_gpu_s))
    cold = serve(spec_for("deepseek-v3", output_tokens=1024))
    assert cold["prefill_gpus_per_decode_gpu"] > out["prefill_gpus_per_decode_gpu"]
    with pytest.raises(ValueError, match="output_tokens=4096 must be between 1 and context-1"):
        spec_for("deepseek-v3", output_tokens=4096)

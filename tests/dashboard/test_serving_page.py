"""The serving page: renders, shows `v3sim serve`'s numbers exactly, reads its state from the URL, never crashes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from dashboard.fmt import duration
from simulator.cli import build_parser
from simulator.cli.serve import cmd_serve
from simulator.explore.servesearch import search
from tests.dashboard.apptest import open_view
from workloads.registry import model_slugs


def page(**query: object) -> AppTest:
    return open_view("serving.py", **query)


def cli(*options: str) -> dict:
    """What `v3sim serve <options>` computes."""
    return cmd_serve(build_parser().parse_args(["serve", *options]))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_renders_the_cli_defaults():
    at = page()
    assert not at.exception
    out = cli()
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    assert metric(at, "Output tokens/s per GPU") == f"{out['output_tokens_per_s_per_gpu']:,.0f}"
    assert metric(at, "Output tokens/s per node") == f"{out['output_tokens_per_s_per_node']:,.0f}"
    assert metric(at, "$ per M output tokens") == f"${out['usd_per_million_output_tokens']:.3f}"
    assert metric(at, "$ per M input tokens") == f"${out['usd_per_million_input_tokens']:.3f}"
    assert metric(at, "KV capacity (sequences per GPU)") == f"{out['max_concurrent_sequences_per_gpu']:,}"
    assert len(at.get("plotly_chart")) == 3  # breakdown, batch sweep, deployment search


def search_table(at: AppTest):
    return next(d.value for d in at.dataframe if "decode layout" in d.value.columns)


def test_deployment_search_shows_the_frontier_and_its_best_beats_the_published_one():
    at = page()
    assert not at.exception
    chart = at.get("plotly_chart")[2].proto.spec
    assert "Pareto frontier" in chart and "DeepSeek published (EP144+32)" in chart
    table = search_table(at)
    best, published = table.iloc[0], table[table["published"]].iloc[0]
    assert best["rank"] == 1 and len(table) <= 11
    assert best["output tokens/s per GPU"] >= published["output tokens/s per GPU"]
    assert best["$ per M output tokens"] <= published["$ per M output tokens"]
    assert published["decode layout"] == "EP144+32 / TP1 / MTP"


def test_the_tpot_target_reaches_the_search():
    at = page()
    at.number_input(key="search_tpot").set_value(30.0).run()
    assert not at.exception
    assert (search_table(at)["TPOT (ms)"] <= 30.0).all() and at.query_params["search_tpot"] == "30.0"


def test_the_step_options_reach_the_search_as_serve_search_takes_them():
    """The page's expert TP and overlap apply to every candidate of its search, as `v3sim serve-search
    --expert-tp 2 --overlap none` computes it (layouts expert TP cannot split are left out)."""
    at = page()
    at.number_input(key="expert_tp").set_value(2)
    at.selectbox(key="overlap").set_value("none").run()
    assert not at.exception
    found = search(tpot_ms=50, expert_tp=2, overlap="none")
    top = search_table(at).iloc[0]
    assert top["output tokens/s per GPU"] == pytest.approx(found.ranked[0]["output_tokens_per_s_per_gpu"], rel=1e-3)


def test_widgets_change_the_numbers_as_the_cli_computes_them():
    at = page()
    at.selectbox(key="model").set_value("qwen2.5-72b")
    at.selectbox(key="gpu").set_value("h200")
    at.number_input(key="context").set_value(8192)
    at.number_input(key="batch").set_value(16).run()
    assert not at.exception
    out = cli("--model", "qwen2.5-72b", "--gpu", "h200", "--context", "8192", "--batch", "16")
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    assert metric(at, "Sequences per GPU") == "16"
    assert at.number_input(key="mtp").disabled  # qwen has no multi-token prediction
    assert at.query_params["model"] == "qwen2.5-72b" and at.query_params["batch"] == "16"


def test_mtp_and_cache_hit_reach_the_model():
    at = page()
    at.number_input(key="mtp").set_value(0.85)
    at.number_input(key="cache_hit").set_value(0.5).run()
    out = cli("--mtp-acceptance", "0.85", "--cache-hit", "0.5")
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    assert metric(at, "$ per M input tokens") == f"${out['usd_per_million_input_tokens']:.3f}"


def test_slo_targets_set_the_operating_point_as_the_cli_does():
    at = page()
    at.number_input(key="tpot").set_value(30.0)
    at.number_input(key="ttft").set_value(1000.0).run()
    assert not at.exception
    out = cli("--tpot-ms", "30", "--ttft-ms", "1000")
    assert out["decode_limit"] == "tpot" and out["prefill_limit"] == "ttft"
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    assert metric(at, "Sequences per GPU") == f"{out['batch_per_gpu']:,}"
    assert metric(at, "TTFT") == f"{out['ttft_s'] * 1e3:,.0f} ms"
    assert any("the TPOT target binds" in c.value for c in at.caption)
    at.number_input(key="batch").set_value(8).run()  # a batch and a target: one says what to change
    assert not at.exception and "not both" in at.error[0].value


def test_overlap_mtp_depth_imbalance_and_expert_tp_reach_the_model():
    at = page()
    at.selectbox(key="overlap").set_value("single-batch")
    at.number_input(key="mtp").set_value(0.8)
    at.number_input(key="mtp_tokens").set_value(2)
    at.number_input(key="imbalance").set_value(1.2)
    at.number_input(key="expert_tp").set_value(2).run()
    assert not at.exception
    options = ["--overlap", "single-batch", "--mtp-acceptance", "0.8", "--mtp-tokens", "2"]
    out = cli(*options, "--expert-imbalance", "1.2", "--expert-tp", "2")
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    assert metric(at, "Input tokens/s per GPU") == f"{out['input_tokens_per_s_per_gpu']:,.0f}"
    assert at.query_params["overlap"] == "single-batch" and at.query_params["mtp_tokens"] == "2"


def test_the_offload_switch_reaches_the_model():
    at = page()
    at.checkbox(key="offload").check()
    at.number_input(key="context").set_value(65536).run()
    assert not at.exception and at.query_params["offload"] == "true"
    out = cli("--offload-weights", "--context", "65536")
    assert metric(at, "Input tokens/s per GPU") == f"{out['input_tokens_per_s_per_gpu']:,.0f}"


def test_batch_per_instance_reaches_the_model():
    at = page()
    at.number_input(key="batch_per_instance").set_value(640).run()
    assert not at.exception and at.query_params["batch_per_instance"] == "640"
    out = cli("--batch-per-instance", "640")
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    at.number_input(key="batch").set_value(4).run()  # two batches given: what to change
    assert not at.exception and "not both --batch and --batch-per-instance" in at.error[0].value


def test_fp8_prefill_attention_reaches_the_model():
    at = page()
    at.selectbox(key="attention_dtype").set_value("fp8").run()
    assert not at.exception and at.query_params["attention_dtype"] == "fp8"
    out = cli("--attention-dtype", "fp8")
    assert metric(at, "Input tokens/s per GPU") == f"{out['input_tokens_per_s_per_gpu']:,.0f}"
    at = page(gpu="a100")
    at.selectbox(key="attention_dtype").set_value("fp8").run()  # no fp8 tensor cores: what to change
    assert not at.exception and "--attention-dtype bf16" in at.error[0].value


def test_gemm_activations_reach_the_model():
    at = page(gpu="b200", weight_dtype="fp4")
    at.selectbox(key="activation_dtype").set_value("fp8").run()
    assert not at.exception and at.query_params["activation_dtype"] == "fp8"
    out = cli("--gpu", "b200", "--weight-dtype", "fp4", "--activation-dtype", "fp8")
    assert metric(at, "Input tokens/s per GPU") == f"{out['input_tokens_per_s_per_gpu']:,.0f}"
    at.selectbox(key="weight_dtype").set_value("bf16").run()  # bf16 weights take no activations: what to change
    assert not at.exception and "drop --activation-dtype" in at.error[0].value


def test_the_kv_pool_of_sliding_window_layers_reaches_the_model():
    at = page(model="gpt-oss-120b", gpu="h100", context="32768")
    assert not at.exception and not at.error and not at.selectbox(key="window_kv").disabled
    windowed = cli("--model", "gpt-oss-120b", "--gpu", "h100", "--context", "32768")
    assert metric(at, "KV capacity (sequences per GPU)") == f"{windowed['max_concurrent_sequences_per_gpu']:,}"
    at.selectbox(key="window_kv").set_value("full").run()
    assert not at.exception and at.query_params["window_kv"] == "full"
    full = cli("--model", "gpt-oss-120b", "--gpu", "h100", "--context", "32768", "--window-kv", "full")
    assert metric(at, "KV capacity (sequences per GPU)") == f"{full['max_concurrent_sequences_per_gpu']:,}"
    assert full["max_concurrent_sequences_per_gpu"] < windowed["max_concurrent_sequences_per_gpu"]
    assert page().selectbox(key="window_kv").disabled  # V3 has no windowed layers


def test_fp4_weights_reach_the_model():
    at = page(gpu="b200")
    at.selectbox(key="weight_dtype").set_value("fp4").run()
    assert not at.exception and not at.error and at.query_params["weight_dtype"] == "fp4"
    out = cli("--gpu", "b200", "--weight-dtype", "fp4")
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    assert metric(at, "Output tokens/s per GPU") == f"{out['output_tokens_per_s_per_gpu']:,.0f}"
    at = page(gpu="h800", weight_dtype="fp4")  # no fp4 tensor cores: which GPUs have them
    assert not at.exception and "GPUs with them: b200, gb200" in at.error[0].value


def test_a_batch_that_does_not_fit_is_an_error_not_a_traceback():
    at = page()
    at.number_input(key="batch").set_value(100000).run()
    assert not at.exception
    assert "do not fit" in at.error[0].value
    assert not at.metric


def test_state_is_read_from_the_url():
    at = page(model="qwen2.5-72b", phase="decode", context="2048", output="512")
    assert not at.exception
    assert at.selectbox(key="model").value == "qwen2.5-72b"
    assert at.selectbox(key="phase").value == "decode"
    out = cli("--model", "qwen2.5-72b", "--phase", "decode", "--context", "2048", "--output-tokens", "512")
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    assert not [m for m in at.metric if "input" in m.label]  # decode only


@settings(max_examples=10, deadline=None)
@given(
    model=st.sampled_from([*model_slugs(), "gpt-5"]),
    gpu=st.sampled_from(["h800", "h100", "a100", "gb200", "mi300x", "h20", "tpu"]),
    phase=st.sampled_from(["both", "decode", "prefill", "sideways"]),
    batch=st.integers(-1, 5000).map(str),
    context=st.one_of(st.integers(-1, 300_000).map(str), st.just("long")),
    output=st.integers(0, 300_000).map(str),
    mtp=st.floats(-0.5, 1.5).map(str),
    cache_hit=st.floats(0, 1).map(str),
)
def test_any_url_renders_numbers_or_an_error(model, gpu, phase, batch, context, output, mtp, cache_hit):
    at = page(
        model=model, gpu=gpu, phase=phase, batch=batch, context=context, output=output, mtp=mtp, cache_hit=cache_hit
    )
    assert not at.exception
    assert len(at.metric) >= 2 or len(at.error) == 1


def answer(at: AppTest) -> str:
    return at.markdown[0].value


def test_the_page_opens_with_tpot_and_throughput_beside_deepseeks_published_figures():
    at = page()
    out = cli()
    text = answer(at)
    node, user = out["output_tokens_per_s_per_node"], out["output_tokens_per_s_per_sequence"]
    assert f"decodes at a **{out['tpot_s'] * 1e3:.1f} ms** TPOT" in text
    assert f"{node:,.0f} per node (DeepSeek published 14.8K per H800 node: {node / 14.8e3 - 1:+.1%}" in text
    assert f"20-22 tokens/s per user: {user / 21 - 1:+.1%} from 21" in text
    prefill = out["input_tokens_per_s_per_node"]
    assert f"(published 73.7K with 56.3% cache hits: {prefill / 73.7e3 - 1:+.1%})" in text
    assert "dominated by MoE layers" in text
    at.number_input(key="batch").set_value(32).run()  # another operating point: another answer
    assert answer(at) != text and f"{cli('--batch', '32')['tpot_s'] * 1e3:.1f} ms" in answer(at)


def test_gb200_says_rack_not_node():
    at = page(gpu="gb200")
    assert not at.exception and not at.error
    out = cli("--gpu", "gb200")
    rack = "NVL72 rack (72 GPUs)"
    assert metric(at, f"Output tokens/s per {rack}") == f"{out['output_tokens_per_s_per_node']:,.0f}"
    assert not [m for m in at.metric if m.label.endswith("per node")]
    assert f"per {rack}" in answer(at) and "published figures for V3 on H800 only" in answer(at)
    assert f"output tokens/s per {rack}" in search_table(at).columns


def test_units_and_headers_are_for_people():
    at = page()
    text = " ".join(str(e.value) for kind in ("markdown", "caption") for e in getattr(at, kind))
    assert "GiB" not in text
    for frame in at.dataframe:
        assert not [h for h in frame.value.columns if "_" in h], list(frame.value.columns)
    numbers = at.dataframe[0].value
    assert not numbers["Quantity"].str.contains("_").any()
    tpot = numbers.loc[numbers["Quantity"] == "TPOT", "Value"].iloc[0]
    assert tpot == duration(cli()["tpot_s"]) and tpot.endswith(" ms")  # formatted, not raw seconds
    breakdown = at.get("plotly_chart")[0].proto.spec
    assert "phase=" not in breakdown and "moe_layers" not in breakdown


def test_colocated_serving_reaches_the_model():
    """The co-located switch is `serve --colocated`: its numbers, the step's parts, and what it needs said."""
    at = page(colocated="true")
    assert not at.exception and "--colocated needs --output-tokens" in at.error[0].value
    at = page(colocated="true", output=1024)
    assert not at.exception and not at.error
    out = cli("--colocated", "--output-tokens", "1024")
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms"
    assert metric(at, "Input tokens/s per GPU") == f"{out['input_tokens_per_s_per_gpu']:,.0f}"
    assert "co-located (decode and" in at.markdown[0].value
    assert any("prompt tokens ride a decode step on average" in c.value for c in at.caption)
    table = search_table(at)  # the search ranks co-located pools too (`serve-search --colocated`)
    assert table["prefill layout"].str.startswith("co-located, TTFT").all()
    assert any("co-located layouts tried" in c.value for c in at.caption)


def test_the_serving_engine_reaches_the_model():
    at = page(batch="8")
    before = metric(at, "TPOT")
    at.selectbox(key="engine").set_value("trtllm").run()
    assert not at.exception and at.query_params["engine"] == "trtllm"
    out = cli("--batch", "8", "--engine", "trtllm")
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms" != before  # one GEMM fewer, shared experts aside


def test_the_checkpoints_fp8_scaling_reaches_the_model():
    """Under TensorRT-LLM the FP8 scaling picks its Linear's kernel (per-tensor: cuBLAS's scaled GEMM; block: its
    own 1x128 kernel on Hopper), as `serve --fp8-recipe` does."""
    at = page(model="llama-3.1-70b", gpu="h200", engine="trtllm", batch="64")
    before = metric(at, "TPOT")
    at.selectbox(key="fp8_recipe").set_value("tensor").run()
    assert not at.exception and not at.error and at.query_params["fp8_recipe"] == "tensor"
    out = cli("--model", "llama-3.1-70b", "--gpu", "h200", "--engine", "trtllm", "--batch", "64", "--fp8-recipe",
              "tensor")  # fmt: skip
    assert metric(at, "TPOT") == f"{out['tpot_s'] * 1e3:.1f} ms" != before

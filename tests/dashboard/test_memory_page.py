"""The attention-memory page: renders, shows workloads.memory's numbers exactly, reads its state from the URL."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from hwmodels.registry import catalog, load_node
from tests.dashboard.apptest import open_view
from workloads.layout import ParallelLayout
from workloads.memory import kv_bytes_per_token, largest_batch_that_fits, longest_context_that_fits
from workloads.registry import load_model, model_slugs


def page(**query: object) -> AppTest:
    return open_view("memory.py", **query)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def row(at: AppTest, model: str) -> dict:
    frame = at.dataframe[0].value
    return frame[frame["model"] == model].iloc[0].to_dict()


def test_renders_the_defaults():
    at = page()
    assert not at.exception
    assert metric(at, "KV per token, deepseek-v3") == f"{kv_bytes_per_token(load_model('deepseek-v3')):,} B"
    assert metric(at, "MLA saving, deepseek-v3 vs qwen2.5-72b") == "4.7x less KV"  # 327,680 / 70,272 B
    assert list(at.dataframe[0].value["model"]) == ["deepseek-v3", "qwen2.5-72b", "llama-3.1-405b"]
    assert len(at.get("plotly_chart")) == 2


def test_widgets_change_the_numbers_as_workloads_computes_them():
    at = page()
    at.multiselect(key="models").set_value(["qwen2.5-72b", "deepseek-v3"])
    at.selectbox(key="node").set_value("h200-ib")
    at.selectbox(key="kvdtype").set_value("fp8")
    at.selectbox(key="wdtype").set_value("bf16")
    at.number_input(key="context").set_value(8192)
    at.number_input(key="batch").set_value(4).run()
    assert not at.exception
    qwen, hbm = load_model("qwen2.5-72b"), load_node("h200-ib").gpu.hbm_bytes
    assert metric(at, "KV per token, qwen2.5-72b") == f"{kv_bytes_per_token(qwen, 'fp8'):,} B"
    node = ParallelLayout(tp=8)  # 64 heads over the node's 8 GPUs
    dtypes = {"weight_dtype": "bf16", "kv_dtype": "fp8"}
    shown = row(at, "qwen2.5-72b")
    assert shown["largest batch, node"] == f"{largest_batch_that_fits(qwen, node, 8192, hbm, **dtypes):,}"
    assert shown["longest context, node"] == f"{longest_context_that_fits(qwen, node, 4, hbm, **dtypes):,}"
    assert shown["largest batch, one GPU"] == "does not fit"  # 145 GB of bf16 weights on a 141 GB GPU
    assert at.query_params["batch"] == "4" and at.query_params["models"] == "qwen2.5-72b,deepseek-v3"


def test_state_is_read_from_the_url():
    at = page(models="llama-3.1-8b,deepseek-v2-lite", node="a100-ib", context="1024", kvdtype="fp8")
    assert not at.exception
    assert at.multiselect(key="models").value == ["llama-3.1-8b", "deepseek-v2-lite"]
    assert at.selectbox(key="node").value == "a100-ib"
    assert at.number_input(key="context").value == 1024
    assert metric(at, "KV per token, llama-3.1-8b") == f"{kv_bytes_per_token(load_model('llama-3.1-8b'), 'fp8'):,} B"
    assert metric(at, "MLA saving, deepseek-v2-lite vs llama-3.1-8b")
    assert at.query_params["context"] == "1024"


@settings(max_examples=10, deadline=None)
@given(
    models=st.lists(st.sampled_from([*model_slugs(), "no-such-model"]), max_size=4, unique=True),
    node=st.sampled_from([*catalog("nodes"), "tpu"]),
    context=st.one_of(st.integers(-5, 10**7).map(str), st.just("lots")),
    batch=st.integers(-1, 10**5).map(str),
    kv=st.sampled_from(["bf16", "fp8", "int3"]),
)
def test_any_url_renders_numbers_or_an_error(models, node, context, batch, kv):
    at = page(models=",".join(models), node=node, context=context, batch=batch, kvdtype=kv)
    assert not at.exception
    assert len(at.metric) >= 2 or len(at.error) or len(at.info)

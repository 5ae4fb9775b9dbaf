"""The attention-memory page: answers at its defaults (V3 gets a capacity), shows workloads.memory's numbers
exactly, caps contexts at each model's maximum, says rack for an NVL72, one unit vocabulary (GB), and reads its
state from the URL."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from hwmodels.registry import catalog, load_gpu, load_node
from tests.dashboard.apptest import metrics, open_view
from workloads.layout import ParallelLayout
from workloads.memory import inference_memory_per_gpu, kv_bytes_per_token, serving_capacity
from workloads.registry import load_model, model_slugs

H800_HBM = load_gpu("h800").hbm_bytes  # 81,559 MiB: what the device reports
FP8 = {"weight_dtype": "fp8", "kv_dtype": "bf16"}  # the page's default dtypes


def page(**query: object) -> AppTest:
    return open_view("memory.py", **query)


def row(at: AppTest, model: str) -> dict:
    frame = at.dataframe[0].value
    return frame[frame["Model"] == model].iloc[0].to_dict()


def number(cell: str) -> float:
    """The leading number of a cell: "163,840 (capped at the model's maximum)" -> 163840."""
    return float(cell.split()[0].replace(",", ""))


def chart_points(at: AppTest, index: int) -> dict[str, list[float]]:
    """x values of each trace of a page's plotly chart, by trace name (plotly may ship them base64-packed)."""
    spec = json.loads(at.get("plotly_chart")[index].proto.spec)
    out = {}
    for trace in spec["data"]:
        x = trace["x"]
        if isinstance(x, dict):
            x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=np.dtype(x["dtype"]).newbyteorder("<")).tolist()
        out[trace["name"]] = x
    return out


def page_text(at: AppTest) -> str:
    """Everything the page writes: sentences, captions, notes, metrics, table, chart specs."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
    parts += [f"{m.label} {m.value} {m.help}" for m in at.metric]
    for frame in at.dataframe:
        parts += [*frame.value.columns, frame.value.to_string()]
    parts += [c.proto.spec for c in at.get("plotly_chart")]
    return "\n".join(parts)


def test_renders_the_defaults():
    at = page()
    assert not at.exception and not at.error
    shown = metrics(at)
    assert shown["KV per token, deepseek-v3"] == f"{kv_bytes_per_token(load_model('deepseek-v3')):,} B"
    assert shown["MLA saving, deepseek-v3 vs qwen2.5-72b"] == "4.7x less KV"  # 327,680 / 70,272 B
    assert list(at.dataframe[0].value["Model"]) == ["deepseek-v3", "qwen2.5-72b", "llama-3.1-405b"]
    assert len(at.get("plotly_chart")) == 2


def test_v3_gets_a_capacity_at_the_defaults():
    """Auto spreads V3 over the fewest GPUs that leave half an H800's HBM for KV: EP16 leaves too little,
    EP32 enough; so 19 sequences of 32K per GPU, 152 per node, never "does not fit"."""
    v3 = load_model("deepseek-v3")
    weights = {
        ep: inference_memory_per_gpu(v3, ParallelLayout(ep=ep, dp=ep), 1, 1, "fp8")["weights"] for ep in (16, 32)
    }
    assert weights[16] > H800_HBM / 2 >= weights[32]
    expected = serving_capacity(v3, ParallelLayout(ep=32, dp=32), 32768, 1, H800_HBM, **FP8)
    assert expected["sequences_per_gpu"] == 19
    at = page()
    shown = row(at, "deepseek-v3")
    assert shown["Sequences per GPU"] == "19" and metrics(at)["Sequences per GPU, deepseek-v3"] == "19"
    assert shown["Sequences per node (8 GPUs)"] == "152"
    assert shown["GPUs the weights span"] == "32" and "EP32" in shown["Deployment"]
    assert not any("fit" in str(v) for v in shown.values())
    assert "one H800 holds 19 sequences" in at.markdown[0].value  # the answer comes first


def test_verdict_columns_come_first():
    columns = list(page().dataframe[0].value.columns)
    assert columns[:4] == ["Model", "Sequences per GPU", "Sequences per node (8 GPUs)", "Longest context, batch 1"]


def test_explanation_names_the_weights_share():
    """Within one H800 node V3's fp8 weights need 118% of each GPU's HBM while Qwen2.5-72B's TP8 take 12%: the
    sentence says so, with the per-node counts, then shows the saving once V3's weights are spread."""
    v3, qwen = load_model("deepseek-v3"), load_model("qwen2.5-72b")
    v3_node = inference_memory_per_gpu(v3, ParallelLayout(ep=8, dp=8), 1, 1, "fp8")["weights"] / H800_HBM
    qwen_node = serving_capacity(qwen, ParallelLayout(tp=8), 32768, 1, H800_HBM, **FP8)
    why = next(m.value for m in page().markdown if m.value.startswith("Within one node"))
    assert f"({v3_node:.0%} of its HBM), leaving no room for KV" in why and v3_node > 1
    qwen_share = qwen_node["weights_bytes"] / H800_HBM
    assert f"take {qwen_node['weights_bytes'] / 1e9:.1f} GB per GPU ({qwen_share:.0%} of its HBM)" in why
    assert f"0 against {qwen_node['sequences_per_replica']} sequences per node" in why  # 52: one TP8 replica
    spread = inference_memory_per_gpu(v3, ParallelLayout(ep=32, dp=32), 1, 1, "fp8")["weights"] / H800_HBM
    assert "Over 32 GPUs" in why and f"({spread:.0%} of its HBM)" in why and spread < 0.5


@pytest.mark.parametrize("node", catalog("nodes"))
def test_every_catalog_node_renders_and_gives_v3_a_capacity(node):
    at = page(node=node)
    assert not at.exception and not at.error
    assert number(row(at, "deepseek-v3")["Sequences per GPU"]) > 0
    assert "GiB" not in page_text(at)


def test_an_nvl72_is_called_a_rack():
    at = page(node="gb200-nvl72")
    columns = list(at.dataframe[0].value.columns)
    assert "Sequences per NVL72 rack (72 GPUs)" in columns
    assert "per node" not in page_text(at).lower()
    assert "one NVL72 rack (72 GPUs)" in at.markdown[0].value


def test_contexts_never_exceed_a_model_maximum():
    at = page(models=",".join(model_slugs()), context=1_000_000)
    assert not at.exception and not at.error
    frame = at.dataframe[0].value
    assert len(frame) == len(model_slugs())
    curves = chart_points(at, 0)
    for _, shown in frame.iterrows():
        cap = load_model(shown["Model"]).max_position_embeddings
        assert number(shown["Context (tokens)"]) == cap and "capped at the model's maximum" in shown["Context (tokens)"]
        assert number(shown["Longest context, batch 1"]) <= cap
        assert max(curves[shown["Model"]]) == cap  # the KV curve stops at the model's maximum too
    assert "Context capped at the model's maximum" in " ".join(c.value for c in at.caption)


def test_widgets_change_the_numbers_as_workloads_computes_them():
    at = page()
    at.multiselect(key="models").set_value(["qwen2.5-72b", "deepseek-v3"])
    at.selectbox(key="node").set_value("h200-ib")
    at.selectbox(key="span").set_value("8")
    at.selectbox(key="kvdtype").set_value("fp8")
    at.selectbox(key="wdtype").set_value("bf16")
    at.number_input(key="context").set_value(8192)
    at.number_input(key="batch").set_value(4).run()
    assert not at.exception
    qwen, hbm = load_model("qwen2.5-72b"), load_node("h200-ib").gpu.hbm_bytes
    dtypes = {"weight_dtype": "bf16", "kv_dtype": "fp8"}
    assert metrics(at)["KV per token, qwen2.5-72b"] == f"{kv_bytes_per_token(qwen, 'fp8'):,} B"
    got = serving_capacity(qwen, ParallelLayout(tp=8), 8192, 4, hbm, **dtypes)  # 64 heads over 8 GPUs
    shown = row(at, "qwen2.5-72b")
    assert shown["Sequences per node (8 GPUs)"] == f"{got['sequences_per_replica']:,}"
    assert number(shown["Sequences per GPU"]) == pytest.approx(got["sequences_per_replica"] / 8, abs=0.05)
    assert number(shown["Longest context, batch 4"]) == min(got["longest_context"], 131072)
    assert shown["Deployment"] == "TP8"
    v3 = serving_capacity(load_model("deepseek-v3"), ParallelLayout(ep=8, dp=8), 8192, 4, hbm, **dtypes)
    assert v3["weights_bytes"] > hbm  # 1.3 TB of bf16 weights over 8 x 141 GB
    assert row(at, "deepseek-v3")["Sequences per GPU"] == "weights do not fit"
    assert at.query_params["batch"] == "4" and at.query_params["models"] == "qwen2.5-72b,deepseek-v3"
    assert at.query_params["span"] == "8"


def test_a_span_a_dense_model_cannot_reach_is_a_note_naming_the_fix():
    at = page(models="llama-3.1-8b,deepseek-v3", span="320")
    assert not at.exception
    assert any("choose fewer GPUs the weights span" in w.value for w in at.warning)
    assert list(at.dataframe[0].value["Model"]) == ["deepseek-v3"]
    assert "EP320: 1 of 256 experts per GPU, 64 redundant" in row(at, "deepseek-v3")["Deployment"]


def test_state_is_read_from_the_url():
    at = page(models="llama-3.1-8b,deepseek-v2-lite", node="a100-ib", context="1024", kvdtype="fp8", span="4")
    assert not at.exception
    assert at.multiselect(key="models").value == ["llama-3.1-8b", "deepseek-v2-lite"]
    assert at.selectbox(key="node").value == "a100-ib"
    assert at.selectbox(key="span").value == "4"
    assert at.number_input(key="context").value == 1024
    shown = metrics(at)
    assert shown["KV per token, llama-3.1-8b"] == f"{kv_bytes_per_token(load_model('llama-3.1-8b'), 'fp8'):,} B"
    assert shown["MLA saving, deepseek-v2-lite vs llama-3.1-8b"]
    assert at.query_params["context"] == "1024"


@settings(max_examples=10, deadline=None)
@given(
    models=st.lists(st.sampled_from([*model_slugs(), "no-such-model"]), max_size=4, unique=True),
    node=st.sampled_from([*catalog("nodes"), "tpu"]),
    span=st.sampled_from(["auto", "1", "72", "320", "7", "many"]),
    context=st.one_of(st.integers(-5, 10**7).map(str), st.just("lots")),
    batch=st.integers(-1, 10**5).map(str),
    kv=st.sampled_from(["bf16", "fp8", "int3"]),
)
def test_any_url_renders_numbers_or_an_error(models, node, span, context, batch, kv):
    at = page(models=",".join(models), node=node, span=span, context=context, batch=batch, kvdtype=kv)
    assert not at.exception
    assert len(at.metric) >= 2 or len(at.error) or len(at.info)

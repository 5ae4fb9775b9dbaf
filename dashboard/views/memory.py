"""Attention memory: MLA's compressed latent against GQA's keys and values, per token, per context, per node.

Every number comes from `workloads.memory` (KV bytes per token, weights and KV per GPU, what fits); this page
only chooses the two deployments it compares (one GPU; the weights split over one node) and formats them.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from hwmodels.registry import catalog, load_node
from hwmodels.units import GIB
from simulator import limits
from workloads.layout import ParallelLayout
from workloads.memory import (
    inference_memory_per_gpu,
    kv_bytes_per_token,
    largest_batch_that_fits,
    longest_context_that_fits,
)
from workloads.registry import load_model, model_slugs
from workloads.spec import ModelSpec

DEFAULT_MODELS = ("deepseek-v3", "qwen2.5-72b", "llama-3.1-405b")
DTYPES = ("bf16", "fp8")
CURVE_CONTEXTS = tuple(2**k for k in range(10, 18))  # 1K .. 128K tokens


def node_layout(spec: ModelSpec, gpus_per_node: int) -> ParallelLayout:
    """Weights split over (up to 8 of) a node's GPUs: tensor-parallel attention and dense layers over the
    largest tp in 8, 4, 2, 1 that divides the node and the heads; routed experts over as many GPUs, if they
    divide the expert count. One attention replica spans the tp GPUs, so its batch is the node's batch."""
    tp = next(t for t in (8, 4, 2, 1) if gpus_per_node % t == 0 and spec.num_attention_heads % t == 0)
    ep = tp if spec.is_moe and spec.n_routed_experts % tp == 0 else 1
    return ParallelLayout(tp=tp, ep=ep, gpus_per_node=gpus_per_node)


@st.cache_data(show_spinner=False)
def model_table(
    slugs: tuple[str, ...], node_name: str, context: int, batch: int, kv_dtype: str, weight_dtype: str
) -> pd.DataFrame:
    """One row per model: KV bytes per token, KV and weights per GPU, and what fits one GPU / one node."""
    node = load_node(node_name)
    hbm = node.gpu.hbm_bytes
    rows = []
    for slug in slugs:
        spec = load_model(slug)
        one, split = ParallelLayout(gpus_per_node=node.gpus_per_node), node_layout(spec, node.gpus_per_node)
        dtypes = {"weight_dtype": weight_dtype, "kv_dtype": kv_dtype}
        alone = inference_memory_per_gpu(spec, one, batch, context, **dtypes)
        spread = inference_memory_per_gpu(spec, split, batch, context, **dtypes)
        rows.append(
            {
                "model": slug,
                "attention": spec.attention.upper(),
                "kv_bytes_per_token": kv_bytes_per_token(spec, kv_dtype),
                "kv_gib": alone["kv_cache"] / GIB,
                "weights_gib_one_gpu": alone["weights"] / GIB,
                "node_gpus": split.tp,
                "weights_gib_per_gpu_node": spread["weights"] / GIB,
                "kv_gib_per_gpu_node": spread["kv_cache"] / GIB,
                "longest_context_one_gpu": longest_context_that_fits(spec, one, batch, hbm, **dtypes),
                "longest_context_node": longest_context_that_fits(spec, split, batch, hbm, **dtypes),
                "largest_batch_one_gpu": largest_batch_that_fits(spec, one, context, hbm, **dtypes),
                "largest_batch_node": largest_batch_that_fits(spec, split, context, hbm, **dtypes),
                "gpu_hbm_gib": hbm / GIB,
            }
        )
    return pd.DataFrame(rows)


@st.cache_data(show_spinner=False)
def kv_curve(slugs: tuple[str, ...], batch: int, kv_dtype: str) -> pd.DataFrame:
    """KV GiB on one GPU of `batch` sequences at each context of CURVE_CONTEXTS, per model."""
    rows = []
    for slug in slugs:
        spec = load_model(slug)
        for ctx in CURVE_CONTEXTS:
            kv = inference_memory_per_gpu(spec, ParallelLayout(), batch, ctx, kv_dtype=kv_dtype)["kv_cache"]
            rows.append({"model": slug, "context_tokens": ctx, "kv_gib": kv / GIB})
    return pd.DataFrame(rows)


def fits(count: int) -> str:
    """A fit count for display: 'does not fit' when the weights alone fill the memory."""
    return f"{count:,}" if count > 0 else "does not fit"


def shown_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as a reader sees it: rounded GiB, counts with separators, 0 as 'does not fit'."""
    out = pd.DataFrame({"model": frame["model"], "attention": frame["attention"]})
    out["KV bytes/token"] = frame["kv_bytes_per_token"].map("{:,}".format)
    out["KV GiB (context x batch)"] = frame["kv_gib"].round(2)
    out["weights GiB, one GPU"] = frame["weights_gib_one_gpu"].round(1)
    out["weights GiB/GPU, node"] = frame["weights_gib_per_gpu_node"].round(1)
    out["node GPUs"] = frame["node_gpus"]
    for col, title in (
        ("longest_context_one_gpu", "longest context, one GPU"),
        ("longest_context_node", "longest context, node"),
        ("largest_batch_one_gpu", "largest batch, one GPU"),
        ("largest_batch_node", "largest batch, node"),
    ):
        out[title] = frame[col].map(fits)
    return out


def node_bar(frame: pd.DataFrame, node_name: str) -> go.Figure:
    """Stacked weights and KV over the node's GPUs per model, with those GPUs' HBM as a line."""
    total = frame.assign(
        weights=frame["weights_gib_per_gpu_node"] * frame["node_gpus"],
        kv=frame["kv_gib_per_gpu_node"] * frame["node_gpus"],
        hbm=frame["gpu_hbm_gib"] * frame["node_gpus"],
    )
    fig = go.Figure()
    fig.add_bar(x=total["model"], y=total["weights"], name="weights")
    fig.add_bar(x=total["model"], y=total["kv"], name="KV cache")
    fig.add_scatter(x=total["model"], y=total["hbm"], name="node HBM", mode="lines+markers", line={"dash": "dash"})
    fig.update_layout(barmode="stack", title=f"One {node_name} node: weights vs KV", yaxis_title="GiB")
    return fig


st.title("Attention memory: MLA vs GQA")
st.caption(
    "MLA caches one compressed latent per token and layer (kv_lora_rank + qk_rope_head_dim); GQA a key and a "
    "value per KV head. Fits: weights + KV within the GPU's HBM, nothing reserved for activations. The node "
    "splits weights tensor-parallel (and experts) over its GPUs; MLA's latent is then held whole on each GPU."
)
left, right = st.columns(2)
with left:
    slugs = state.multiselect("Models", model_slugs(), key="models", default=DEFAULT_MODELS)
    node_name = state.selectbox("GPU node", catalog("nodes"), key="node", default="h800-ib")
    weight_dtype = state.selectbox("Weight dtype", DTYPES, key="wdtype", default="fp8")
with right:
    context = state.number(
        "Context (tokens)", key="context", default=32768, min_value=1, max_value=limits.MAX_SEQ_TOKENS, step=1024
    )
    batch = state.number(
        "Batch (sequences)", key="batch", default=1, min_value=1, max_value=limits.MAX_SEQUENCES, step=1
    )
    kv_dtype = state.selectbox("KV dtype", DTYPES, key="kvdtype", default="bf16")
if not slugs:
    st.info("Choose at least one model.")
    st.stop()

try:
    table = model_table(tuple(slugs), node_name, int(context), int(batch), kv_dtype, weight_dtype)
    curve = kv_curve(tuple(slugs), int(batch), kv_dtype)
except ValueError as exc:
    state.fail(exc)

first = table.iloc[0]
mla = table[table["attention"] == "MLA"]
gqa = table[table["attention"] != "MLA"]
cols = st.columns(3)
cols[0].metric(f"KV per token, {first['model']}", f"{first['kv_bytes_per_token']:,} B")
cols[1].metric(f"KV GiB at context x batch, {first['model']}", f"{first['kv_gib']:.2f} GiB")
if len(mla) and len(gqa):
    a, b = mla.iloc[0], gqa.iloc[0]
    saving = b["kv_bytes_per_token"] / a["kv_bytes_per_token"]
    cols[2].metric(
        f"MLA saving, {a['model']} vs {b['model']}",
        f"{saving:.1f}x less KV",
        help=f"{b['kv_bytes_per_token']:,} B vs {a['kv_bytes_per_token']:,} B per token ({kv_dtype}, all layers)",
    )
else:
    cols[2].metric("MLA saving", "n/a", help="Choose one MLA and one GQA model to compare")

st.dataframe(shown_table(table), hide_index=True, width="stretch")
state.csv_download(table, "attention-memory")

fig = px.line(
    curve,
    x="context_tokens",
    y="kv_gib",
    color="model",
    markers=True,
    log_x=True,
    labels={"context_tokens": "context (tokens)", "kv_gib": f"KV GiB (batch {batch}, {kv_dtype})"},
    title="KV cache against context, one GPU",
)
st.plotly_chart(fig, width="stretch")
st.plotly_chart(node_bar(table, node_name), width="stretch")

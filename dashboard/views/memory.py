"""Attention memory: MLA's compressed latent against GQA's keys and values, per token, and what that buys in
sequences per GPU and per node once the weights have taken their share of the HBM.

Every number comes from `workloads.memory` (KV bytes per token, weights per GPU, `serving_capacity`); this page
only chooses the deployments it compares (the weights spread over a number of GPUs, and over one node or NVL72
rack) and formats them. Contexts are capped at each model's maximum (`max_context_tokens`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import fmt, state
from hwmodels.registry import catalog, load_node
from hwmodels.specs import NodeSpec
from simulator import limits
from workloads.layout import ParallelLayout
from workloads.memory import (
    inference_memory_per_gpu,
    kv_bytes_per_token,
    max_context_tokens,
    serving_capacity,
)
from workloads.registry import load_model, model_slugs
from workloads.spec import ModelSpec

DEFAULT_MODELS = ("deepseek-v3", "qwen2.5-72b", "llama-3.1-405b")
DTYPES = ("bf16", "fp8")
AUTO = "auto"
# GPUs the weights may span: powers of two, an NVL72 rack, and DeepSeek's published decode EPs (144 in
# production, open-infra-index day 6; 320 in the V3 report, section 3.4).
SPANS = (AUTO, "1", "2", "4", "8", "16", "32", "64", "72", "128", "144", "256", "320")
AUTO_SPANS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
KV_ROOM_SHARE = 0.5  # auto: the fewest GPUs whose weights leave at least this share of each GPU's HBM for KV
CURVE_CONTEXTS = tuple(2**k for k in range(10, 18))  # 1K .. 128K tokens, each model's up to its maximum


@dataclass(frozen=True, slots=True)
class Deployment:
    """A model's weights over `gpus` GPUs: its layout and the routed experts each GPU holds (0: dense)."""

    layout: ParallelLayout
    gpus: int
    experts_per_gpu: int

    def words(self, spec: ModelSpec) -> str:
        """The deployment as a reader says it: "DP attention, EP32: 8 of 256 experts per GPU"."""
        lay = self.layout
        attention = "DP attention" if lay.tp == 1 and spec.attention == "mla" else f"TP{lay.tp}"
        if lay.pp > 1:
            attention += f" x PP{lay.pp}"
        if not spec.is_moe:
            return attention
        if self.experts_per_gpu == spec.n_routed_experts:
            return f"{attention}, all {spec.n_routed_experts} experts on each GPU"
        slots = self.gpus * self.experts_per_gpu
        spare = f", {slots - spec.n_routed_experts} redundant" if slots > spec.n_routed_experts else ""
        return f"{attention}, EP{self.gpus}: {self.experts_per_gpu} of {spec.n_routed_experts} experts per GPU{spare}"


def domain(node: NodeSpec) -> str:
    """What the catalog calls one node, said plainly: an NVL72 rack is not an 8-GPU server."""
    g = node.gpus_per_node
    return f"NVL{g} rack ({g} GPUs)" if "nvl" in node.name.lower() else f"node ({g} GPUs)"


def spread(spec: ModelSpec, gpus: int, max_tp: int) -> Deployment:
    """`spec` with its weights over `gpus` GPUs. MLA attends data-parallel (TP would copy its latent, which no
    head owns, onto every rank: DeepSeek's way); GQA/MHA over the largest TP of 8, 4, 2, 1 that divides the GPUs,
    the heads and the node. A MoE model spreads its experts over all the GPUs (redundant copies fill the slots
    left over); a dense one pipelines the rest (PP = GPUs / TP)."""
    tp = 1
    if spec.attention != "mla":
        tp = next(t for t in (8, 4, 2, 1) if t <= max_tp and gpus % t == 0 and spec.num_attention_heads % t == 0)
    if not spec.is_moe:
        pp = gpus // tp
        if pp > spec.num_hidden_layers:
            raise ValueError(
                f"{spec.name} cannot spread over {gpus} GPUs: TP{tp} x PP{pp} needs {pp} pipeline stages and it "
                f"has {spec.num_hidden_layers} layers; choose fewer GPUs the weights span"
            )
        return Deployment(ParallelLayout(tp=tp, pp=pp, gpus_per_node=max_tp), gpus, 0)
    experts = spec.n_routed_experts
    per_gpu = next(s for s in range(-(-experts // gpus), experts + 1) if experts % s == 0)
    ep = experts // per_gpu  # the same weights per GPU as `per_gpu` experts on each of `gpus` GPUs
    layout = ParallelLayout(tp=tp, ep=ep, dp=ep // math.gcd(ep, tp), gpus_per_node=max_tp)
    return Deployment(layout, gpus, per_gpu)


def auto_gpus(spec: ModelSpec, node: NodeSpec, weight_dtype: str) -> int:
    """The fewest of AUTO_SPANS GPUs whose weights leave KV_ROOM_SHARE of each GPU's HBM free; else the most."""
    valid = []
    for gpus in AUTO_SPANS:
        try:
            d = spread(spec, gpus, node.gpus_per_node)
        except ValueError:
            continue
        weights = inference_memory_per_gpu(spec, d.layout, 1, 1, weight_dtype)["weights"]
        if weights <= KV_ROOM_SHARE * node.gpu.hbm_bytes:
            return gpus
        valid.append(gpus)
    return valid[-1]


def capacity_row(spec: ModelSpec, d: Deployment, node: NodeSpec, context: int, batch: int, **dtypes: str) -> dict:
    """One deployment's numbers from `serving_capacity` (its layout's gpus_per_node is the node's), with the
    context it used and the words for the deployment."""
    cap = max_context_tokens(spec)
    used = context if cap is None else min(context, cap)
    got = serving_capacity(spec, d.layout, used, batch, node.gpu.hbm_bytes, **dtypes)
    return {
        **got,
        "context": used,
        "context_was_capped": used < context,
        "max_context": cap,
        "gpus": d.gpus,
        "deployment": d.words(spec),
        "weights_share": got["weights_bytes"] / node.gpu.hbm_bytes,
    }


@st.cache_data(show_spinner=False)
def model_table(
    slugs: tuple[str, ...], node_name: str, span: str, context: int, batch: int, kv_dtype: str, weight_dtype: str
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """One row per model that the span can hold: its chosen deployment's numbers, and (prefix `node_`) those of
    its weights over one node; and a note for each model the span cannot hold."""
    node = load_node(node_name)
    dtypes = {"weight_dtype": weight_dtype, "kv_dtype": kv_dtype}
    rows, notes = [], []
    for slug in slugs:
        spec = load_model(slug)
        gpus = auto_gpus(spec, node, weight_dtype) if span == AUTO else int(span)
        try:
            chosen = spread(spec, gpus, node.gpus_per_node)
            whole_node = spread(spec, node.gpus_per_node, node.gpus_per_node)
        except ValueError as exc:
            notes.append(str(exc))
            continue
        row = {
            "model": slug,
            "attention": spec.attention.upper(),
            "model_kv_bytes_per_token": kv_bytes_per_token(spec, kv_dtype),
        }
        row.update(capacity_row(spec, chosen, node, context, batch, **dtypes))
        row.update({f"node_{k}": v for k, v in capacity_row(spec, whole_node, node, context, batch, **dtypes).items()})
        rows.append(row)
    return pd.DataFrame(rows), tuple(notes)


@st.cache_data(show_spinner=False)
def kv_curve(slugs: tuple[str, ...], batch: int, kv_dtype: str) -> pd.DataFrame:
    """KV bytes of `batch` sequences (all layers, all GPUs together) at each context up to the model's maximum."""
    rows = []
    for slug in slugs:
        spec = load_model(slug)
        cap = max_context_tokens(spec)
        contexts = [c for c in CURVE_CONTEXTS if cap is None or c <= cap]
        if cap is not None and cap not in contexts and cap <= 2 * CURVE_CONTEXTS[-1]:
            contexts.append(cap)
        for c in contexts:
            kv = inference_memory_per_gpu(spec, ParallelLayout(), batch, c, kv_dtype=kv_dtype)["kv_cache"]
            rows.append({"model": slug, "context": c, "kv_gb": kv / fmt.GB})
    return pd.DataFrame(rows)


def gpus_words(n: int) -> str:
    return "1 GPU" if n == 1 else f"{n:,} GPUs"


def count(value: float) -> str:
    """A sequence count for display: whole with separators, one decimal when a TP group shares it."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def verdict(value: float, weights_share: float) -> str:
    """A capacity as words: the count, or why there is none."""
    if value > 0:
        return count(value)
    return "weights do not fit" if weights_share >= 1 else "does not fit"


def context_words(tokens: int, capped: bool) -> str:
    return f"{tokens:,} (capped at the model's maximum)" if capped else f"{tokens:,}"


def shown_row(r: dict[str, Any], node: NodeSpec, batch: int) -> dict[str, str]:
    """One model as a reader sees it: the verdicts first, then the deployment that makes them, then the bytes."""
    share = r["weights_share"]
    longest = context_words(r["longest_context"], r["context_capped"]) if r["longest_context"] else verdict(0, share)
    return {
        "Model": r["model"],
        "Sequences per GPU": verdict(r["sequences_per_gpu"], share),
        f"Sequences per {domain(node)}": verdict(r["sequences_per_node"], share),
        f"Longest context, batch {batch:,}": longest,
        "GPUs the weights span": f"{r['gpus']:,}",
        "Deployment": r["deployment"],
        "Weights per GPU": fmt.gb(r["weights_bytes"]),
        "Weights' share of HBM": f"{share:.0%}",
        "KV room per GPU": fmt.gb(r["kv_room_bytes"]),
        "Attention": r["attention"],
        "KV per token (B)": f"{r['model_kv_bytes_per_token']:,}",
        "Context (tokens)": context_words(r["context"], r["context_was_capped"]),
    }


def shown_table(frame: pd.DataFrame, node: NodeSpec, batch: int) -> pd.DataFrame:
    return pd.DataFrame([shown_row(r, node, batch) for r in frame.to_dict("records")])


def pair(frame: pd.DataFrame) -> tuple[dict | None, dict | None]:
    """The first MLA model and the first other one, in the order chosen."""
    rows = frame.to_dict("records")
    mla = next((r for r in rows if r["attention"] == "MLA"), None)
    other = next((r for r in rows if r["attention"] != "MLA"), None)
    return mla, other


def holds_words(r: dict[str, Any], gpu: str, unit: str) -> str:
    """ "one H800 holds 17 sequences and one node (8 GPUs) 136", or why it holds none."""
    if r["weights_share"] >= 1:
        return f"its weights alone need {fmt.gb(r['weights_bytes'])} per GPU, more than one {gpu} has"
    return f"one {gpu} holds {count(r['sequences_per_gpu'])} sequences and one {unit} {count(r['sequences_per_node'])}"


def findings_text(frame: pd.DataFrame, node: NodeSpec, context: int) -> str:
    """The page's answer in one sentence, computed: KV per token, the saving, and what one GPU and node hold."""
    mla, other = pair(frame)
    first = mla or frame.iloc[0].to_dict()
    gpu, unit = node.gpu.name.upper(), domain(node)
    head = f"At {first['context']:,} tokens"
    if first["context_was_capped"]:
        head += f" ({context:,} asked, capped at the model's {first['max_context']:,})"
    head += f", {first['model']}"
    if mla is not None and other is not None:
        ratio = other["model_kv_bytes_per_token"] / mla["model_kv_bytes_per_token"]
        head += (
            f"'s MLA keeps {mla['model_kv_bytes_per_token']:,} B of KV per token, {ratio:.1f}x less than "
            f"{other['model']}'s {other['attention']} ({other['model_kv_bytes_per_token']:,} B)"
        )
    else:
        head += f" keeps {first['model_kv_bytes_per_token']:,} B of KV per token"
    text = f"{head}; with its weights over {gpus_words(first['gpus'])} ({first['deployment']}), "
    text += holds_words(first, gpu, unit)
    if mla is not None and other is not None:
        at = f" at {other['context']:,} tokens (its maximum)" if other["context"] != first["context"] else ""
        text += f"; {other['model']}{at} over {gpus_words(other['gpus'])} ({other['deployment']}): "
        text += holds_words(other, gpu, unit)
    if first["weights_share"] >= 1:
        text += "; choose more GPUs the weights span"
    return text + "."


def _weights(r: dict[str, Any], prefix: str) -> str:
    """ "take 9.4 GB per GPU (12% of its HBM), leaving 70.6 GB for KV"."""
    weights, share, room = r[f"{prefix}weights_bytes"], r[f"{prefix}weights_share"], r[f"{prefix}kv_room_bytes"]
    left = "no room for KV" if share >= 1 else f"{fmt.gb(room)} for KV"
    return f"take {fmt.gb(weights)} per GPU ({share:.0%} of its HBM), leaving {left}"


def why_text(frame: pd.DataFrame, node: NodeSpec) -> str:
    """Why the KV saving does or does not show per node: the weights' share of each GPU's HBM, computed."""
    mla, other = pair(frame)
    if mla is None or other is None:
        return ""
    gpu, unit = f"{node.gpu.name.upper()} ({fmt.gb(node.gpu.hbm_bytes)})", domain(node)
    ratio = other["model_kv_bytes_per_token"] / mla["model_kv_bytes_per_token"]
    a, b = mla["node_sequences_per_node"], other["node_sequences_per_node"]
    if a < b:
        so = f"so {other['model']} holds more per {unit} despite its {ratio:.1f}x larger KV per token"
    else:
        so = f"so {mla['model']}'s {ratio:.1f}x smaller KV per token shows"
    text = (
        f"Within one {unit} of {gpu}, {mla['model']}'s weights {_weights(mla, 'node_')}, and "
        f"{other['model']}'s {_weights(other, 'node_')}: {count(a)} against {count(b)} sequences per {unit}, {so}."
    )
    if mla["gpus"] != node.gpus_per_node:
        text += (
            f" Over {gpus_words(mla['gpus'])}, {mla['model']}'s weights {_weights(mla, '')}: "
            f"{count(mla['sequences_per_gpu'])} sequences per GPU against {count(other['sequences_per_gpu'])} for "
            f"{other['model']} over {gpus_words(other['gpus'])} ({other['weights_share']:.0%} of its HBM in weights)."
        )
    return text


def hbm_bar(frame: pd.DataFrame, node: NodeSpec) -> go.Figure:
    """One GPU's HBM per model at its chosen deployment: weights, then the room left for KV; the HBM as a line
    (weights past it do not fit)."""
    fig = go.Figure()
    labels = [f"{r['model']} ({gpus_words(r['gpus'])})" for r in frame.to_dict("records")]
    fig.add_bar(x=labels, y=frame["weights_bytes"] / fmt.GB, name="weights")
    fig.add_bar(x=labels, y=frame["kv_room_bytes"] / fmt.GB, name="room for KV")
    hbm = [node.gpu.hbm_bytes / fmt.GB] * len(labels)
    fig.add_scatter(x=labels, y=hbm, name="HBM", mode="lines+markers", line={"dash": "dash"})
    fig.update_layout(
        barmode="stack",
        title=f"One {node.gpu.name.upper()} ({fmt.gb(node.gpu.hbm_bytes)}): weights and the room left for KV",
        yaxis_title="GB",
    )
    return fig


st.title("Attention memory: MLA vs GQA")
answer = st.container()
left, right = st.columns(2)
with left:
    slugs = state.multiselect("Models", model_slugs(), key="models", default=DEFAULT_MODELS)
    node_name = state.selectbox("GPU node", catalog("nodes"), key="node", default="h800-ib")
    span = state.selectbox(
        "GPUs the weights span",
        SPANS,
        key="span",
        default=AUTO,
        format_func=lambda s: f"auto: fewest that leave {KV_ROOM_SHARE:.0%} of HBM for KV" if s == AUTO else s,
        help="MoE models spread their experts over these GPUs (DeepSeek serves V3 over EP144 or EP320); dense "
        "models use TP up to 8 and pipeline the rest",
    )
    weight_dtype = state.selectbox("Weight dtype", DTYPES, key="wdtype", default="fp8")
with right:
    context = state.number(
        "Context (tokens)", key="context", default=32768, min_value=1, max_value=limits.MAX_SEQ_TOKENS, step=1024
    )
    batch = state.number(
        "Batch (sequences per attention replica)",
        key="batch",
        default=1,
        min_value=1,
        max_value=limits.MAX_SEQUENCES,
        step=1,
        help="A replica is one GPU with data-parallel attention (MLA), its TP x PP group otherwise",
    )
    kv_dtype = state.selectbox("KV dtype", DTYPES, key="kvdtype", default="bf16")
if not slugs:
    st.info("Choose at least one model.")
    st.stop()

node = load_node(node_name)
try:
    table, notes = model_table(tuple(slugs), node_name, span, int(context), int(batch), kv_dtype, weight_dtype)
    curve = kv_curve(tuple(slugs), int(batch), kv_dtype)
except ValueError as exc:
    state.fail(exc)
for note in notes:
    st.warning(state.plain(note))
if table.empty:
    st.error("No chosen model can spread its weights over that many GPUs; choose fewer GPUs the weights span.")
    st.stop()

answer.markdown(state.plain(findings_text(table, node, int(context)), 1500))
mla_row, other_row = pair(table)
first = table.iloc[0]
cols = st.columns(4)
cols[0].metric(f"KV per token, {first['model']}", f"{first['model_kv_bytes_per_token']:,} B")
if mla_row is not None and other_row is not None:
    saving = other_row["model_kv_bytes_per_token"] / mla_row["model_kv_bytes_per_token"]
    cols[1].metric(
        f"MLA saving, {mla_row['model']} vs {other_row['model']}",
        f"{saving:.1f}x less KV",
        help=f"{other_row['model_kv_bytes_per_token']:,} B vs {mla_row['model_kv_bytes_per_token']:,} B "
        f"per token ({kv_dtype}, all layers)",
    )
else:
    cols[1].metric("MLA saving", "n/a", help="Choose one MLA and one GQA model to compare")
compared = [r for r in (mla_row, other_row) if r is not None] or [first.to_dict()]
for col, r in zip(cols[2 : 2 + len(compared)], compared, strict=True):
    col.metric(
        f"Sequences per GPU, {r['model']}",
        verdict(r["sequences_per_gpu"], r["weights_share"]),
        help=f"Weights over {gpus_words(r['gpus'])}: {r['deployment']}; "
        f"{count(r['sequences_per_node'])} per {domain(node)}",
    )

st.dataframe(shown_table(table, node, int(batch)), hide_index=True, width="stretch")
why = why_text(table, node)
if why:
    st.markdown(state.plain(why, 1500))
capped = [f"{r['model']} ({r['max_context']:,})" for r in table.to_dict("records") if r["context_was_capped"]]
if capped:
    st.caption(state.plain(f"Context capped at the model's maximum (max_position_embeddings): {', '.join(capped)}."))
st.caption(
    "MLA caches one compressed latent per token and layer (kv_lora_rank + qk_rope_head_dim); GQA a key and a "
    "value per KV head, split over TP up to the KV heads. Fits: weights + KV within the GPU's HBM, nothing "
    f"reserved for activations. Per {domain(node)}: its GPUs' sequences together; a TP group's sequences are "
    "shared by its GPUs, hence fractions per GPU. GB are decimal (1e9 bytes)."
)
state.csv_download(table, "attention-memory")

fig = px.line(
    curve,
    x="context",
    y="kv_gb",
    color="model",
    markers=True,
    log_x=True,
    labels={
        "context": "Context (tokens)",
        "kv_gb": f"KV cache (GB), {batch:,} sequences, {kv_dtype}",
        "model": "Model",
    },
    title="KV cache against context, up to each model's maximum",
)
st.plotly_chart(fig, width="stretch")
st.plotly_chart(hbm_bar(table, node), width="stretch")

"""Training cost: GPU-hours, dollars, days and MFU of a training run, where its step time goes, its memory per
GPU against the GPU's capacity, its expected run with failures, and that run's goodput from 1,024 to 131,072
GPUs (`dashboard/scale.py`). The defaults are DeepSeek-V3's published pre-training run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import plan, scale, state
from dashboard.files import MAX_UPLOAD_MB, model_from_upload, upload_name
from hwmodels.registry import catalog, load_node
from hwmodels.reliability import storage_catalog
from hwmodels.topology import KINDS
from hwmodels.units import SECONDS_PER_DAY
from simulator import limits
from simulator.analytic.goodput import CHECKPOINTING, RESTART_S, Reliability, gpu_hours_by_interval, run_goodput
from simulator.analytic.report import estimate
from simulator.analytic.spares import REPAIR_H
from simulator.analytic.training import BREAKDOWN_KEYS
from simulator.explore.uncertainty import uncertainty
from simulator.runspec import MAX_RUN_INTS, PRECISIONS, build_run
from simulator.schedules import SCHEDULES
from workloads.registry import load_model, model_slugs
from workloads.spec import ModelSpec

PUBLISHED_GPU_HOURS = 2_664_000  # V3 report, pre-training on H800 (figures.toml: h800_gpu_hours_pretraining)
PROFILES = ("published", "sol", "measured")
PARTS = {
    "compute": "compute",
    "exposed_ep_comm": "exposed EP all-to-all",
    "exposed_pp_comm": "exposed PP send/recv",
    "bubble": "pipeline bubble",
    "exposed_dp_comm": "DP collectives",
    "optimizer": "optimizer",
}
MEMORY = ("weights", "gradients", "optimizer_states", "activations")
MAX_OVERSUBSCRIPTION = 64.0  # down:up; past any built network (3:1 is a heavy taper)
MAX_PRICE = 10_000.0  # $ per GPU-hour: an input bound for the widget, not a price
STORAGES = tuple(storage_catalog())


@st.cache_data(max_entries=16, show_spinner=False)
def uploaded_model(data: bytes, filename: str) -> ModelSpec:
    """The model of an uploaded config.json, parsed in memory (cached on its bytes: a rerun costs nothing)."""
    return model_from_upload(data, filename)


@st.cache_data(max_entries=256, show_spinner=False)
def report(options: tuple[tuple[str, Any], ...], profile: str) -> dict[str, Any]:
    """The analytic model's report for a run given as plain options, the model a slug or a ModelSpec
    (cached: a rerun costs nothing)."""
    return estimate(build_run(dict(options)), profile).to_dict()


@st.cache_data(max_entries=64, show_spinner=False)
def band(options: tuple[tuple[str, Any], ...], profile: str) -> dict[str, Any]:
    """P10-P90 of the run from the kernel sources' spread (64 draws, the split held; cached)."""
    return uncertainty(build_run(dict(options)), profile)


def gpu_hours(value: float) -> str:
    return f"{value / 1e3:,.0f}K"


def usd(value: float) -> str:
    return f"${value / 1e6:,.2f}M"


st.title("Training cost")
st.caption(
    "The analytic model (`v3sim train`). The defaults are DeepSeek-V3's published pre-training: 2,048 H800, "
    "PP16 DualPipe, EP64, fp8, 14.8T tokens at $2 per GPU-hour (the V3 report: 2,664K GPU-hours)."
)

with st.sidebar:
    st.subheader("Run")
    upload = st.file_uploader(
        "Model config.json (Hugging Face)",
        type="json",
        key="upload",
        max_upload_size=MAX_UPLOAD_MB,
        help=f"Read in memory, never saved; at most {MAX_UPLOAD_MB} MiB (a config.json is a few KiB).",
    )
    model = state.selectbox("Model", model_slugs(), key="model", default="deepseek-v3", disabled=upload is not None)
    if upload is not None:
        st.caption(f"Model: {state.plain(upload_name(upload.name))} (uploaded)")
    node = state.selectbox("Node (GPU)", catalog("nodes"), key="node", default="h800-ib")
    gpus = state.number("GPUs", key="gpus", default=2048, min_value=1, max_value=MAX_RUN_INTS["gpus"], step=8)
    topology = state.selectbox("Topology", KINDS, key="topology", default="multi-plane")
    oversubscription = state.number(
        "Oversubscription", key="over", default=1.0, min_value=1.0, max_value=MAX_OVERSUBSCRIPTION, step=0.5
    )

try:
    spec = uploaded_model(upload.getvalue(), upload.name) if upload is not None else load_model(model)
except ValueError as exc:
    state.fail(exc)

with st.sidebar:
    st.subheader("Parallel layout")
    tp = state.number("TP", key="tp", default=1, min_value=1, max_value=MAX_RUN_INTS["tp"])
    pp = state.number("PP", key="pp", default=16, min_value=1, max_value=MAX_RUN_INTS["pp"])
    ep = state.number("EP", key="ep", default=64 if spec.is_moe else 1, min_value=1, max_value=MAX_RUN_INTS["ep"])
    cp = state.number(
        "CP (context parallel)", key="cp", default=1, min_value=1, max_value=MAX_RUN_INTS["cp"],
        help="each sequence split over this many GPUs (README: Context parallelism)",
    )  # fmt: skip
    schedule = state.selectbox("Schedule", SCHEDULES, key="schedule", default="dualpipe")
    virtual = state.number(
        "Virtual stages (interleaved)", key="vs", default=2, min_value=1, max_value=MAX_RUN_INTS["virtual_stages"]
    )
    micro_batch = state.number(
        "Micro-batch (sequences)", key="mb", default=1, min_value=1, max_value=MAX_RUN_INTS["micro_batch"]
    )
    precision = state.selectbox("Precision", PRECISIONS, key="precision", default="fp8")
    st.subheader("Budget")
    tokens_t = state.number(
        "Tokens (trillions)",
        key="tokens",
        default=14.8,
        min_value=0.001,
        max_value=limits.MAX_TRAIN_TOKENS / 1e12,
        step=0.1,
    )
    price = state.number(
        "Price per GPU-hour ($, 0: catalog)", key="price", default=0.0, min_value=0.0, max_value=MAX_PRICE, step=0.1
    )
    profile = state.selectbox("Kernel profile", PROFILES, key="profile", default="published")
    st.subheader("Failures and checkpoints")
    failure_scale = state.number(
        "Failure rate (x Llama 3's)", key="failures", default=1.0, min_value=0.0, max_value=100.0, step=0.25,
        help="1: Llama 3's 419 interruptions in 54 days on 16,384 H100 (table 5); 0: nothing fails",
    )  # fmt: skip
    storage = state.selectbox("Checkpoint storage", STORAGES, key="storage", default="3fs")
    restart_s = state.number(
        "Restart (s, besides reading the checkpoint)", key="restart", default=RESTART_S, min_value=0.0,
        max_value=SECONDS_PER_DAY, step=30.0, help="150 s: FlashRecovery's restart of a 4,800-device job",
    )  # fmt: skip
    checkpointing = state.selectbox(
        "Checkpoints", CHECKPOINTING, key="checkpointing", default="sync",
        help="sync: training waits for the write; async: for a copy to host memory, the write goes on behind",
    )  # fmt: skip
    pooled = state.checkbox(
        "A dedicated pool with hot spares", key="pool", default=False,
        help="off: a healthy node is always at hand (the cluster's pool); on: the job's nodes and these spares, "
        "billed idle; a failed node is out for the repair time",
    )  # fmt: skip
    spare_nodes = repair_h = None
    if pooled:
        spare_nodes = state.number("Hot spare nodes", key="spares", default=2, min_value=0, max_value=4096, step=1)
        repair_h = state.number(
            "Repair (h)", key="repair", default=REPAIR_H, min_value=0.1, max_value=24.0 * 365, step=6.0,
            help="hours a failed node is out: ASSUMED 24 by default, no published figure found",
        )  # fmt: skip

options = {
    "model": spec if upload is not None else model,
    "node": node,
    "gpus": int(gpus),
    "topology": topology,
    "oversubscription": float(oversubscription),
    "tp": int(tp),
    "pp": int(pp),
    "ep": int(ep),
    "cp": int(cp),
    "schedule": schedule,
    "virtual_stages": int(virtual) if schedule == "interleaved" else 1,
    "micro_batch": int(micro_batch),
    "precision": precision,
    "tokens": float(tokens_t) * 1e12,
    **({"price_per_gpu_hour": float(price)} if price > 0 else {}),
}
try:
    r = report(tuple(sorted(options.items())), profile)
except ValueError as exc:
    state.fail(exc)

run = r["run"]
cols = st.columns(5)
cols[0].metric("GPU-hours", gpu_hours(r["gpu_hours"]))
cols[1].metric("Cost", usd(r["cost_usd"]), help=f"at ${run['usd_per_gpu_hour']:.2f} per GPU-hour")
cols[2].metric("Days", f"{r['days']:.1f}")
cols[3].metric("MFU (bf16 peak)", f"{r['mfu']['bf16']:.1%}")
cols[4].metric("Step time", f"{r['step_time_s']:.2f} s", help=f"{r['microbatches']} micro-batches per step")
spread = band(tuple(sorted(options.items())), profile)
st.caption(
    f"P10-P90 from the kernel sources' spread: {gpu_hours(spread['gpu_hours']['p10'])}-"
    f"{gpu_hours(spread['gpu_hours']['p90'])} GPU-hours, {spread['step_time_s']['p10']:.2f}-"
    f"{spread['step_time_s']['p90']:.2f} s per step ({spread['draws']} draws from "
    f"{' to '.join(spread['sources'])}: the published kernels to the rates DeepSeek's V3 trace ran them at; "
    "network rates held)."
)
if run["model"] == "deepseek-v3" and run["gpu"] == "h800":
    st.caption(
        f"Published for V3's run: {gpu_hours(PUBLISHED_GPU_HOURS)} GPU-hours; this model, out of sample (kernel-level "
        f"sources only, nothing fitted to it): {r['gpu_hours'] / PUBLISHED_GPU_HOURS - 1:+.1%} (docs/training.md: "
        "The V3 figure, honestly)."
    )

left, right = st.columns(2)
with left:
    st.subheader("Where the step time goes")
    parts = pd.DataFrame(
        {
            "part": [PARTS[k] for k in BREAKDOWN_KEYS],
            "seconds per step": [r["breakdown"][k] for k in BREAKDOWN_KEYS],
        }
    )
    parts["share"] = parts["seconds per step"] / r["step_time_s"]
    fig = go.Figure(
        [
            go.Bar(name=name, y=["step"], x=[seconds], orientation="h", hovertemplate="%{x:.3f} s")
            for name, seconds in zip(parts["part"], parts["seconds per step"], strict=True)
        ]
    )
    fig.update_layout(barmode="stack", height=260, xaxis_title="seconds per step", margin={"t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")
    st.dataframe(parts, hide_index=True, column_config={"share": st.column_config.NumberColumn(format="percent")})
    state.csv_download(parts, "step-breakdown")
with right:
    st.subheader("Memory per GPU")
    hbm_gb = load_node(node).gpu.hbm_bytes / 1e9
    mem = r["memory_per_gpu_bytes"]
    fig = go.Figure([go.Bar(name=k.replace("_", " "), x=["fullest GPU"], y=[mem[k] / 1e9]) for k in MEMORY])
    fig.add_hline(y=hbm_gb, line_dash="dash", annotation_text=f"{run['gpu']} HBM {hbm_gb:.0f} GB")
    fig.update_layout(barmode="stack", height=320, yaxis_title="GB", margin={"t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")
    st.metric("Memory per GPU", f"{mem['total'] / 1e9:.1f} GB of {hbm_gb:.0f} GB")

st.subheader("With failures, checkpoints and restarts")
reliability = Reliability(
    failure_scale=float(failure_scale), storage=storage, restart_s=float(restart_s), checkpointing=checkpointing,
    spare_nodes=None if spare_nodes is None else int(spare_nodes), repair_h=float(repair_h or REPAIR_H),
)  # fmt: skip
steady_s = r["days"] * SECONDS_PER_DAY
try:
    expected_run = run_goodput(build_run(dict(options)), steady_s, r["gpu_hours"], r["cost_usd"], reliability)
except ValueError as exc:
    state.fail(exc)
expected_cols = st.columns(4)
expected_cols[0].metric("Expected GPU-hours", gpu_hours(expected_run["expected_gpu_hours"]))
expected_cols[1].metric("Expected cost", usd(expected_run["expected_cost_usd"]))
expected_cols[2].metric("Expected days", f"{expected_run['expected_days']:.1f}")
expected_cols[3].metric("Goodput", f"{expected_run['goodput']:.1%}")
mtbf = expected_run["mtbf_hours"]
written = (
    f"takes {expected_run['checkpoint_s']:.1f} s to write"
    if checkpointing == "sync"
    else f"pauses training {expected_run['checkpoint_s']:.2f} s (a copy to host memory) and is written in "
    f"{expected_run['checkpoint_write_s']:.1f} s behind"
)
pool = expected_run["spares"]
st.caption(
    f"{expected_run['expected_failures']:.0f} failures expected"
    + (f" (one every {mtbf:.1f} h on {run['gpus']:,} GPUs)" if mtbf is not None else "")
    + f"; a {expected_run['checkpoint_bytes'] / 1e12:.1f} TB checkpoint {written}, every "
    f"{expected_run['checkpoint_interval_min']:.0f} min (the optimum); a restart {expected_run['restart_s']:.0f} s."
    + (
        f" {pool['nodes']} hot spare nodes ({gpu_hours(pool['idle_gpu_hours'])} idle GPU-hours, counted): a node "
        f"failure finds none free {pool['shortfall_probability']:.1%} of the time and the job waits "
        f"{expected_run['breakdown_hours']['waiting_for_nodes']:,.1f} h in all; {pool['spares_for_99pct']} spares "
        "make that 1%."
        if pool
        else ""
    )
    + " Daly's closed form (`v3sim train`; README: Goodput)."
)
if mtbf is not None:
    best = expected_run["checkpoint_interval_min"] * 60
    intervals = np.geomspace(best / 20, min(best * 20, steady_s), 60)
    curve = gpu_hours_by_interval(expected_run, steady_s, r["gpu_hours"], intervals)
    fig = go.Figure(go.Scatter(x=intervals / 60, y=np.array(curve) / 1e3, mode="lines", name="expected"))
    fig.add_hline(y=r["gpu_hours"] / 1e3, line_dash="dot", annotation_text="steady state")
    fig.add_vline(x=best / 60, line_dash="dash", annotation_text="optimum")
    fig.update_layout(
        height=300, xaxis_type="log", xaxis_title="minutes between checkpoints", yaxis_title="K GPU-hours",
        margin={"t": 10, "b": 10},
    )  # fmt: skip
    st.plotly_chart(fig, width="stretch")

scale.show(options, profile, float(failure_scale), storage, float(restart_s))
plan.show(options, profile)

st.subheader("Inputs")
inputs = pd.DataFrame([{"input": k, "value": str(v)} for k, v in {**run, "stage_layers": r["stage_layers"]}.items()])
inputs = state.clean_frame(inputs)  # an uploaded model's name is a file's
st.dataframe(inputs, hide_index=True)
state.csv_download(inputs, "run-inputs")

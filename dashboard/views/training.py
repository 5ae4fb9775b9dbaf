"""Training cost: GPU-hours, dollars, days and MFU of a training run, where its step time goes, its memory per
GPU against the GPU's capacity, its expected run with failures, and that run's goodput from 1,024 to 131,072
GPUs (`dashboard/scale.py`). The defaults are DeepSeek-V3's published pre-training run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import findings, fmt, plan, scale, scenarios, state
from dashboard.files import MAX_UPLOAD_MB, model_from_upload, model_summary_frame, upload_name
from dashboard.profiles import profile_version
from hwmodels.registry import catalog, load_node
from hwmodels.reliability import storage_catalog
from hwmodels.topology import KINDS
from hwmodels.units import SECONDS_PER_DAY
from simulator import limits
from simulator.analytic.fitting import fitting_run
from simulator.analytic.goodput import CHECKPOINTING, RESTART_S, Reliability, gpu_hours_by_interval, run_goodput
from simulator.analytic.report import estimate
from simulator.analytic.spares import REPAIR_H
from simulator.analytic.training import BREAKDOWN_KEYS
from simulator.explore.uncertainty import uncertainty
from simulator.names import CP_COMM_MODES, CUDA_GRAPH_SCOPES, FP8_RECIPES
from simulator.presets import training_gpus
from simulator.runspec import MAX_RUN_INTS, PRECISIONS, build_run, share_note
from simulator.schedules import SCHEDULES
from workloads.activations import RECOMPUTE_MODES
from workloads.registry import load_model, model_slugs
from workloads.spec import ModelSpec

# The kernel choices: the GPU's published table, the speed of light, the latest measured profile, and the
# shipped profiles of a run's own kernels (h800-v3-cutlass: the FP8 GEMMs V3 ran; trace-deepseek-v3-train: the
# rates of V3's trace, in sample for V3).
PROFILES = ("published", "sol", "measured", "h800-v3-cutlass", "trace-deepseek-v3-train")
MEMORY = ("weights", "gradients", "optimizer_states", "activations")
MAX_OVERSUBSCRIPTION = 64.0  # down:up; past any built network (3:1 is a heavy taper)
MAX_PRICE = 10_000.0  # $ per GPU-hour: an input bound for the widget, not a price
STORAGES = tuple(storage_catalog())


AUTO = "auto"  # a layout widget left to the engine: its default, or the fitting choice (simulator.analytic.fitting)
# Widgets whose valid values depend on the model (or the node): dropped when it changes, so they start again
# at the new choice's defaults (EP 64 is V3's; a 70B dense model needs other memory settings).
MODEL_DEPENDENT = ("tp", "ep", "vs", "zero", "recompute", "seq", "batch")
NODE_DEPENDENT = ("gpus", "precision", "tp")


@st.cache_data(max_entries=16, show_spinner=False)
def uploaded_model(data: bytes, filename: str) -> ModelSpec:
    """The model of an uploaded config.json, parsed in memory (cached on its bytes: a rerun costs nothing)."""
    return model_from_upload(data, filename)


@st.cache_data(max_entries=256, show_spinner=False)
def priced(
    options: tuple[tuple[str, Any], ...], profile: str, version: str = ""
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(the analytic report, the options the engine settled on, a note on what it chose) for a run given as
    plain options (`version` keys the cache only: `profile_version`): what they leave out takes the engine's
    defaults, and where those do not fit the GPU, the fitting TP / ZeRO / recomputation with the fewest
    GPU-hours (cached: a rerun costs nothing)."""
    fitted = fitting_run(build_run(dict(options)), profile)
    settled = {**dict(options), **fitted.chosen}
    note = "; ".join(n for n in (fitted.note, share_note(fitted.run)) if n)
    return estimate(fitted.run, profile).to_dict(), settled, note


@st.cache_data(max_entries=64, show_spinner=False)
def band(options: tuple[tuple[str, Any], ...], profile: str, version: str = "") -> dict[str, Any]:
    """P10-P90 of the run from the kernel sources' spread (64 draws, the split held; cached)."""
    return uncertainty(build_run(dict(options)), profile)


def gpu_hours(value: float) -> str:
    return f"{value / 1e3:,.0f}K"


def usd(value: float) -> str:
    return f"${value / 1e6:,.2f}M"


def auto_or(value: Any) -> Any:
    """A widget's value for the engine: None where it is left to the engine."""
    return None if value == AUTO else value


st.title("Training cost")

with st.sidebar:
    st.subheader("Run")
    upload = st.file_uploader(
        "Model config.json (Hugging Face)",
        type="json",
        key="upload",
        max_upload_size=MAX_UPLOAD_MB,
        help=f"Read in memory, never saved; at most {MAX_UPLOAD_MB} MiB (a config.json is a few KiB). An upload "
        "is not carried in the page's link: share the run as a TOML file (Scenarios, below).",
    )
    if upload is None:
        model = state.selectbox("Model", model_slugs(), key="model", default="deepseek-v3")
    else:
        model = upload_name(upload.name)
        st.caption(
            f"Model: {state.plain(model)} (uploaded). The catalog returns when the file is removed. An upload is "
            "not in the page's link: to share the run, save it as TOML (Scenarios) naming the config.json's path."
        )
    state.forget_when_changed("model", model, MODEL_DEPENDENT)
    node = state.selectbox("Node (GPU)", catalog("nodes"), key="node", default="h800-ib")
    state.forget_when_changed("node", node, NODE_DEPENDENT)
    node_spec = load_node(node)

try:
    spec = uploaded_model(upload.getvalue(), upload.name) if upload is not None else load_model(model)
except ValueError as exc:
    state.fail(exc)

with st.sidebar:
    per_node = node_spec.gpus_per_node
    gpus = state.number(
        "GPUs", key="gpus", default=training_gpus(node_spec), min_value=per_node,
        max_value=MAX_RUN_INTS["gpus"], step=per_node, help=f"whole nodes of {per_node} GPUs",
    )  # fmt: skip
    topology = state.selectbox("Topology", KINDS, key="topology", default="multi-plane")
    oversubscription = state.number(
        "Oversubscription", key="over", default=1.0, min_value=1.0, max_value=MAX_OVERSUBSCRIPTION, step=0.5
    )
    st.subheader("Parallel layout")
    st.caption("auto: the engine's default (V3's set-up), or where that does not fit, the fitting choice.")
    tp = state.selectbox("TP (tensor parallel)", [AUTO, 1, 2, 4, 8], key="tp", default=AUTO)
    pp = state.number("PP (pipeline stages)", key="pp", default=16, min_value=1, max_value=MAX_RUN_INTS["pp"])
    experts = [e for e in range(1, spec.n_routed_experts + 1) if spec.n_routed_experts % e == 0] if spec.is_moe else [1]
    ep = state.selectbox(
        "EP (expert parallel)", [AUTO, *experts], key="ep", default=AUTO, disabled=not spec.is_moe,
        help="divisors of the model's routed experts" if spec.is_moe else "a dense model: no experts to spread",
    )  # fmt: skip
    cp = state.number(
        "CP (context parallel)", key="cp", default=1, min_value=1, max_value=MAX_RUN_INTS["cp"],
        help="each sequence split over this many GPUs (README: Context parallelism)",
    )  # fmt: skip
    cp_comm = state.selectbox(
        "CP exchange", CP_COMM_MODES, key="cpcomm", default="ring", disabled=cp == 1,
        help="ring: K/V chunks passed under the attention; all-gather: K/V gathered first, exposed (Llama 3); "
        "all-to-all: heads swapped for sequence (Ulysses)",
    )  # fmt: skip
    schedule = state.selectbox("Schedule", SCHEDULES, key="schedule", default="dualpipe")
    virtual = state.number(
        "Virtual stages (interleaved; 0: auto)", key="vs", default=0, min_value=0,
        max_value=MAX_RUN_INTS["virtual_stages"], help="auto: the most the layers allow (pp x v <= layers)",
    )  # fmt: skip
    micro_batch = state.number(
        "Micro-batch (sequences)", key="mb", default=1, min_value=1, max_value=MAX_RUN_INTS["micro_batch"]
    )
    zero = state.selectbox("ZeRO stage", [AUTO, 0, 1, 2, 3], key="zero", default=AUTO)
    recompute = state.selectbox("Recomputation", [AUTO, *RECOMPUTE_MODES], key="recompute", default=AUTO)
    cuda_graphs = state.selectbox(
        "CUDA graphs", CUDA_GRAPH_SCOPES, key="graphs", default="none",
        help="what the run captures in CUDA graphs, launched without the host's cost per kernel: none (eager, as "
        "V3's trace); router, attn, attn+router (Megatron's scopes); full (README: Host launch time)",
    )  # fmt: skip
    precision = state.selectbox(
        "Precision", [AUTO, *PRECISIONS], key="precision", default=AUTO,
        help="auto: fp8 (V3's recipe) where the GPU has fp8, else bf16",
    )  # fmt: skip
    fp8_recipe = state.selectbox(
        "FP8 scaling", FP8_RECIPES, key="fp8recipe", default="block", disabled=precision == "bf16",
        help="block: V3's 1x128 / 128x128 blocks (DeepGEMM); tensor: one scale per tensor (Transformer Engine's "
        "current scaling, cuBLAS); mx: MXFP8 (Blackwell). Dense GEMMs are priced as timed on the GPU "
        "(README: FP8 recipes)",
    )  # fmt: skip
    st.subheader("Batch and budget")
    max_seq = spec.max_position_embeddings or MAX_RUN_INTS["seq_len"]
    seq_len = state.number(
        "Sequence length (tokens)", key="seq", default=min(4096, max_seq), min_value=1, max_value=max_seq,
        step=1024, help=f"at most the model's {max_seq:,}" if spec.max_position_embeddings else None,
    )  # fmt: skip
    batch_seqs = state.number(
        "Global batch (sequences; 0: auto)", key="batch", default=0, min_value=0,
        max_value=MAX_RUN_INTS["global_batch_tokens"] // max(int(seq_len), 1),
        help="auto: V3's 15,360 sequences, or the nearest batch the layout splits into whole micro-batches",
    )  # fmt: skip
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
    profile = state.selectbox(
        "Kernel profile", PROFILES, key="profile", default="published",
        help="published: today's kernels (DeepGEMM, FlashAttention-3); h800-v3-cutlass: the FP8 GEMMs V3 ran in "
        "2024 (V3's validate row); trace-deepseek-v3-train: the rates of V3's own trace (in sample for V3)",
    )  # fmt: skip
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

given = {
    "tp": auto_or(tp),
    "ep": auto_or(ep) if spec.is_moe else None,
    "virtual_stages": (int(virtual) or None) if schedule == "interleaved" else 1,
    "zero_stage": auto_or(zero),
    "recompute": auto_or(recompute),
    "precision": auto_or(precision),
    "global_batch_tokens": int(batch_seqs) * int(seq_len) if batch_seqs else None,
    "price_per_gpu_hour": float(price) if price > 0 else None,
}
options = {
    "model": spec if upload is not None else model,
    "node": node,
    "gpus": int(gpus),
    "topology": topology,
    "oversubscription": float(oversubscription),
    "pp": int(pp),
    "cp": int(cp),
    "cp_comm": cp_comm,
    "cuda_graphs": cuda_graphs,
    "fp8_recipe": "block" if precision == "bf16" else fp8_recipe,  # the widget is off: bf16 scales nothing
    "schedule": schedule,
    "micro_batch": int(micro_batch),
    "seq_len": int(seq_len),
    "tokens": float(tokens_t) * 1e12,
    **{k: (int(v) if isinstance(v, int | np.integer) else v) for k, v in given.items() if v is not None},
}
if upload is not None:
    with st.expander(f"What was read from {state.plain(model)}", expanded=False):
        st.dataframe(model_summary_frame(spec), hide_index=True)
try:
    r, settled, note = priced(tuple(sorted(options.items())), profile, profile_version(profile, node))
except ValueError as exc:
    state.fail(exc)

run = r["run"]
baseline = scenarios.baseline()
findings.headline(r, spec, run, baseline)
if note:
    st.info(f"The engine {state.plain(note)}.")
cols = st.columns(5)
delta = scenarios.deltas(r, baseline)
cols[0].metric("GPU-hours", gpu_hours(r["gpu_hours"]), delta.get("gpu_hours"), delta_color="inverse")
cols[1].metric(
    "Cost", usd(r["cost_usd"]), delta.get("cost_usd"), delta_color="inverse",
    help=f"at ${run['usd_per_gpu_hour']:.2f} per GPU-hour",
)  # fmt: skip
cols[2].metric("Days", f"{r['days']:.1f}", delta.get("days"), delta_color="inverse")
cols[3].metric("MFU (bf16 peak)", f"{r['mfu']['bf16']:.1%}", delta.get("mfu"))
cols[4].metric(
    "Step time", f"{r['step_time_s']:.2f} s", delta.get("step_time_s"), delta_color="inverse",
    help=f"{r['microbatches']} micro-batches per step",
)  # fmt: skip
st.caption(findings.layout_words(run, r["defaults"]))
spread = band(tuple(sorted(settled.items())), profile, profile_version(profile, node))
st.caption(
    f"P10-P90 from the kernel sources' spread: {gpu_hours(spread['gpu_hours']['p10'])}-"
    f"{gpu_hours(spread['gpu_hours']['p90'])} GPU-hours, {spread['step_time_s']['p10']:.2f}-"
    f"{spread['step_time_s']['p90']:.2f} s per step ({spread['draws']} draws from "
    + (
        f"{' to '.join(spread['sources'])}: the published kernels to the rates DeepSeek's V3 trace ran them at; "
        if len(spread["sources"]) > 1
        else f"{spread['sources'][0]}'s fits and their scatter alone: V3's trace ran on another die; "
    )
    + "network rates held)."
)
findings.published(run, r, spec, node_spec.gpu)
findings.explanation(r["explain"])
scenarios.show(settled, r, profile)
findings.sensitivity_chart(tuple(sorted(settled.items())), profile)

left, right = st.columns(2)
with left:
    st.subheader("Where the step time goes")
    parts = pd.DataFrame(
        {
            "part": [findings.PARTS[k] for k in BREAKDOWN_KEYS],
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
    st.dataframe(
        parts,
        hide_index=True,
        column_config={
            "share": st.column_config.NumberColumn(format="percent"),
            "seconds per step": st.column_config.NumberColumn(format="%.3f s"),
        },
    )
    state.csv_download(parts, "step-breakdown")
with right:
    st.subheader("Memory per GPU")
    hbm_gb = node_spec.gpu.hbm_bytes / 1e9
    mem = r["memory_per_gpu_bytes"]
    fig = go.Figure([go.Bar(name=k.replace("_", " "), x=["fullest GPU"], y=[mem[k] / 1e9]) for k in MEMORY])
    fig.add_hline(y=hbm_gb, line_dash="dash", annotation_text=f"{run['gpu']} HBM {hbm_gb:.1f} GB")
    fig.update_layout(barmode="stack", height=320, yaxis_title="GB", margin={"t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")
    st.metric("Memory per GPU", f"{mem['total'] / 1e9:.1f} GB of {node_spec.gpu.memory_text()}")

st.subheader("With failures, checkpoints and restarts")
reliability = Reliability(
    failure_scale=float(failure_scale), storage=storage, restart_s=float(restart_s), checkpointing=checkpointing,
    spare_nodes=None if spare_nodes is None else int(spare_nodes), repair_h=float(repair_h or REPAIR_H),
)  # fmt: skip
steady_s = r["days"] * SECONDS_PER_DAY
try:
    expected_run = run_goodput(build_run(dict(settled)), steady_s, r["gpu_hours"], r["cost_usd"], reliability)
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

scale.show(settled, profile, float(failure_scale), storage, float(restart_s))
plan.show(settled, profile, reliability)

st.subheader("Inputs")
inputs = pd.DataFrame(
    [{"input": fmt.label(k), "value": str(v)} for k, v in {**run, "stage_layers": r["stage_layers"]}.items()]
)
inputs = state.clean_frame(inputs)  # an uploaded model's name is a file's
st.dataframe(inputs, hide_index=True)
state.csv_download(inputs, "run-inputs")

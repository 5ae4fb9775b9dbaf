"""Co-design: hardware what-ifs (FLOP/s, HBM capacity and bandwidth, NVLink domain size and bandwidth, NIC
bandwidth, topology) against a training run's step time, cost and memory, for the chosen model: the question of
the ISCA 2025 paper on DeepSeek-V3's hardware (arXiv 2505.09343). The numbers are
`simulator.explore.codesign`'s; the page formats and plots them."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.fmt import duration, gb, signed_percent, usd
from hwmodels.registry import catalog, load_node
from hwmodels.topology import KINDS
from simulator.analytic.fitting import fitting_run
from simulator.explore.codesign import (
    KNOB_MULTIPLIERS,
    KNOBS,
    MAX_MULTIPLIER,
    HardwareWhatIf,
    evaluate,
    knob_table,
    ranked_knobs,
    topology_table,
)
from simulator.presets import training_gpus
from simulator.runspec import MAX_RUN_INTS, build_run
from workloads.registry import model_slugs

# The sidebar's multiplier widgets: (HardwareWhatIf field, URL key, label).
MULTIPLIERS = (
    ("compute_x", "flops", "FLOP/s (every dtype's peak)"),
    ("hbm_capacity_x", "hbm", "HBM capacity"),
    ("hbm_bw_x", "hbm_bw", "HBM bandwidth"),
    ("scaleup_bw_x", "nvlink", "NVLink bandwidth"),
    ("nic_bw_x", "nic", "NIC bandwidth"),
)
MIN_MULTIPLIER = 0.1
RUN_TOPOLOGY = "default"  # the topology choice that keeps the run's own
MAX_OVERSUBSCRIPTION = 64.0  # down:up, as the Training cost page bounds it


@st.cache_data(max_entries=256, show_spinner=False)
def rows(
    model: str, node: str, gpus: int, whatif: tuple[tuple[str, Any], ...]
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The unchanged hardware's row, the what-if's, the one-knob table around the what-if and the topology
    table (cached on plain arguments: a rerun costs nothing). The run is the engine's default for the model on
    the catalog node, with its fitting memory settings where V3's do not fit (as `v3sim train`)."""
    run = fitting_run(build_run({"model": model, "node": node, "gpus": gpus})).run
    base, chosen = HardwareWhatIf(), HardwareWhatIf(**dict(whatif))
    return evaluate(run, base), evaluate(run, chosen), knob_table(run, chosen), topology_table(run, chosen)


def times(value: float) -> str:
    return f"x{value:g}"


def finding(model: str, gpus: int, gpu: str, table: list[dict[str, Any]], changed: bool) -> str:
    """The page's answer in a sentence: what doubling each part does to the step time, the best first."""
    ranked = ranked_knobs(table, 2.0)
    parts = [
        f"{r['label']} {signed_percent(r['change'])}" if not math.isnan(r["change"]) else f"{r['label']}: does not run"
        for r in ranked
    ]
    where = f"{model} on {gpus:,} {gpu}" + (" (the what-if hardware)" if changed else "")
    best = ranked[0]
    if math.isnan(best["change"]):
        return f"For {where}, no single doubling runs: {'; '.join(parts)}."
    return (
        f"For {where}, doubling one part at a time, **{best['label']} buys most**: the step time changes "
        f"{parts[0].removeprefix(best['label'] + ' ')}; then {', '.join(parts[1:])}."
    )


def knob_figure(table: pd.DataFrame, column: str, title: str, scale: float = 1.0) -> go.Figure:
    """One line per knob of `column` against its multiplier (log axis)."""
    fig = go.Figure()
    for label, group in table.groupby("label", sort=False):
        fig.add_scatter(x=group["multiplier"], y=group[column] / scale, mode="lines+markers", name=str(label))
    fig.update_xaxes(type="log", tickvals=list(KNOB_MULTIPLIERS), ticktext=[times(m) for m in KNOB_MULTIPLIERS])
    return fig.update_layout(
        height=340, xaxis_title="multiplier on one part", yaxis_title=title, margin={"t": 10, "b": 10}
    )


def knob_cell(row: pd.Series) -> str:
    if not row["fits"]:
        return "does not fit" if not math.isnan(row.get("memory_per_gpu_bytes", math.nan)) else "does not run"
    return f"{duration(row['step_time_s'])} ({signed_percent(row['change'])})"


def topology_frame(topo: pd.DataFrame) -> pd.DataFrame:
    """The topology table as shown: each kind and taper, its step time and network cost per GPU, or why not."""
    steps = zip(topo["step_time_s"], topo["fits"], strict=True)
    return pd.DataFrame(
        {
            "topology": [f"{k} {o:g}:1" for k, o in zip(topo["kind"], topo["oversubscription"], strict=True)],
            "step time": [duration(v) if ok else "does not run" for v, ok in steps],
            "network cost per GPU": [usd(v) for v in topo["network_usd_per_gpu"]],
            "why not": [state.plain(r, 200) for r in topo["reason"]],
        }
    )


def what_to_change(row: dict[str, Any], gpus: int) -> str:
    """The page's fix for a what-if that does not run: the HBM it needs, whole NVLink domains, or the inputs."""
    if not math.isnan(row["memory_per_gpu_bytes"]):
        need = times(math.ceil(row["hbm_needed_x"] * 100) / 100)
        return f"raise HBM capacity to at least {need}, or change the layout (PP, EP, ZeRO, recompute) on Training cost"
    domain = int(row["gpus_per_domain"])
    if gpus % domain:
        low, high = gpus // domain * domain, (gpus // domain + 1) * domain
        shown = f"{low:,} or {high:,}" if low else f"{high:,}"
        return f"set GPUs to a multiple of the {domain}-GPU NVLink domain ({shown}), or another domain size"
    return "change the topology, its oversubscription or the what-if"


st.title("Co-design")
st.caption(
    "What a training run becomes on other hardware: each part of the node as a multiplier on the catalog's "
    "figure, one at a time or together (the question of Zhao et al., ISCA 2025, arXiv 2505.09343). The run is "
    "the engine's default for the model (DeepSeek-V3: its published pre-training, PP16 DualPipe, EP64, fp8); "
    "its layout, batch and price per GPU-hour stay as they are."
)

with st.sidebar:
    st.subheader("Run")
    model = state.selectbox("Model", model_slugs(), key="model", default="deepseek-v3")
    node = state.selectbox("Node (GPU)", catalog("nodes"), key="node", default="h800-ib")
    node_spec = load_node(node)
    gpus = state.number(
        "GPUs", key="gpus", default=training_gpus(node_spec), min_value=1, max_value=MAX_RUN_INTS["gpus"],
        step=node_spec.gpus_per_node,
    )  # fmt: skip
    st.subheader("Hardware what-if")
    st.caption("Multipliers on the catalog node (1: as it is).")
    given: dict[str, Any] = {}
    for field, key, label in MULTIPLIERS:
        given[field] = state.number(
            label, key=key, default=1.0, min_value=MIN_MULTIPLIER, max_value=MAX_MULTIPLIER, step=0.25
        )
    domain_x = state.number(
        "NVLink domain size (GPUs per node)", key="domain", default=1.0, min_value=MIN_MULTIPLIER,
        max_value=MAX_MULTIPLIER, step=1.0, help="one NIC per GPU as before; it must give whole GPUs",
    )  # fmt: skip
    domain = node_spec.gpus_per_node * domain_x
    st.caption(f"{domain:g} GPUs per NVLink domain (the {node_spec.name} node has {node_spec.gpus_per_node}).")
    topology = state.selectbox(
        "Topology", (RUN_TOPOLOGY, *KINDS), key="topology", default=RUN_TOPOLOGY,
        help=f"{RUN_TOPOLOGY}: the run's own (multi-plane, as V3's)",
    )  # fmt: skip
    oversubscription = state.number(
        "Oversubscription (down:up)", key="over", default=1.0, min_value=1.0, max_value=MAX_OVERSUBSCRIPTION,
        step=0.5, help="leaf switches' down to up ports (1: no taper)",
    )  # fmt: skip

whatif: dict[str, Any] = {**given, "scaleup_size_x": float(domain_x)}
if topology != RUN_TOPOLOGY:
    whatif["topology"] = topology
if oversubscription != 1.0:
    whatif["oversubscription"] = float(oversubscription)
try:
    with st.spinner("Pricing the what-ifs (a new topology is routed once, up to seconds at 16K GPUs)"):
        base, row, table, topologies = rows(model, node, int(gpus), tuple(sorted(whatif.items())))
except ValueError as exc:
    state.fail(exc)

gpu_name = node_spec.gpu.name.upper()
changed = any(v != 1.0 for k, v in whatif.items() if k in KNOBS) or "topology" in whatif or "oversubscription" in whatif
if not row["fits"]:
    st.error(f"{state.plain(row['reason'])}. On this page: {what_to_change(row, int(gpus))}.")
    st.stop()

frame = pd.DataFrame(table)
st.markdown(finding(model, int(gpus), gpu_name, table, changed))
if not base["fits"]:
    st.info(
        f"The {gpu_name} as catalogued does not fit this run ({gb(base['memory_per_gpu_bytes'])} per GPU of "
        f"{gb(base['hbm_bytes'], 0)}): the what-if's figures have no unchanged hardware to compare with."
    )


def delta(key: str) -> str | None:
    """The what-if's change against the unchanged hardware, or None (nothing to compare, or no change)."""
    if not base["fits"] or not changed:
        return None
    return signed_percent(row[key] / base[key] - 1)


cols = st.columns(5)
cols[0].metric("Step time", duration(row["step_time_s"]), delta("step_time_s"), delta_color="inverse",
               help="against the hardware as catalogued")  # fmt: skip
cols[1].metric("GPU-hours", f"{row['gpu_hours'] / 1e3:,.0f}K", delta("gpu_hours"), delta_color="inverse")
cols[2].metric("Cost", usd(row["cost_usd"]), delta("cost_usd"), delta_color="inverse",
               help="GPU-hours at the run's price per GPU-hour, held for the what-if")  # fmt: skip
cols[3].metric(f"Memory per GPU (of {gb(row['hbm_bytes'], 1)})", gb(row["memory_per_gpu_bytes"]))
cols[4].metric(
    "Network cost per GPU", usd(row["network_usd_per_gpu"]), delta("network_usd_per_gpu"), delta_color="inverse",
    help=f"switches and links of the {row['topology']} network ({usd(row['network_cost_usd'])} in all): a purchase, "
    "shown beside the GPU-hour rental, not added to it",
)  # fmt: skip

st.subheader("One part at a time")
st.caption(
    "From the what-if in the sidebar, each part times 0.5, 1, 2 and 4 alone. HBM capacity only decides what "
    "fits (the run keeps its recompute and ZeRO); NVLink domain size keeps one NIC per GPU and the run's EP. A "
    "line that goes flat: another part now limits the step (docs/codesign.md)."
)
left, right = st.columns(2)
left.plotly_chart(knob_figure(frame, "step_time_s", "step time (s)"), width="stretch")
right.plotly_chart(knob_figure(frame, "cost_usd", "cost ($M)", 1e6), width="stretch")
shown = frame.assign(cell=frame.apply(knob_cell, axis=1), multiplier=frame["multiplier"].map(times))
grid = shown.pivot(index="label", columns="multiplier", values="cell").reindex(list(KNOBS.values()))
st.dataframe(grid[[times(m) for m in KNOB_MULTIPLIERS]], column_config={"label": "part"})
state.csv_download(frame, "codesign-one-part-at-a-time")
if (frame["ep_switch_factor"] > 1).any():
    st.caption(
        "Where the all-to-all's busiest switch link is slower than its NICs (factor above 1), the 400 Gb/s switch "
        "ports, which a NIC what-if does not change, limit it."
    )

st.subheader("Topology")
topo = pd.DataFrame(topologies)
runs = topo[topo["fits"]]
fig = go.Figure(
    go.Scatter(
        x=runs["network_usd_per_gpu"], y=runs["step_time_s"], mode="markers+text",
        text=[f"{k} {o:g}:1" for k, o in zip(runs["kind"], runs["oversubscription"], strict=True)],
        textposition="top center",
    )
)  # fmt: skip
fig.update_layout(height=360, xaxis_title="network cost per GPU ($)", yaxis_title="step time (s)",
                  margin={"t": 10, "b": 10})  # fmt: skip
st.plotly_chart(fig, width="stretch")
st.dataframe(topology_frame(topo), hide_index=True)

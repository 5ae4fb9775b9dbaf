"""Topology explorer: a sweep over topology kind, switch radix, oversubscription and GPU count, each
combination's network size, cost, bisection and hops (`v3sim topology`), its closed-form all-to-all time, and
DeepSeek-V3's training step on it (`v3sim train`); plus a drawing of a small instance of one kind.

The page only formats and plots what `simulator` and `hwmodels` return; a combination a model rejects is a
row marked invalid with the model's own message."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from typing import Any

import networkx as nx
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.fmt import signed_percent
from dashboard.progress import Bar, remembered
from hwmodels.registry import catalog, load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import KINDS, build_switch_graph, design_topology
from hwmodels.topology import TABLE as TOPOLOGY_TABLE
from simulator.analytic.report import estimate
from simulator.events.ep_comm import Routing
from simulator.events.simulate import simulate
from simulator.explore.sweep import pareto_front
from simulator.explore.validate import load_figures
from simulator.network import collectives as network
from simulator.network.summary import topology_summary
from simulator.runspec import build_run

NODE = "h800-ib"  # DeepSeek-V3's node: 8 H800, one 400G NIC per GPU
PLANED = tuple(k for k, v in TOPOLOGY_TABLE.items() if v.planes != "none")  # kinds whose planes (or rails) one sets
RADIXES = ("16", "32", "64", "128")
OVERSUBSCRIPTIONS = ("1", "2", "3", "4")
GPU_COUNTS = ("512", "1024", "2048", "4096", "8192")
DRAW_RADIXES = (4, 6, 8, 10, 12)
TIER_LEVEL = {"endpoint": 0, "leaf": 1, "edge": 1, "spine": 2, "aggregation": 2, "core": 3, "router": 1}
NET_COLUMNS = ("switches", "links", "cost_usd", "cost_per_endpoint_usd", "bisection_bytes_per_s", "diameter_hops")
CHARTS = (  # (column shown, axis title)
    ("cost_per_endpoint_usd", "Network cost per endpoint ($)"),
    ("bisection_tbytes_per_s", "Bisection bandwidth (TB/s, one direction)"),
    ("all_to_all_ms", "All-to-all time (ms)"),
    ("step_time_s", "DeepSeek-V3 step time (s)"),
)
# The table's columns as people read them (the CSV keeps the SI names).
HEADERS = {
    "kind": "Topology",
    "radix": "Radix",
    "planes": "Planes",
    "oversubscription": "Oversubscription",
    "gpus": "GPUs",
    "valid": "Valid",
    "reason": "Why not",
    "cost_per_endpoint_usd": "Cost per endpoint ($)",
    "cost_musd": "Network cost ($M)",
    "switches": "Switches",
    "links": "Links",
    "bisection_tbytes_per_s": "Bisection (TB/s)",
    "diameter_hops": "Diameter (hops)",
    "all_to_all_ms": "All-to-all (ms)",
    "step_time_s": "V3 step (s)",
    "exposed_ep_comm_s": "V3 exposed all-to-all (s)",
    "gpu_hours": "V3 GPU-hours",
    "pareto": "Pareto front",
}
COLUMN_FORMATS = {
    HEADERS["cost_per_endpoint_usd"]: st.column_config.NumberColumn(format="$%,.0f"),
    HEADERS["cost_musd"]: st.column_config.NumberColumn(format="%.2f"),
    HEADERS["bisection_tbytes_per_s"]: st.column_config.NumberColumn(format="%.1f"),
    HEADERS["all_to_all_ms"]: st.column_config.NumberColumn(format="%.3f"),
    HEADERS["step_time_s"]: st.column_config.NumberColumn(format="%.3f"),
    HEADERS["exposed_ep_comm_s"]: st.column_config.NumberColumn(format="%.3f"),
    HEADERS["gpu_hours"]: st.column_config.NumberColumn(format="%,.0f"),
}
PUBLISHED_KIND = "multi-plane"  # V3's network: a multi-plane two-layer fat tree (ISCA 2025, arXiv 2505.09343)


def _reason(exc: Exception) -> str:
    """A model's one-line message; an unexpected error keeps its type so it is not mistaken for advice."""
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


@st.cache_data(max_entries=4096, show_spinner=False)
def evaluate(
    kind: str, radix: int, planes: int, oversubscription: float, gpus: int, a2a_bytes_per_gpu: float, switch: str
) -> dict[str, Any]:
    """One sweep row: `topology_summary`, the all-to-all on the fabric (the fast model: its routed legs' busiest
    link, hash ECMP) and V3's `estimate` (cached, plain args)."""
    row: dict[str, Any] = {"kind": kind, "radix": radix, "planes": planes if kind in PLANED else 1}
    row |= {"oversubscription": oversubscription, "gpus": gpus}
    reasons = []
    try:
        net = topology_summary(kind, radix, gpus, planes if kind in PLANED else None, oversubscription, switch)
        row |= {name: net[name] for name in NET_COLUMNS}
    except Exception as exc:  # any rejection becomes the row's reason, never a traceback
        reasons.append(f"network: {_reason(exc)}")
    try:
        spec = design_topology(kind, radix, gpus, planes if kind in PLANED else None, oversubscription)
        fabric = build_fabric(spec, load_node(NODE), load_switch(switch), gpus)
        row["all_to_all_s"] = network.fast_all_to_all_s(fabric, gpus, a2a_bytes_per_gpu)
    except Exception as exc:
        reasons.append(f"all-to-all: {_reason(exc)}")
    try:
        options = {"gpus": gpus, "topology": kind, "radix": radix, "oversubscription": oversubscription}
        report = estimate(build_run(options), "published")
        row |= {"step_time_s": report.step_time_s, "gpu_hours": report.gpu_hours}
        row["exposed_ep_comm_s"] = report.breakdown["exposed_ep_comm"]
    except Exception as exc:
        reasons.append(f"V3 run: {_reason(exc)}")
    return row | {"valid": not reasons, "reason": "; ".join(reasons)}


def sweep_frame(
    kinds,
    radixes,
    planes,
    oversubscriptions,
    gpu_counts,
    a2a_bytes_per_gpu,
    switch,
    progress: Callable[[int, int, str], None] | None = None,
) -> pd.DataFrame:
    """Every combination's row, in SI units (the CSV), with the Pareto front of cost per endpoint and step time;
    `progress(done, total, "rows")` hears of each row priced."""
    combos = list(product(kinds, radixes, oversubscriptions, gpu_counts))
    rows = []
    for kind, r, o, n in combos:
        rows.append(evaluate(kind, int(r), int(planes), float(o), int(n), float(a2a_bytes_per_gpu), switch))
        if progress is not None:
            progress(len(rows), len(combos), "rows")
    frame = pd.DataFrame(rows)
    for name in (*NET_COLUMNS, "all_to_all_s", "step_time_s", "exposed_ep_comm_s", "gpu_hours"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce") if name in frame else float("nan")
    frame["pareto"] = pareto_front(frame, {"cost_per_endpoint_usd": "min", "step_time_s": "min"})
    return frame


def shown(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: display units (TB/s, ms, $M) converted here, at the edge."""
    out = frame[["kind", "radix", "planes", "oversubscription", "gpus", "valid", "reason"]].copy()
    out["cost_per_endpoint_usd"] = frame["cost_per_endpoint_usd"]
    out["cost_musd"] = frame["cost_usd"] / 1e6
    out["switches"] = frame["switches"].astype("Int64")
    out["links"] = frame["links"].astype("Int64")
    out["bisection_tbytes_per_s"] = frame["bisection_bytes_per_s"] / 1e12
    out["diameter_hops"] = frame["diameter_hops"].astype("Int64")
    out["all_to_all_ms"] = frame["all_to_all_s"] * 1e3
    out["step_time_s"] = frame["step_time_s"]
    out["exposed_ep_comm_s"] = frame["exposed_ep_comm_s"]
    out["gpu_hours"] = frame["gpu_hours"]
    out["pareto"] = frame["pareto"]
    out["config"] = [
        f"r{r} {o:g}:1 {n} GPUs" for r, o, n in zip(out.radix, out.oversubscription, out.gpus, strict=True)
    ]
    return out


def bar_chart(table: pd.DataFrame, column: str, title: str) -> go.Figure:
    labels = {**HEADERS, column: title, "config": "Configuration"}
    fig = px.bar(table, x="config", y=column, color="kind", barmode="group", labels=labels)
    fig.update_xaxes(title_text="")
    return fig.update_layout(height=320, margin={"t": 30, "b": 10}, title=title, legend_title_text="")


def pareto_chart(table: pd.DataFrame) -> go.Figure:
    valid = table[table["valid"]]
    fig = px.scatter(
        valid,
        x="cost_per_endpoint_usd",
        y="step_time_s",
        color="kind",
        hover_data=["radix", "planes", "oversubscription", "gpus"],
        labels={**HEADERS, "cost_per_endpoint_usd": "Network cost per endpoint ($)", "step_time_s": "V3 step time (s)"},
    )
    front = valid[valid["pareto"]].sort_values("cost_per_endpoint_usd")
    fig.add_scatter(
        x=front["cost_per_endpoint_usd"],
        y=front["step_time_s"],
        mode="lines+markers",
        name="Pareto front",
        marker={"size": 14, "symbol": "circle-open", "color": "black"},
        line={"dash": "dot", "color": "black"},
    )
    return fig.update_layout(height=420, margin={"t": 30}, legend_title_text="")


def _with_endpoints(graph: nx.Graph) -> nx.Graph:
    """A copy of the switch graph with one node per attached endpoint (NIC port), linked to its switch."""
    out = graph.copy()
    for switch, data in graph.nodes(data=True):
        for i in range(data.get("endpoints", 0)):
            out.add_node(("endpoint", switch, i), tier="endpoint", plane=data.get("plane", 0))
            out.add_edge(("endpoint", switch, i), switch, links=1)
    return out


@st.cache_data(max_entries=64, show_spinner=False)
def drawing(kind: str, radix: int, planes: int, endpoints: bool) -> tuple[go.Figure, dict[str, int]]:
    """A plotly drawing of the largest `kind` instance at `radix` (trees by tier, the others by a seeded
    spring layout), and its switches by tier."""
    spec = design_topology(kind, radix, None, planes if kind in PLANED else None)
    switches = build_switch_graph(spec)
    graph = _with_endpoints(switches) if endpoints else switches
    if not TOPOLOGY_TABLE[kind].tree:
        pos = nx.spring_layout(graph, seed=0)
    else:
        nx.set_node_attributes(graph, {v: TIER_LEVEL[d["tier"]] for v, d in graph.nodes(data=True)}, "level")
        pos = nx.multipartite_layout(graph, subset_key="level", align="horizontal")
    fig = go.Figure()
    xs, ys = [], []
    for u, v in graph.edges:
        xs += [pos[u][0], pos[v][0], None]
        ys += [pos[u][1], pos[v][1], None]
    fig.add_scatter(x=xs, y=ys, mode="lines", line={"width": 0.6, "color": "#bbb"}, hoverinfo="skip", name="links")
    tiers = sorted({d["tier"] for _, d in graph.nodes(data=True)}, key=lambda t: TIER_LEVEL[t])
    for tier, colour in zip(tiers, px.colors.qualitative.Set1, strict=False):
        nodes = [v for v, d in graph.nodes(data=True) if d["tier"] == tier]
        size = 5 if tier == "endpoint" else 11
        text = [f"{tier} {v[2]} (plane {graph.nodes[v].get('plane', 0)})" for v in nodes]
        fig.add_scatter(
            x=[pos[v][0] for v in nodes],
            y=[pos[v][1] for v in nodes],
            mode="markers",
            marker={"size": size, "color": colour},
            name=f"{tier} ({len(nodes)})",
            text=text,
            hoverinfo="text",
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=480, margin={"t": 10, "b": 10, "l": 10, "r": 10}, plot_bgcolor="white")
    return fig, _tier_counts(switches)


def _tier_counts(graph: nx.Graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, tier in graph.nodes(data="tier"):
        counts[tier] = counts.get(tier, 0) + 1
    return counts


def _name(row: pd.Series) -> str:
    return f"{row['kind']}, radix {row['radix']}, {row['oversubscription']:g}:1, {row['gpus']:,} GPUs"


def _published_row(valid: pd.DataFrame) -> pd.Series | None:
    """The sweep's row closest to V3's own network: multi-plane at 1:1, radix 64 and 2,048 GPUs where swept."""
    rows = valid[(valid["kind"] == PUBLISHED_KIND) & (valid["oversubscription"] == 1)]
    if rows.empty:
        return None
    return rows.assign(off=(rows["radix"] != 64) * 2 + (rows["gpus"] != 2048)).sort_values("off").iloc[0]


def findings(frame: pd.DataFrame) -> str:
    """The page's answer in sentences: the fastest and the cheapest network for V3 and by how much, what
    separates them (the expert all-to-all left exposed), and V3's published network beside them."""
    valid = frame[frame["valid"]]
    fast = valid.sort_values(["step_time_s", "cost_per_endpoint_usd"]).iloc[0]
    cheap = valid.sort_values(["cost_per_endpoint_usd", "step_time_s"]).iloc[0]
    if fast.name == cheap.name:
        text = (
            f"For V3, **{_name(fast)}** is both the fastest and the cheapest network swept: a "
            f"{fast['step_time_s']:.2f} s step at ${fast['cost_per_endpoint_usd']:,.0f} per endpoint."
        )
    else:
        saving = signed_percent(cheap["cost_per_endpoint_usd"] / fast["cost_per_endpoint_usd"] - 1)
        slower = signed_percent(cheap["step_time_s"] / fast["step_time_s"] - 1)
        text = (
            f"For V3, the fastest network is **{_name(fast)}** ({fast['step_time_s']:.2f} s a step, "
            f"${fast['cost_per_endpoint_usd']:,.0f} per endpoint); the cheapest is **{_name(cheap)}** "
            f"(${cheap['cost_per_endpoint_usd']:,.0f}, {saving}) with a {cheap['step_time_s']:.2f} s step "
            f"({slower}). What separates them is the expert all-to-all left exposed: "
            f"{fast['exposed_ep_comm_s']:.2f} s of the fastest's step, "
            f"{cheap['exposed_ep_comm_s']:.2f} s of the cheapest's."
        )
    isca = load_figures()["topology_comparison"]["multi_plane_fat_tree"][4] * 1e3  # k$ per endpoint
    mine = _published_row(valid)
    if mine is None:
        return text + (
            f" V3's own network, a multi-plane two-layer fat tree (ISCA 2025: ${isca:,.0f} per endpoint), is not "
            "in this sweep: add multi-plane at 1:1."
        )
    gap = signed_percent(mine["cost_per_endpoint_usd"] / isca - 1)
    if mine.name in (fast.name, cheap.name):
        which = "fastest" if mine.name == fast.name else "cheapest"
        return text + (
            f" The {which} is V3's own network, a multi-plane two-layer fat tree (ISCA 2025 publishes "
            f"${isca:,.0f} per endpoint for it: {gap} here)."
        )
    return text + (
        f" V3's own network, a multi-plane two-layer fat tree, is {_name(mine)} here: "
        f"${mine['cost_per_endpoint_usd']:,.0f} per endpoint (ISCA 2025 published ${isca:,.0f}: {gap}) and a "
        f"{mine['step_time_s']:.2f} s step."
    )


def show_metrics(frame: pd.DataFrame) -> None:
    valid = frame[frame["valid"]]
    cheap = valid.loc[valid["cost_per_endpoint_usd"].idxmin()]
    fast = valid.loc[valid["step_time_s"].idxmin()]
    cols = st.columns(3)
    cols[0].metric("Cheapest network ($ per endpoint)", f"${cheap['cost_per_endpoint_usd']:,.0f}")
    cols[0].caption(f"{cheap['kind']}, radix {cheap['radix']}, {cheap['oversubscription']:g}:1, {cheap['gpus']} GPUs")
    cols[1].metric("Fastest V3 step time", f"{fast['step_time_s']:.3f} s")
    cols[1].caption(f"{fast['kind']}, radix {fast['radix']}, {fast['oversubscription']:g}:1, {fast['gpus']} GPUs")
    cols[2].metric("Valid configurations", f"{len(valid)} of {len(frame)}")


def show_sweep(frame: pd.DataFrame) -> None:
    valid = frame[frame["valid"]]
    if valid.empty:
        st.error(
            f"None of the {len(frame)} combinations is valid; the first says: {state.plain(frame['reason'].iloc[0])}. "
            "Pick a larger radix, fewer GPUs, oversubscription 1 for slim-fly/dragonfly, or planes dividing the GPUs."
        )
    else:
        show_metrics(frame)
    table = shown(frame)
    headed = table.drop(columns="config").rename(columns=HEADERS)
    st.dataframe(headed, column_config=COLUMN_FORMATS, hide_index=True, key="sweep")
    state.csv_download(frame, "topology-sweep")
    if valid.empty:
        return
    plotted = table[table["valid"]]
    for left, right in (CHARTS[:2], CHARTS[2:]):
        cols = st.columns(2)
        cols[0].plotly_chart(bar_chart(plotted, *left), key=f"chart-{left[0]}")
        cols[1].plotly_chart(bar_chart(plotted, *right), key=f"chart-{right[0]}")
    st.subheader("Cost per endpoint against V3 step time")
    st.plotly_chart(pareto_chart(table), key="pareto")


EVENT_PROGRESS = {
    "all-to-alls": "Running every dispatch and combine flow by flow on the fabric",
    "ops": "Simulating the pipeline's ops",
}


def event_check(kind: str, radix: int, oversubscription: float, gpus: int) -> dict[str, float]:
    """V3 on one configuration in the event model (`v3sim simulate`: two drawn routing samples on the flow
    network), beside the analytic step the sweep shows; once per configuration, with a progress bar."""

    def compute() -> dict[str, float]:
        options = {"gpus": gpus, "topology": kind, "radix": radix, "oversubscription": oversubscription}
        bar = Bar(EVENT_PROGRESS, start="Preparing the step…")
        try:
            sim = simulate(build_run(options), "published", "flow", Routing(samples=2), progress=bar)
        finally:
            bar.clear()
        busiest = sim.link_summary().get("switch", {}).get("max", 0.0)
        return {"event": sim.step_time_s, "analytic": sim.analytic_step_time_s, "switch": busiest}

    return remembered(("topology-event", kind, radix, oversubscription, gpus), compute, max_entries=64)


def show_event_check(frame: pd.DataFrame) -> None:
    """The event model one click away for a configuration of the sweep."""
    valid = frame[frame["valid"]]
    if valid.empty:
        return
    st.subheader("The event model for one configuration")
    labels = [
        f"{k}, radix {r}, {o:g}:1, {n} GPUs"
        for k, r, o, n in valid[["kind", "radix", "oversubscription", "gpus"]].values
    ]
    choice = st.selectbox("Configuration", labels, key="event_config")
    row = valid.iloc[labels.index(choice)]
    if st.button("Run the event model (seconds; a bar shows the time left)", key="event_run"):
        result = event_check(str(row["kind"]), int(row["radix"]), float(row["oversubscription"]), int(row["gpus"]))
        cols = st.columns(3)
        cols[0].metric("Event-model V3 step", f"{result['event']:.2f} s")
        cols[1].metric("Analytic step (the sweep's)", f"{result['analytic']:.2f} s")
        cols[2].metric("Busiest switch link", f"{result['switch']:.0%} of the step")
        st.caption(
            "The event model draws expert loads and runs every dispatch and combine flow by flow on this fabric "
            "(max-min fair rates, hash ECMP) in a SimPy pipeline; the analytic model prices the same legs by their "
            "busiest link (docs/events.md compares the two)."
        )


def show_drawing(planes: int) -> None:
    st.subheader("A small instance")
    cols = st.columns(3)
    with cols[0]:
        kind = state.selectbox("Kind to draw", KINDS, key="draw", default="multi-plane")
    with cols[1]:
        radix = state.selectbox("Drawing radix", DRAW_RADIXES, key="draw_radix", default=8)
    with cols[2]:
        endpoints = state.checkbox("Draw endpoints", key="draw_ends", default=False)
    try:
        fig, tiers = drawing(kind, radix, planes, endpoints)
    except ValueError as exc:
        st.warning(f"Cannot draw {kind} at radix {radix}: {exc}. Pick a larger drawing radix.")
        return
    size = {"split": f", {planes} planes", "rails": f", {planes} rails"}.get(TOPOLOGY_TABLE[kind].planes, "")
    taper = ", no oversubscription" if TOPOLOGY_TABLE[kind].tree else ""
    parts = ", ".join(f"{n} {tier}" for tier, n in tiers.items())
    st.caption(
        f"The largest {kind} of radix-{radix} switches{size}{taper}: {parts} (`build_switch_graph`, networkx layout)."
    )
    st.plotly_chart(fig, key="drawing")


st.title("Topology explorer")
answer = st.empty()  # the page's answer, filled once the sweep is priced
st.caption(
    f"Network size and cost from `topology_summary` (`v3sim topology`) on the chosen switch; the all-to-all on "
    f"{NODE} nodes from the fast network model: every leg routed on the topology (NVLink forwarding, hash ECMP), "
    "timed by its busiest link, which is the flow model's time for it (`v3sim collective` prints both); V3 step "
    "time and GPU-hours from the analytic model (`v3sim train`, published kernel rates), which prices the expert "
    "all-to-all, pipeline sends and data-parallel rings on the same topology, with only GPUs, topology, radix "
    "and oversubscription changed."
)

with st.sidebar:
    st.subheader("Sweep")
    kinds = state.multiselect("Topologies", KINDS, key="kinds", default=["fat-tree-2", "multi-plane", "fat-tree-3"])
    radixes = state.multiselect("Switch radix (ports)", RADIXES, key="radix", default=["64"])
    planes = state.number(
        "Planes / rails (multi-plane, multi-rail)", key="planes", default=8, min_value=1, max_value=16
    )
    oversubs = state.multiselect("Oversubscription (down:up)", OVERSUBSCRIPTIONS, key="over", default=["1", "3"])
    gpu_counts = state.multiselect("GPUs", GPU_COUNTS, key="gpus", default=["2048"])
    a2a_mb = state.number("All-to-all volume per GPU (MB)", key="a2a_mb", default=256, min_value=1, max_value=100_000)
    switch = state.selectbox("Switch", catalog("switches"), key="switch", default="ib-ndr-64")

missing = [
    name for name, v in (("a topology", kinds), ("a radix", radixes), ("an oversubscription", oversubs)) if not v
]
missing += ["a GPU count"] if not gpu_counts else []
if missing:
    st.warning(f"Nothing to sweep: pick {', '.join(missing)} in the sidebar.")
else:
    bar = Bar({"rows": "Pricing each network and V3's step on it"}, start="Starting the sweep…")
    try:
        frame = sweep_frame(kinds, radixes, planes, oversubs, gpu_counts, a2a_mb * 1e6, switch, bar)
    finally:
        bar.clear()
    if frame["valid"].any():
        answer.markdown(findings(frame))
    show_sweep(frame)
    show_event_check(frame)
    if planes != load_node(NODE).nics_per_node and set(kinds) & set(PLANED):
        st.caption(
            f"V3 step times use the node's {load_node(NODE).nics_per_node} NICs as planes/rails (a training run "
            f"has no planes option); the network columns use {planes}."
        )
show_drawing(int(planes))

"""Pipeline timeline: the event simulator's step for a chosen schedule, as a Gantt chart per rank.

Every number comes from `simulator.events.simulate.simulate`; this page only picks its inputs, formats and plots.
"""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from simulator.events.engine import to_chrome_trace
from simulator.events.ep_comm import Routing
from simulator.events.simulate import simulate
from simulator.runspec import build_run

SCHEDULES = ("1f1b", "interleaved", "zb1p", "dualpipe")  # the event model does not run dualpipev
PP_CHOICES = (4, 8, 16)
NETWORK_LABELS = {"analytic": "analytic (fast)", "flow": "flow"}
OP_COLORS = {  # compute ops, then the expert-parallel communication phases (their own lane)
    "F": "#1f77b4",
    "B": "#ff7f0e",
    "W": "#2ca02c",
    "FB": "#9467bd",
    "dispatch_f": "#7f7f7f",
    "combine_f": "#bcbd22",
    "dispatch_b": "#17becf",
    "combine_b": "#8c564b",
}
OP_NAMES = {"FB": "F&B"}


@st.cache_data(show_spinner="Simulating the step…", max_entries=32)
def simulated(
    schedule: str, pp: int, microbatches: int, network: str, expert_cv: float, seed: int
) -> tuple[dict, pd.DataFrame, str]:
    """V3's set-up with `pp` stages and `microbatches` per step: the step's summary, events, Chrome trace JSON."""
    base = build_run({"pp": pp, "schedule": "1f1b"})  # only for its dp, micro-batch and sequence length
    tokens = microbatches * base.dp * base.micro_batch * base.seq_len
    run = build_run({"pp": pp, "schedule": schedule, "global_batch_tokens": tokens})
    sim = simulate(run, None, network, Routing(expert_cv=expert_cv, seed=seed))
    return sim.to_dict(), sim.timeline.events, json.dumps(to_chrome_trace(sim.timeline))


def gantt(events: pd.DataFrame) -> go.Figure:
    """One horizontal bar per op: a compute lane and a communication lane per rank, coloured by op kind."""
    lanes = events.assign(
        lane=[f"rank {r}" + (" comm" if s == "comm" else "") for r, s in events[["rank", "stream"]].values]
    )
    order = [f"rank {r}{suffix}" for r in sorted(events["rank"].unique()) for suffix in ("", " comm")]
    fig = go.Figure()
    for op, color in OP_COLORS.items():
        rows = lanes[lanes["op"] == op]
        if rows.empty:
            continue
        fig.add_trace(
            go.Bar(
                y=rows["lane"],
                base=rows["start_s"],
                x=rows["end_s"] - rows["start_s"],
                orientation="h",
                name=OP_NAMES.get(op, op),
                marker={"color": color, "line": {"width": 0}},
                customdata=rows[["label", "start_s", "end_s"]].values,
                hovertemplate="%{customdata[0]}<br>%{customdata[1]:.4f} s → %{customdata[2]:.4f} s<extra></extra>",
            )
        )
    used = [lane for lane in order if lane in set(lanes["lane"])]
    fig.update_layout(
        barmode="overlay",
        height=max(300, 22 * len(used)),
        xaxis_title="time in the step (s)",
        yaxis={"categoryorder": "array", "categoryarray": used[::-1], "title": None},
        legend_title="op",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def idle_chart(idle_s: list[float]) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(range(len(idle_s))), y=idle_s, marker_color="#d62728"))
    fig.update_layout(
        height=260, xaxis_title="rank", yaxis_title="idle (s)", margin={"l": 10, "r": 10, "t": 10, "b": 10}
    )
    return fig


st.title("Pipeline timeline")
st.caption(
    "The event simulator's step for DeepSeek-V3's published set-up (2048 H800s, EP64) with the schedule, "
    "pipeline depth and micro-batches chosen here; its ops run in SimPy on the analytic model's per-stage times."
)

cols = st.columns(6)
with cols[0]:
    schedule = state.selectbox("Schedule", SCHEDULES, key="schedule", default="dualpipe")
with cols[1]:
    pp = state.selectbox("Pipeline stages (pp)", PP_CHOICES, key="pp", default=16)
with cols[2]:
    microbatches = state.number("Micro-batches per step", key="mb", default=32, min_value=1, max_value=256, step=2)
with cols[3]:
    network = state.selectbox(
        "Network",
        tuple(NETWORK_LABELS),
        key="network",
        default="analytic",
        format_func=NETWORK_LABELS.get,
        help="analytic: the closed-form per-stage times (fast); flow: each MoE layer's dispatch and combine drawn "
        "from seeded expert loads and run on the fabric (several seconds).",
    )
with cols[4]:
    expert_cv = state.number(
        "Expert load CV",
        key="cv",
        default=0.0,
        min_value=0.0,
        max_value=9.9,
        step=0.1,
        disabled=network != "flow",
        help="Coefficient of variation of expert popularity (0: a balanced router); the flow network only.",
    )
with cols[5]:
    seed = state.number("Seed", key="seed", default=0, min_value=0, max_value=2**31 - 1)

st.caption(
    "V3's full step has 120 micro-batches per pipeline and about 10,000 ops: too many bars for a quick chart, so "
    "the batch here is micro-batches × dp × micro_batch × seq_len tokens of the chosen pp's data-parallel width."
)

try:
    summary, events, trace_json = simulated(
        schedule, int(pp), int(microbatches), network, float(expert_cv) if network == "flow" else 0.0, int(seed)
    )
except ValueError as exc:
    state.fail(exc)

idle = summary["idle_s"]
busiest = min(range(len(idle)), key=idle.__getitem__)
m = st.columns(4)
m[0].metric("Event step (s)", f"{summary['step_time_s']:.3f}")
m[1].metric("Analytic step (s)", f"{summary['analytic_step_time_s']:.3f}")
m[2].metric("Difference", f"{summary['difference']:+.1%}", help="event step / analytic step − 1")
m[3].metric("Busiest rank idle (s)", f"{idle[busiest]:.3f}", help=f"rank {busiest}, the rank with the least idle time")
st.caption(
    f"Pipeline {summary['pipeline_s']:.3f} s + data-parallel collectives and optimizer "
    f"{summary['dp_and_optimizer_s']:.3f} s (after the pipeline, not drawn); {summary['ops']} ops, "
    f"{summary['events']} events; stage split {summary['stage_layers']}."
)

st.subheader("Ops per rank")
st.plotly_chart(gantt(events))
st.caption(
    "F forward, B backward (input gradient; with the weight gradient unless a W follows), W weight gradient, "
    "F&B a DualPipe forward-backward pair. The comm lane holds each op's expert-parallel dispatch and combine."
)

left, right = st.columns([2, 1])
with left:
    st.subheader("Idle per rank")
    st.plotly_chart(idle_chart(idle))
with right:
    st.subheader("Downloads")
    st.download_button(
        "Download Chrome trace (step.json)", trace_json, file_name="step.json", mime="application/json", key="trace"
    )
    st.caption("Open in https://ui.perfetto.dev or chrome://tracing.")
    state.csv_download(events, "events", label="Download events (CSV)")

"""Pipeline timeline: the event simulator's step for a chosen schedule, as a Gantt chart per rank.

The defaults are the Training page's run (`build_run({})`: V3's published step, 120 micro-batches per
pipeline), so the event step sits beside the analytic one. Every number comes from
`simulator.events.simulate.simulate` and `simulator.analytic.report.estimate`; this page only picks inputs,
formats and plots. The simulation reports its progress, shown as a bar with the time left.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.fmt import duration, signed_percent
from dashboard.progress import Bar, remembered
from hwmodels.units import SECONDS_PER_HOUR
from simulator.analytic.report import estimate
from simulator.analytic.training import BREAKDOWN_KEYS
from simulator.events.engine import to_chrome_trace
from simulator.events.ep_comm import Routing
from simulator.events.simulate import simulate
from simulator.explore.validate import load_figures
from simulator.names import NETWORKS
from simulator.presets import EVENT_DEFAULTS
from simulator.runspec import build_run

V3 = build_run({})  # the Training page's default run: V3's published pre-training step
SCHEDULES = ("1f1b", "interleaved", "zb1p", "dualpipe")  # the event model does not run dualpipev
PP_CHOICES = (4, 8, 16)
NETWORK_LABELS = {"analytic": "closed form (fast)", "flow": "flow by flow (drawn expert loads)"}
PARTS = {  # the analytic breakdown's keys as words
    "compute": "compute",
    "exposed_ep_comm": "exposed expert all-to-all",
    "exposed_pp_comm": "exposed pipeline sends",
    "bubble": "pipeline bubble",
    "exposed_dp_comm": "data-parallel collectives",
    "optimizer": "optimizer",
}
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
OP_NAMES = {
    "F": "forward",
    "B": "backward",
    "W": "weight gradient",
    "FB": "forward & backward pair",
    "dispatch_f": "dispatch (forward)",
    "combine_f": "combine (forward)",
    "dispatch_b": "dispatch (backward)",
    "combine_b": "combine (backward)",
}
# What the Gantt chart draws: (from, to) as fractions of the pipeline. The whole step is ~10,000 bars of a few
# pixels each, unreadable and slow to draw; a window of 15% shows each op.
WINDOWS = {
    "warm-up (first 15%)": (0.0, 0.15),
    "steady state (middle 15%)": (0.425, 0.575),
    "cool-down (last 15%)": (0.85, 1.0),
    "whole step": (0.0, 1.0),
}
PROGRESS_LABELS = {
    "all-to-alls": "Running every MoE layer's dispatch and combine on the fabric",
    "ops": "Simulating the pipeline's ops",
}


def run_options(schedule: str, pp: int, sequences: int) -> dict[str, Any]:
    """The run the page simulates: V3's published set-up with the chosen schedule, depth and batch."""
    return {"pp": pp, "schedule": schedule, "global_batch_tokens": sequences * V3.seq_len}


def simulated(
    schedule: str, pp: int, sequences: int, network: str, expert_cv: float, seed: int
) -> tuple[dict, pd.DataFrame, str, dict[str, float]]:
    """The step's summary, events, Chrome trace JSON and the analytic breakdown; computed once per input
    (shared across sessions), with a progress bar while it runs."""

    def compute() -> tuple[dict, pd.DataFrame, str, dict[str, float]]:
        run = build_run(run_options(schedule, pp, sequences))
        bar = Bar(PROGRESS_LABELS, start="Preparing the step…")
        try:
            sim = simulate(run, None, network, Routing(expert_cv=expert_cv, seed=seed), progress=bar)
        finally:
            bar.clear()
        parts = estimate(run, None, check_memory=False).breakdown
        return sim.to_dict(), sim.timeline.events, json.dumps(to_chrome_trace(sim.timeline)), parts

    return remembered(("timeline", schedule, pp, sequences, network, expert_cv, seed), compute)


def step(seconds: float) -> str:
    """A step time as the Training page shows it: "17.23 s"."""
    return f"{seconds:,.2f} s"


def published_step_s(tokens_per_step: float, gpus: int) -> float:
    """The step V3's published 180K H800 GPU-hours per trillion tokens imply at this batch (V3 report 1)."""
    per_trillion = load_figures()["deepseek_v3"]["training"]["h800_gpu_hours_per_trillion_tokens"]
    return per_trillion * SECONDS_PER_HOUR / 1e12 * tokens_per_step / gpus


def findings(summary: dict, parts: dict[str, float], published_s: float | None) -> str:
    """The page's answer in a sentence: event against analytic step, the published step where the run is
    V3's, and where the step goes (the analytic breakdown's parts, largest first)."""
    text = (
        f"The event model steps this run in **{step(summary['step_time_s'])}**, "
        f"{signed_percent(summary['difference'])} from the analytic model's {step(summary['analytic_step_time_s'])}"
    )
    if published_s is not None:
        gap = signed_percent(summary["step_time_s"] / published_s - 1)
        text += f" (DeepSeek's published GPU-hours imply {step(published_s)} a step: the event step is {gap} from it)"
    total = sum(parts.values())
    ranked = sorted(BREAKDOWN_KEYS, key=lambda k: -parts[k])[:3]
    share = ", ".join(f"{PARTS[k]} {duration(parts[k])} ({parts[k] / total:.0%})" for k in ranked)
    least_idle = min(summary["idle_s"])
    return (
        f"{text}. Where the step goes: {share}; in the event model every rank idles at least "
        f"{duration(least_idle)} of its {duration(summary['pipeline_s'])} pipeline (its bubble)."
    )


def windowed(events: pd.DataFrame, window: str, pipeline_s: float) -> tuple[pd.DataFrame, tuple[float, float]]:
    """The events that overlap the window, and the window in seconds."""
    lo, hi = (f * pipeline_s for f in WINDOWS[window])
    return events[(events["end_s"] > lo) & (events["start_s"] < hi)], (lo, hi)


def gantt(events: pd.DataFrame, x_range: tuple[float, float]) -> go.Figure:
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
                name=OP_NAMES[op],
                marker={"color": color, "line": {"width": 0}},
                customdata=rows[["label", "start_s", "end_s"]].values,
                hovertemplate="%{customdata[0]}<br>%{customdata[1]:.3f} s → %{customdata[2]:.3f} s<extra></extra>",
            )
        )
    used = [lane for lane in order if lane in set(lanes["lane"])]
    fig.update_layout(
        barmode="overlay",
        height=max(300, 22 * len(used)),
        xaxis={"title": "Time in the step (s)", "range": list(x_range)},
        yaxis={"categoryorder": "array", "categoryarray": used[::-1], "title": None},
        legend_title="Op",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def idle_chart(idle_s: list[float]) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(range(len(idle_s))), y=idle_s, marker_color="#d62728"))
    fig.update_layout(
        height=260,
        xaxis_title="Pipeline rank",
        yaxis_title="Idle in the pipeline (s)",
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig


st.title("Pipeline timeline")
answer = st.empty()  # the page's answer, filled once the step is simulated
st.caption(
    "The event simulator's step for DeepSeek-V3's published set-up (2,048 H800s, EP64); the defaults are the "
    "Training page's run (DualPipe, PP16, 15,360 sequences: 120 micro-batches per pipeline). Its ops run in "
    "SimPy on the analytic model's per-stage times."
)

cols = st.columns(6)
with cols[0]:
    schedule = state.selectbox("Schedule", SCHEDULES, key="schedule", default=V3.schedule)
with cols[1]:
    pp = state.selectbox("Pipeline stages", PP_CHOICES, key="pp", default=V3.pp)
with cols[2]:
    sequences = state.number(
        "Global batch (sequences)",
        key="batch",
        default=V3.global_batch_tokens // V3.seq_len,
        min_value=1,
        max_value=1_000_000,
        step=V3.dp,
        help="Sequences per step, split over the data-parallel replicas: micro-batches per pipeline = "
        "batch / (2,048 GPUs / stages). V3's is 15,360.",
    )
with cols[3]:
    network = state.selectbox(
        "Network",
        NETWORKS,
        key="network",
        default=EVENT_DEFAULTS["network"],
        format_func=lambda n: NETWORK_LABELS.get(n, n),
        help="closed form: the analytic per-stage times; flow by flow: each MoE layer's dispatch and combine "
        "drawn from seeded expert loads and run on the fabric (slower: a bar shows the time left).",
    )
with cols[4]:
    expert_cv = state.number(
        "Expert load variation (CV)",
        key="cv",
        default=float(EVENT_DEFAULTS["expert_cv"]),
        min_value=0.0,
        max_value=9.9,
        step=0.1,
        disabled=network != "flow",
        help="Coefficient of variation of expert popularity (0: a balanced router); the flow network only.",
    )
with cols[5]:
    seed = state.number("Seed", key="seed", default=int(EVENT_DEFAULTS["seed"]), min_value=0, max_value=2**31 - 1)

try:
    summary, events, trace_json, parts = simulated(
        schedule, int(pp), int(sequences), network, float(expert_cv) if network == "flow" else 0.0, int(seed)
    )
except ValueError as exc:
    state.fail(exc)

is_v3 = (schedule, pp, sequences) == (V3.schedule, V3.pp, V3.global_batch_tokens // V3.seq_len)
published = published_step_s(V3.global_batch_tokens, V3.gpus) if is_v3 else None
answer.markdown(findings(summary, parts, published))

idle = summary["idle_s"]
busiest = min(range(len(idle)), key=idle.__getitem__)
m = st.columns(4)
m[0].metric("Event step", step(summary["step_time_s"]))
m[1].metric("Analytic step", step(summary["analytic_step_time_s"]))
m[2].metric("Difference", signed_percent(summary["difference"]), help="event step / analytic step − 1")
m[3].metric("Least idle rank", duration(idle[busiest]), help=f"rank {busiest}: its bubble")
st.caption(
    f"Pipeline {duration(summary['pipeline_s'])} + data-parallel collectives and optimizer "
    f"{duration(summary['dp_and_optimizer_s'])} (after the pipeline, not drawn); {summary['ops']:,} ops, "
    f"{summary['events']:,} events; layers per stage {summary['stage_layers']}."
)

st.subheader("Ops per rank")
window = state.selectbox("Draw", tuple(WINDOWS), key="window", default="warm-up (first 15%)")
drawn, x_range = windowed(events, window, summary["pipeline_s"])
st.plotly_chart(gantt(drawn, x_range))
st.caption(
    f"Drawn: {len(drawn):,} of the step's {len(events):,} bars, {duration(x_range[0])} to {duration(x_range[1])} "
    "(the whole step's bars are a few pixels each: pick a window, or open the Chrome trace for all of them). "
    "The comm lane holds each op's expert-parallel dispatch and combine."
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
    state.csv_download(events, "events", label="Download events (CSV, seconds)")

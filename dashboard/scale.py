"""The Training page's "Goodput at scale": the scale study (`simulator.explore.scale`) for the page's run from
1,024 to 131,072 GPUs, as a chart, a table and where failures overtake the network. Formatting only: every
number is `goodput_scale`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from simulator.explore.scale import RESTARTS_S, SCALE_GPUS, crossover_words, crossovers, goodput_scale

STUDY_TOPOLOGY, STUDY_RADIX = "fat-tree-3", 128  # the README's fabric: holds 131,072 GPUs without a taper
NOT_STUDIED = ("gpus", "topology", "oversubscription")  # the study's own axes and fabric, not the page's


def study_restarts_s(restart_s: float) -> tuple[float, ...]:
    """The page's restart time first (its interval is the table's), then the README's 150 s and 600 s."""
    return tuple(dict.fromkeys((float(restart_s), *RESTARTS_S)))


@st.cache_data(max_entries=32, show_spinner=False)
def scale_rows(
    options: tuple[tuple[str, Any], ...],
    profile: str,
    failure_scale: float,
    storage: str,
    restarts_s: tuple[float, ...],
) -> list[dict[str, Any]]:
    """`goodput_scale` for the page's run options (its GPU count, topology and taper left out; cached)."""
    kept = {k: v for k, v in options if k not in NOT_STUDIED}
    return goodput_scale(
        SCALE_GPUS, restarts_s, topology=STUDY_TOPOLOGY, radix=STUDY_RADIX, profile=profile,
        failure_scale=failure_scale, storage=storage, **kept,
    )  # fmt: skip


def scale_frame(rows: Sequence[dict[str, Any]], restarts_s: Sequence[float]) -> pd.DataFrame:
    """The rows as a table, shares as fractions (the page shows them as percent)."""
    frame = pd.DataFrame(
        {
            "GPUs": [r["gpus"] for r in rows],
            "steady days": [r["steady_days"] for r in rows],
            "exposed network (share of a step)": [r["exposed_network_share"] for r in rows],
            "MTBF (h)": [r["mtbf_hours"] for r in rows],
            "interval (min)": [r["interval_min"] for r in rows],
        }
    )
    for restart in restarts_s:
        frame[f"goodput, {restart:g} s restarts"] = [r["goodput"][restart] for r in rows]
    for restart in restarts_s:
        frame[f"failures' share, {restart:g} s"] = [r["failure_share"][restart] for r in rows]
    return frame


def crossover_text(rows: Sequence[dict[str, Any]]) -> str:
    """Where failures overtake the network, per restart time, in words."""
    parts = [
        f"{crossover_words(point, rows[-1]['gpus'])} with {restart:g} s restarts"
        for restart, point in crossovers(rows).items()
    ]
    return "Failures overtake the network (their time against its exposed time over the run) " + "; ".join(parts)


def scale_figure(rows: Sequence[dict[str, Any]], restarts_s: Sequence[float]) -> go.Figure:
    """Goodput per restart time and the network's exposed share against GPUs (log), the crossovers shaded."""
    gpus = [r["gpus"] for r in rows]
    fig = go.Figure()
    for restart in restarts_s:
        fig.add_trace(
            go.Scatter(
                x=gpus, y=[100 * r["goodput"][restart] for r in rows], mode="lines+markers",
                name=f"goodput, {restart:g} s restarts", hovertemplate="%{x:,} GPUs: %{y:.1f}%",
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=gpus, y=[100 * r["exposed_network_share"] for r in rows], mode="lines+markers",
            name="exposed network (share of a step)", line={"dash": "dash", "color": "grey"},
            hovertemplate="%{x:,} GPUs: %{y:.1f}%",
        )
    )  # fmt: skip
    for restart, point in crossovers(rows).items():
        if point is not None:
            below, at = point
            fig.add_vrect(
                x0=below or at, x1=at, fillcolor="red", opacity=0.12, line_width=1,
                annotation_text=f"failures overtake ({restart:g} s)", annotation_position="top left",
            )  # fmt: skip
    fig.update_layout(
        height=340, xaxis_type="log", xaxis_title="GPUs", yaxis_title="percent", yaxis_range=[0, 102],
        margin={"t": 10, "b": 10}, xaxis={"tickvals": gpus, "ticktext": [f"{n:,}" for n in gpus]},
    )  # fmt: skip
    return fig


def show(options: dict[str, Any], profile: str, failure_scale: float, storage: str, restart_s: float) -> None:
    """The section: behind a checkbox (the first study in a process routes fabrics up to 131,072 GPUs)."""
    st.subheader("Goodput at scale")
    restarts = study_restarts_s(restart_s)
    st.caption(
        f"This run's model, node, layout, budget, kernel profile, failures and storage from {SCALE_GPUS[0]:,} to "
        f"{SCALE_GPUS[-1]:,} GPUs on a three-layer fat tree of radix {STUDY_RADIX}, whatever the GPUs and topology "
        "above (a fabric that holds them all), with the published batch where it splits; restarts of "
        f"{', '.join(f'{r:g}' for r in restarts)} s (README: Goodput, Scale; `simulator.explore.scale`)."
    )
    if not state.checkbox("Run the scale study (the first time in a process: about 20 s)", key="scale", default=False):
        return
    try:
        with st.spinner("routing the fabrics up to 131,072 GPUs"):
            rows = scale_rows(tuple(sorted(options.items())), profile, failure_scale, storage, restarts)
    except ValueError as exc:
        st.warning(state.plain(exc))
        return
    st.plotly_chart(scale_figure(rows, restarts), width="stretch")
    st.caption(crossover_text(rows) + ".")
    frame = scale_frame(rows, restarts)
    shares = [c for c in frame.columns if "share" in c or c.startswith("goodput")]
    config = {c: st.column_config.NumberColumn(format="percent") for c in shares}
    st.dataframe(frame, hide_index=True, column_config=config)
    state.csv_download(frame, "goodput-at-scale")

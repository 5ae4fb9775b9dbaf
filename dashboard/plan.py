"""The Training page's "The whole run": a run plan (`simulator.runplan`) as an editable table of phases, priced
by `simulator.analytic.runplan.price_plan` on the page's run, the bill per phase as a stacked bar beside the
published figures. Formatting only."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from simulator.analytic.goodput import Reliability
from simulator.analytic.runplan import price_plan
from simulator.names import CP_COMM_MODES
from simulator.runplan import SHAPE_OPTIONS, load_plan, plan_from_dict
from simulator.schedules import SCHEDULES

LAYOUT = ("tp", "cp", "cp_comm", "pp", "ep", "schedule", "virtual_stages")
COLUMNS = (
    "phase", "tokens (T)", "steps", "seq_len", "batch_sequences", "ramp from (sequences)", "ramp over (B tokens)",
    *LAYOUT, "given GPU-hours (K)", "published GPU-hours (K)", "published group",
)  # fmt: skip


def plan_frame(name: str = "deepseek-v3") -> pd.DataFrame:
    """A built-in plan as the editor's table (blank where a phase leaves a value out)."""
    rows = []
    for p in load_plan(name).phases:
        options = dict(p.options)
        rows.append(
            {
                "phase": p.name,
                "tokens (T)": None if p.tokens is None else p.tokens / 1e12,
                "steps": p.steps,
                "seq_len": p.seq_len,
                "batch_sequences": p.batch_sequences,
                "ramp from (sequences)": None if p.ramp is None else p.ramp.from_sequences,
                "ramp over (B tokens)": None if p.ramp is None else p.ramp.over_tokens / 1e9,
                **{k: options.get(k) for k in LAYOUT},
                "given GPU-hours (K)": None if p.gpu_hours is None else p.gpu_hours / 1e3,
                "published GPU-hours (K)": None if p.published_gpu_hours is None else p.published_gpu_hours / 1e3,
                "published group": p.published_group,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _whole(value: Any) -> Any:
    """A table cell as the plan takes it: a whole float as an int (the editor turns counts into floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def plan_of(frame: pd.DataFrame, run: dict[str, Any]) -> dict[str, Any]:
    """The edited table and the page's run as a plan's data (checked by `plan_from_dict` like a file)."""
    phases = []
    for row in frame.to_dict("records"):
        if not any(_given(v) for v in row.values()):
            continue  # an empty row the editor added
        phase: dict[str, Any] = {"name": str(row["phase"]) if _given(row["phase"]) else ""}
        if _given(row["given GPU-hours (K)"]):
            phase["gpu_hours"] = float(row["given GPU-hours (K)"]) * 1e3
        else:
            if _given(row["tokens (T)"]):
                phase["tokens"] = float(row["tokens (T)"]) * 1e12
            if _given(row["steps"]):
                phase["steps"] = _whole(row["steps"])
            for key in ("seq_len", "batch_sequences"):
                if _given(row[key]):
                    phase[key] = _whole(row[key])
            if _given(row["ramp from (sequences)"]) or _given(row["ramp over (B tokens)"]):
                over = row["ramp over (B tokens)"]
                phase["ramp"] = {
                    "from_sequences": _whole(row["ramp from (sequences)"]),
                    "over_tokens": float(over) * 1e9 if _given(over) else None,
                }
            options = {k: _whole(row[k]) for k in LAYOUT if _given(row[k])}
            if options:
                phase["options"] = options
        if _given(row["published GPU-hours (K)"]):
            phase["published_gpu_hours"] = float(row["published GPU-hours (K)"]) * 1e3
        if _given(row["published group"]):
            phase["published_group"] = str(row["published group"])
        phases.append(phase)
    kept = {k: v for k, v in run.items() if k not in SHAPE_OPTIONS}
    return {"name": "the page's plan", "run": kept, "phase": phases}


def bill_figure(out: dict[str, Any]) -> go.Figure:
    """One bar of v3sim's phases stacked, and one of the published figures (a group as one piece)."""
    fig = go.Figure()
    for p in out["phases"]:
        fig.add_trace(go.Bar(name=p["name"], y=["v3sim"], x=[p["gpu_hours"] / 1e3], orientation="h",
                             hovertemplate="%{x:,.1f} K GPU-hours"))  # fmt: skip
    for name, e in out["published"].items():
        fig.add_trace(go.Bar(name=f"published: {name}", y=["published"], x=[e["published_gpu_hours"] / 1e3],
                             orientation="h", hovertemplate="%{x:,.1f} K GPU-hours"))  # fmt: skip
    fig.update_layout(barmode="stack", height=260, xaxis_title="K GPU-hours", margin={"t": 10, "b": 10})
    return fig


def show(options: dict[str, Any], profile: str, reliability: Reliability | None = None) -> None:
    """The section, behind a checkbox: long-context phases route their own fabrics the first time. With the
    page's failure inputs, the whole run's expected figures beside the steady ones."""
    st.subheader("The whole run")
    st.caption(
        "A run plan: phases one after another, each priced on this page's run with its own sequence, batch "
        "(a ramp is priced step by step) and layout where the table gives one; a phase may be given as "
        "GPU-hours. The table starts from V3's plan (`v3sim train --plan deepseek-v3`; README: Run plans), priced "
        "with this page's kernel profile: pick h800-v3-cutlass for the FP8 GEMMs V3 ran (the CLI's plan does)."
    )
    if not state.checkbox("Price the whole run", key="plan", default=False):
        return
    choices = {  # the layout's named choices as pick-lists, not free text
        "schedule": st.column_config.SelectboxColumn(options=list(SCHEDULES)),
        "cp_comm": st.column_config.SelectboxColumn(options=list(CP_COMM_MODES)),
    }
    frame = st.data_editor(plan_frame(), num_rows="dynamic", hide_index=True, key="plan_table", column_config=choices)
    try:
        out = price_plan(plan_from_dict(plan_of(frame, options), "the table"), profile, reliability)
    except ValueError as exc:
        st.error(f"{state.plain(exc)}: change that cell of the table")
        return
    total = out["total"]
    cols = st.columns(4)
    cols[0].metric("Whole-run GPU-hours", f"{total['gpu_hours'] / 1e3:,.0f}K")
    cols[1].metric("Whole-run cost", f"${total['cost_usd'] / 1e6:,.2f}M")
    cols[2].metric("Whole-run days", f"{total['days']:.1f}")
    if "expected_gpu_hours" in total:
        cols[3].metric(
            "Expected with failures", f"{total['expected_gpu_hours'] / 1e3:,.0f}K",
            help=f"goodput {total['goodput']:.1%}: each phase's expected run with this page's failures, checkpoints "
            "and restarts; phases given as GPU-hours as given",
        )  # fmt: skip
    st.plotly_chart(bill_figure(out), width="stretch")
    words = [f"{name} {e['error']:+.1%}" for name, e in out["published"].items()]
    if "error" in total:
        words.append(f"total {total['error']:+.1%}")
    notes = [f"{p['name']}: {p['note']}" for p in out["phases"] if p["note"]]
    if words or notes:
        st.caption("; ".join((["against the published: " + ", ".join(words)] if words else []) + notes) + ".")
    table = pd.DataFrame(
        {
            "phase": [p["name"] for p in out["phases"]],
            "steps": [p["steps"] for p in out["phases"]],
            "step s": [p["step_time_s"] for p in out["phases"]],
            "GPU-hours": [p["gpu_hours"] for p in out["phases"]],
            "days": [p["days"] for p in out["phases"]],
            "cost $": [p["cost_usd"] for p in out["phases"]],
        }
    )
    st.dataframe(table, hide_index=True)
    state.csv_download(table, "whole-run")

"""The Training page's answer first: one sentence with the run's bill and what dominates its step, the layout
the engine settled on, the published runs of the same model beside v3sim's figure, and which inputs move the
GPU-hours most (a tornado of `simulator.explore.sensitivity`). Formatting only."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import fmt, state
from hwmodels.specs import GPUSpec
from simulator.analytic.training import BREAKDOWN_KEYS
from simulator.explore.sensitivity import sensitivity
from simulator.explore.validate import regime, regime_summary, tolerance, training_run_rows
from simulator.runspec import build_run
from workloads.spec import ModelSpec

PARTS = {
    "compute": "compute",
    "exposed_ep_comm": "exposed expert-parallel all-to-all",
    "exposed_pp_comm": "exposed pipeline sends",
    "bubble": "pipeline bubble",
    "exposed_dp_comm": "data-parallel collectives",
    "optimizer": "optimizer step",
}
SWING = 0.2  # sensitivity's step: each input moved -20% and +20%


def dominant(breakdown: dict[str, float]) -> tuple[str, float]:
    """The largest part of the step other than compute, and its share of the step."""
    step = sum(breakdown.values())
    key = max((k for k in BREAKDOWN_KEYS if k != "compute"), key=lambda k: breakdown[k])
    return key, breakdown[key] / step if step else 0.0


def headline_text(r: dict[str, Any], model_name: str, run: dict[str, Any]) -> str:
    """The page's answer in one sentence, from the report alone."""
    step = r["step_time_s"]
    compute_share = r["breakdown"]["compute"] / step if step else 0.0
    part, share = dominant(r["breakdown"])
    return (
        f"**{model_name}** on {run['gpus']:,} {run['gpu'].upper()} GPUs costs **{r['gpu_hours'] / 1e3:,.0f}K "
        f"GPU-hours** ({fmt.usd(r['cost_usd'])}, {r['days']:,.1f} days) for {run['tokens'] / 1e12:,.3g}T tokens. "
        f"Its {step:,.2f} s step is {compute_share:.0%} compute; the largest overhead is the {PARTS[part]} "
        f"({share:.0%})."
    )


def headline(r: dict[str, Any], spec: ModelSpec, run: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    text = headline_text(r, state.plain(spec.name), run)
    if baseline is not None:
        change = r["gpu_hours"] / baseline["report"]["gpu_hours"] - 1
        text += (
            f" Against the pinned baseline ({state.plain(baseline['name'])}): {fmt.signed_percent(change)} GPU-hours."
        )
    st.markdown(text)


def layout_words(run: dict[str, Any], defaults: list[str]) -> str:
    """The layout the engine priced, in a line, with which inputs were its defaults."""
    seqs = run["global_batch_tokens"] // run["seq_len"]
    auto = [k for k in ("tp", "ep", "zero_stage", "recompute", "precision", "global_batch_tokens") if k in defaults]
    return (
        f"Priced: TP{run['tp']} PP{run['pp']} EP{run['ep']} CP{run['cp']} DP{run['dp']}, ZeRO-{run['zero_stage']}, "
        f"{run['recompute']} recomputation, {run['precision']}, {run['schedule']}"
        + (f" (v={run['virtual_stages']})" if run["schedule"] == "interleaved" else "")
        + f"; batch {seqs:,} sequences of {run['seq_len']:,} tokens"
        + (f"; the engine's choice for {', '.join(fmt.label(a) for a in auto)}" if auto else "")
        + "."
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _published_rows(model: str) -> list[dict[str, Any]]:
    return training_run_rows(model)


def _figure(published: float):
    """How a published figure and v3sim's are shown: a share as a percent, GPU-hours in K, a rate as is."""
    if published < 1:
        return lambda v: f"{v:.1%}"
    if published >= 1e5:
        return lambda v: f"{v / 1e3:,.0f}K"
    return lambda v: f"{v:,.0f}"


@st.cache_data(max_entries=1, show_spinner=False)
def _track_records() -> dict[str, dict[str, Any]]:
    return {str(g["regime"]): g for g in regime_summary(training_run_rows())}


def track_record(spec: ModelSpec, gpu: GPUSpec) -> str:
    """How far v3sim has been off on the published training runs of this run's kind (GPU family, dense or MoE),
    and which way (`v3sim validate`'s table by regime)."""
    kind = regime("training", gpu, spec)
    g = _track_records().get(kind)
    if g is None:
        return f"No published training run of this kind ({kind}) is in `v3sim validate`: nothing yet says how far off."
    return (
        f"On the {g['rows']} published training runs of this kind ({kind}), v3sim's speed against what ran: median "
        f"{fmt.signed_percent(g['median_speed_error'])} ({fmt.signed_percent(g['min_speed_error'])} to "
        f"{fmt.signed_percent(g['max_speed_error'])}), {g['within']} within {tolerance('training_run'):.0%} "
        "(+: v3sim faster than the run)."
    )


def published(run: dict[str, Any], r: dict[str, Any], spec: ModelSpec, gpu: GPUSpec) -> None:
    """The published training runs of this model (`v3sim validate`), each at its own published set-up, and v3sim's
    track record on runs of this kind."""
    rows = _published_rows(str(run["model"]))
    record = track_record(spec, gpu)
    if not rows:
        st.caption(
            f"No published training run of {state.plain(run['model'])} is in `v3sim validate` "
            f"(simulator/data/published_runs.toml); the figures above are predictions only. {record}"
        )
        return
    lines = []
    for row in rows:
        shown = _figure(row["published"])
        lines.append(
            f"{state.plain(row['figure'])}: published {shown(row['published'])}, v3sim {shown(row['predicted'])} "
            f"({fmt.signed_percent(row['rel_error'])}, {'in sample' if row['in_sample'] else 'out of sample'})"
        )
    st.caption(
        "Published runs of this model, each at its own published set-up (`v3sim validate`; kernel-level sources "
        "only, nothing fitted to them unless marked in sample): " + "; ".join(lines) + ". " + record
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _sensitivity(options: tuple[tuple[str, Any], ...], profile: str) -> list[dict[str, Any]]:
    return sensitivity(build_run(dict(options)), profile)


def sensitivity_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "input": [r["input"] for r in rows],
            "-20%": [r["low_change"] for r in rows],
            "+20%": [r["high_change"] for r in rows],
            "low value": [r["low_value"] for r in rows],
            "high value": [r["high_value"] for r in rows],
        }
    )


def sensitivity_chart(options: tuple[tuple[str, Any], ...], profile: str) -> None:
    """A tornado: GPU-hours (cost for the price) with each key input moved -20% and +20%, largest first."""
    st.subheader("What moves the GPU-hours")
    try:
        rows = _sensitivity(options, profile)
    except ValueError as exc:
        st.error(f"The sensitivity could not be priced: {state.plain(exc)}")
        return
    frame = sensitivity_frame(rows)
    top = next((row for row in rows if row["input"] != "price per GPU-hour"), rows[0])  # the price moves cost 1:1
    st.markdown(
        f"Besides the price, the **{top['input']}** moves the bill most: {fmt.signed_percent(top['low_change'])} at "
        f"{top['low_value']}, {fmt.signed_percent(top['high_change'])} at {top['high_value']} "
        f"(each input moved {SWING:.0%} either way, the rest held; `v3sim train --sensitivity`)."
    )
    order = frame["input"][::-1]
    fig = go.Figure(
        [
            go.Bar(name="input -20%", y=order, x=frame["-20%"][::-1], orientation="h",
                   text=frame["low value"][::-1], hovertemplate="%{text}: %{x:+.1%}<extra></extra>"),
            go.Bar(name="input +20%", y=order, x=frame["+20%"][::-1], orientation="h",
                   text=frame["high value"][::-1], hovertemplate="%{text}: %{x:+.1%}<extra></extra>"),
        ]
    )  # fmt: skip
    fig.update_layout(
        barmode="overlay", height=300, xaxis_title="change in GPU-hours (cost, for the price)",
        xaxis_tickformat="+.0%", margin={"t": 10, "b": 10},
    )  # fmt: skip
    st.plotly_chart(fig, width="stretch")


def explanation_frame(explain: list[dict[str, Any]]) -> pd.DataFrame:
    """`v3sim train --explain` as rows a person reads: each headline figure, its formula, and each input's
    value and where it came from."""
    rows = []
    for item in explain:
        figure = fmt.label(str(item["figure"])) if "_" in str(item["figure"]) else str(item["figure"])
        value = item["value"]
        shown = f"{value:,.4g}" if isinstance(value, float) else str(value)
        rows.append({"figure": figure, "value": shown, "formula / input": str(item["formula"]), "source": ""})
        for name, (input_value, source) in item.get("inputs", {}).items():
            v = f"{input_value:,.4g}" if isinstance(input_value, float) else str(input_value)
            rows.append({"figure": "", "value": v, "formula / input": f"  {name}", "source": str(source)})
    return pd.DataFrame(rows)


def explanation(explain: list[dict[str, Any]]) -> None:
    """The headline figures' formulas and inputs, behind an expander (the breakdown above says where time goes)."""
    with st.expander("How these figures are computed (`v3sim train --explain`)"):
        st.dataframe(state.clean_frame(explanation_frame(explain)), hide_index=True, width="stretch")

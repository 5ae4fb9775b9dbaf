"""The Serving page's deployment search: `v3sim serve-search` on the page's model, GPU and step options (or
`--colocated`, one pool per layout), its candidates as a chart with the Pareto frontier and a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from simulator.explore.servesearch import search

SEARCH_SHOWN = 10  # deployments in the search's table (the chart shows them all)


@st.cache_data(show_spinner=False)
def search_numbers(
    model: str,
    gpu: str,
    tpot_ms: float,
    context: int,
    cache_hit: float,
    output_tokens: int | None,
    step: tuple[tuple[str, Any], ...] = (),
    colocated: bool = False,
) -> dict[str, Any]:
    """`v3sim serve-search --json` for these options and the page's step options (`step`: overlap, MTP
    tokens, expert imbalance, expert TP, offload, attention dtype, windowed KV), every candidate kept (a
    ValueError names the fix); `colocated`: `serve-search --colocated`, one pool per layout."""
    report = search(
        model, gpu, tpot_ms=tpot_ms, context=context, cache_hit=cache_hit, output_tokens=output_tokens,
        colocated=colocated, **dict(step),
    )  # fmt: skip
    return report.to_dict()


SEARCH_COLUMNS = [
    "rank",
    "decode layout",
    "batch per GPU",
    "TPOT (ms)",
    "output tokens/s per GPU",
    "output tokens/s per node",
    "tokens/s per user",
    "$ per M output tokens",
    "prefill layout",
    "published",
    "frontier",
]


def _layout(row: dict[str, Any]) -> str:
    return f"EP{row['ep']}+{row['redundant']} / TP{row['tp']}" + (" / MTP" if row["mtp"] else "")


def search_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The search's candidates as a table: layout, batch, TPOT and throughput per GPU, node and user, cost."""
    return pd.DataFrame(
        [
            {
                "rank": r["rank"],
                "decode layout": _layout(r),
                "batch per GPU": r["batch_per_gpu"],
                "TPOT (ms)": r["tpot_s"] * 1e3,
                "output tokens/s per GPU": r["output_tokens_per_s_per_gpu"],
                "output tokens/s per node": r["output_tokens_per_s_per_node"],
                "tokens/s per user": r["output_tokens_per_s_per_user"],
                "$ per M output tokens": r["usd_per_million_output_tokens"],
                "prefill layout": (
                    f"EP{r['prefill_ep']}+{r['prefill_redundant']}"
                    if "prefill_ep" in r
                    else f"co-located, TTFT {r['ttft_s'] * 1e3:,.0f} ms"
                ),
                "published": r["published"],
                "frontier": r["frontier"],
            }
            for r in rows
        ],
        columns=SEARCH_COLUMNS,
    )


def search_chart(found: dict[str, Any]) -> go.Figure:
    """Every candidate (tokens/s per user against output tokens/s per GPU), the Pareto frontier as a line,
    the best and DeepSeek's published deployment marked."""
    frame = search_frame(found["ranked"])
    frame["family"] = [f"TP{r['tp']}" + (" + MTP" if r["mtp"] else "") for r in found["ranked"]]
    x, y = "output tokens/s per GPU", "tokens/s per user"
    fig = px.scatter(frame, x=x, y=y, color="family", hover_data=["rank", "decode layout", "$ per M output tokens"])
    front = search_frame(found["frontier"])
    fig.add_scatter(x=front[x], y=front[y], mode="lines", name="Pareto frontier", line={"color": "black"})
    marks = [(found["ranked"][0], "best found", "circle-open")]
    if found["published"] is not None:
        marks.append((found["published"], "DeepSeek published (EP144+32)", "star"))
    for row, label, symbol in marks:
        fig.add_scatter(
            x=[row["output_tokens_per_s_per_gpu"]],
            y=[row["output_tokens_per_s_per_user"]],
            mode="markers",
            name=label,
            marker={"symbol": symbol, "size": 16, "line": {"width": 2}},
        )
    fig.update_layout(title="Deployment search: every candidate at the TPOT target")
    return fig


def show(
    model: str,
    gpu: str,
    context: int,
    cache_hit: float,
    output: int | None,
    step: tuple[tuple[str, Any], ...],
    colocated: bool,
    unit: str,
) -> None:
    """The section: its TPOT target, the chart, the top of the ranking and every candidate as CSV."""
    st.subheader("Deployment search")
    st.caption(
        "`v3sim serve-search`: every decode layout (EP to 320 with its redundant slots, attention TP, MTP) at the "
        "largest batch meeting the TPOT target, with the prefill layout of most input tokens per GPU; ranked by "
        "$ per million output tokens. The step options above (overlap, MTP tokens, imbalance, expert TP, offload, "
        "attention dtype) apply to every candidate."
    )
    tpot_target = state.number(
        "TPOT target (ms)", key="search_tpot", default=50.0, min_value=1.0, max_value=10_000.0, step=5.0
    )
    try:
        found = search_numbers(model, gpu, float(tpot_target), context, cache_hit, output, step, colocated)
    except ValueError as exc:
        st.error(state.plain(exc))
        return
    st.plotly_chart(search_chart(found), width="stretch")
    ranked, published = found["ranked"], found["published"]
    listed = [*ranked[:SEARCH_SHOWN], *([published] if published and published["rank"] > SEARCH_SHOWN else [])]
    top = search_frame(listed).rename(columns={"output tokens/s per node": f"output tokens/s per {unit}"})
    kind = "co-located" if colocated else "decode"
    tried = f"{found['tried']} {kind} layouts tried in {found['search_s'] * 1e3:.0f} ms; {len(ranked)} meet the target"
    if published is not None:
        gain = published["usd_per_million_output_tokens"] / ranked[0]["usd_per_million_output_tokens"]
        tried += f"; the best is {gain:.2f}x cheaper per output token than DeepSeek's published deployment"
    st.caption(tried)
    st.dataframe(top, hide_index=True, width="stretch")
    state.csv_download(search_frame(ranked), "serving-deployment-search", label="Download every candidate (CSV)")

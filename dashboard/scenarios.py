"""Scenarios on the Training page: pin a run as the baseline, change anything, and see the delta on every
metric; up to four pinned runs side by side; a run saved as, or opened from, a run-spec TOML file that
`v3sim train --spec FILE` reads (`simulator.runspecfile`). Pins live in the browser session, not the URL."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import fmt, state
from simulator.presets import node_for
from simulator.runspecfile import load_spec_text, spec_toml
from workloads.spec import ModelSpec

MAX_SCENARIOS = 4
MAX_TOML_BYTES = 64 << 10  # a run file is a few hundred bytes
KEY = "scenarios"
# (label, how to read the metric from a report, shown as, lower is better)
METRICS = (
    ("GPU-hours", lambda r: r["gpu_hours"], lambda v: f"{v / 1e3:,.0f}K", True),
    ("Cost", lambda r: r["cost_usd"], fmt.usd, True),
    ("Days", lambda r: r["days"], lambda v: f"{v:,.1f}", True),
    ("Step time", lambda r: r["step_time_s"], fmt.duration, True),
    ("MFU (bf16 peak)", lambda r: r["mfu"]["bf16"], lambda v: f"{v:.1%}", False),
    ("Tokens/s per GPU", lambda r: r["tokens_per_s_per_gpu"], lambda v: f"{v:,.0f}", False),
    ("Memory per GPU", lambda r: r["memory_per_gpu_bytes"]["total"], fmt.gb, True),
)
DELTA_KEYS = {
    "GPU-hours": "gpu_hours",
    "Cost": "cost_usd",
    "Days": "days",
    "Step time": "step_time_s",
    "MFU (bf16 peak)": "mfu",
}
# A run option and the page's URL key; `to_url` turns the option's value into the widget's.
URL_KEYS: dict[str, tuple[str, Any]] = {
    "model": ("model", str),
    "node": ("node", str),
    "gpus": ("gpus", int),
    "topology": ("topology", str),
    "oversubscription": ("over", float),
    "tp": ("tp", int),
    "pp": ("pp", int),
    "ep": ("ep", int),
    "cp": ("cp", int),
    "cp_comm": ("cpcomm", str),
    "cuda_graphs": ("graphs", str),
    "fp8_recipe": ("fp8recipe", str),
    "schedule": ("schedule", str),
    "virtual_stages": ("vs", int),
    "micro_batch": ("mb", int),
    "zero_stage": ("zero", int),
    "recompute": ("recompute", str),
    "precision": ("precision", str),
    "seq_len": ("seq", int),
    "tokens": ("tokens", lambda v: float(v) / 1e12),
    "price_per_gpu_hour": ("price", float),
}
PAGE_KEYS = (*(k for k, _ in URL_KEYS.values()), "batch")


def pinned() -> list[dict[str, Any]]:
    return st.session_state.setdefault(KEY, [])


def baseline() -> dict[str, Any] | None:
    """The first pinned scenario: what the page's metrics are compared with."""
    runs = pinned()
    return runs[0] if runs else None


def deltas(r: dict[str, Any], base: dict[str, Any] | None) -> dict[str, str]:
    """st.metric deltas against the baseline, by report key ("+4.2%")."""
    if base is None:
        return {}
    out = {}
    for label, read, _, _ in METRICS:
        if label in DELTA_KEYS:
            before = read(base["report"])
            out[DELTA_KEYS[label]] = fmt.signed_percent(read(r) / before - 1) if before else "-"
    return out


def comparison(runs: list[dict[str, Any]], current: dict[str, Any]) -> pd.DataFrame:
    """Metrics of each pinned run and this one side by side, with each one's change against the baseline."""
    columns = [*runs, {"name": "this run", "report": current}]
    table: dict[str, list[str]] = {"metric": [label for label, *_ in METRICS]}
    for col in columns:
        values = []
        for _, read, shown, _ in METRICS:
            value = read(col["report"])
            text = shown(value)
            if runs and col is not runs[0]:
                before = read(runs[0]["report"])
                text += f" ({fmt.signed_percent(value / before - 1)})" if before else ""
            values.append(text)
        table[str(col["name"])] = values
    return pd.DataFrame(table)


def differences(base: dict[str, Any], other: dict[str, Any]) -> str:
    """The inputs in which `other` differs from `base`, as "PP 16 → 32"."""

    def shown(options: dict[str, Any], name: str) -> object:
        value = options.get(name, "auto")
        return value.name if isinstance(value, ModelSpec) else value

    names = sorted(set(base) | set(other))
    changed = [f"{fmt.label(n)} {shown(base, n)} → {shown(other, n)}" for n in names if base.get(n) != other.get(n)]
    return ", ".join(changed) or "no input changed"


def _file_options(options: dict[str, Any]) -> dict[str, Any] | None:
    """The options as a run file holds them, or None for an uploaded model (a file can name only a slug or a
    config.json path)."""
    if isinstance(options.get("model"), ModelSpec):
        return None
    return dict(options)


def _apply(options: dict[str, Any]) -> list[str]:
    """Put a run file's options into the page's URL and forget the widgets' values, so the rerun draws them;
    returns the options the page has no widget for."""
    for key in PAGE_KEYS:
        st.session_state.pop(key, None)
        if key in st.query_params:
            del st.query_params[key]
    opts = dict(options)
    if "gpu" in opts:
        opts["node"] = node_for(gpu=opts.pop("gpu")).name
    for field, value in opts.items():
        if field in URL_KEYS:
            url_key, to_url = URL_KEYS[field]
            st.query_params[url_key] = str(to_url(value))
    seq = int(opts.get("seq_len", 4096))
    if "global_batch_tokens" in opts and int(opts["global_batch_tokens"]) % seq == 0:
        st.query_params["batch"] = str(int(opts["global_batch_tokens"]) // seq)
    left = [f for f in opts if f not in URL_KEYS and f not in ("global_batch_tokens",)]
    if "global_batch_tokens" in opts and int(opts["global_batch_tokens"]) % seq:
        left.append("global_batch_tokens (not whole sequences)")
    return left


def show(options: dict[str, Any], r: dict[str, Any], profile: str) -> None:
    """The section: pin, compare, save and open runs."""
    st.subheader("Scenarios")
    runs = pinned()
    left, right = st.columns([2, 1])
    with left:
        name = st.text_input(
            "Name of this run", value=f"Scenario {chr(ord('A') + len(runs))}", max_chars=40, key="scenario_name"
        )
        pin, clear = st.columns(2)
        if pin.button("Pin this run", disabled=len(runs) >= MAX_SCENARIOS, key="pin",
                      help=f"the first pinned run is the baseline; at most {MAX_SCENARIOS}"):  # fmt: skip
            runs.append({"name": state.plain(name, 40) or f"Scenario {len(runs) + 1}", "options": dict(options),
                         "report": r, "profile": profile})  # fmt: skip
            st.rerun()
        if clear.button("Clear the pins", disabled=not runs, key="unpin"):
            runs.clear()
            st.rerun()
    with right:
        data = _file_options(options)
        if data is None:
            st.caption("An uploaded model cannot be written into a run file: save its config.json and set "
                       "model = \"path/to/config.json\" in the file.")  # fmt: skip
        else:
            st.download_button("Save this run (TOML)", spec_toml(data).encode(), file_name="run.toml",
                               mime="application/toml", key="save_spec",
                               help="`v3sim train --spec run.toml` runs it; Open brings it back here")  # fmt: skip
        opened = st.file_uploader("Open a run (TOML)", type="toml", key="open_spec", max_upload_size=1)
    if opened is not None:
        raw = opened.getvalue()
        digest = hashlib.sha256(raw).hexdigest()
        if st.session_state.get("_opened_spec") != digest:
            st.session_state["_opened_spec"] = digest
            try:
                if len(raw) > MAX_TOML_BYTES:
                    raise ValueError(f"the file is {len(raw):,} bytes; a run file is a few hundred")
                opts = load_spec_text(raw.decode("utf-8"), "the opened file")
                if not isinstance(opts.get("model", "deepseek-v3"), str) or str(opts.get("model", "")).endswith(
                    ".json"
                ):
                    raise ValueError("it names a config.json: upload that file in the sidebar instead")
                st.session_state["_opened_left"] = _apply(opts)
            except (ValueError, UnicodeDecodeError) as exc:
                st.error(f"Could not open that run file: {state.plain(exc)}. Save one with the button beside it.")
                return
            st.rerun()
    left_out = st.session_state.get("_opened_left")
    if left_out:
        st.warning(f"The opened file also sets {', '.join(left_out)}, which this page has no widget for: "
                   "`v3sim train --spec` runs them.")  # fmt: skip
    if not runs:
        st.caption("Pin this run to make it the baseline: every metric above then shows its change against it.")
        return
    st.dataframe(comparison(runs, r), hide_index=True)
    base = runs[0]
    for other in [*runs[1:], {"name": "this run", "options": options}]:
        st.caption(f"{state.plain(other['name'])} vs {state.plain(base['name'])}: "
                   f"{state.plain(differences(base['options'], other['options']))}")  # fmt: skip

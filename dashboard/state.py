"""Widgets whose values live in the URL query string, so that a view can be shared as a link.

Each widget reads its first value from `?key=value` (a bad or unknown value falls back to the default) and
writes its current value back, so the address bar always holds the whole view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st


def _initial(key: str, default: Any, cast: Callable[[str], Any]) -> Any:
    raw = st.query_params.get(key)
    if raw is None:
        return default
    try:
        return cast(raw)
    except (TypeError, ValueError):
        return default


def _remember(key: str, value: Any) -> None:
    st.query_params[key] = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def selectbox(label: str, options: Sequence[Any], key: str, default: Any, **kwargs: Any) -> Any:
    """A selectbox whose choice is `?key=`."""
    options = list(options)
    value = _initial(key, default, type(default) if default is not None else str)
    if value not in options:
        value = default if default in options else options[0]
    out = st.selectbox(label, options, index=options.index(value), key=key, **kwargs)
    _remember(key, out)
    return out


def multiselect(label: str, options: Sequence[str], key: str, default: Sequence[str], **kwargs: Any) -> list[str]:
    """A multiselect whose choices are `?key=a,b,c`."""
    chosen = _initial(key, list(default), lambda raw: [v for v in raw.split(",") if v])
    chosen = [v for v in chosen if v in options] or list(default)
    out = st.multiselect(label, list(options), default=chosen, key=key, **kwargs)
    _remember(key, out)
    return out


def number(label: str, key: str, default: int | float, **kwargs: Any) -> int | float:
    """A number input whose value is `?key=`; integer when the default is."""
    cast = int if isinstance(default, int) else float
    value = _initial(key, default, cast)
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        value = default
    out = st.number_input(label, value=value, key=key, **kwargs)
    _remember(key, out)
    return out


def checkbox(label: str, key: str, default: bool, **kwargs: Any) -> bool:
    """A checkbox whose state is `?key=true|false`."""
    value = _initial(key, default, lambda raw: {"true": True, "false": False}[raw.lower()])
    out = st.checkbox(label, value=value, key=key, **kwargs)
    _remember(key, "true" if out else "false")
    return out


def csv_download(frame: pd.DataFrame, name: str, label: str = "Download CSV") -> None:
    """A button that downloads `frame` as `name`.csv."""
    st.download_button(label, frame.to_csv(index=False).encode(), file_name=f"{name}.csv", mime="text/csv", key=name)


def fail(exc: Exception) -> None:
    """Show a model's one-line error (it names the fix) and stop the page."""
    st.error(f"{exc}")
    st.stop()

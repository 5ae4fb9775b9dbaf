"""Widgets whose values live in the URL query string, so that a view can be shared as a link.

Each widget reads its first value from `?key=value` and writes its current value back, so the address bar
always holds the whole view. A URL is anyone's to write, so it is read strictly: a value that is too long,
not a finite number, outside the widget's range, or not one of its choices falls back to the widget's
default with a visible note naming the parameter and the value used, never an exception or a silent guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from hwmodels.files import clean_text

MAX_URL_CHARS = 200  # longest URL value read: a number or a few choices; a longer one is refused
SHOWN_CHARS = 40  # how much of a refused value a note shows
_INTEGER = re.compile(r"[+-]?\d{1,18}")  # 18 digits: past every widget's max_value, and int() stays cheap
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?")
# Markdown that could make a shown text a link, an image, HTML, LaTeX or a format: escaped with a backslash.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>$~|#])")
# Streamlit's markdown links bare URLs and e-mail addresses even when escaped: a zero-width space breaks them.
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)")


def plain(text: object, max_chars: int = 500) -> str:
    """`text` for st.error/warning/caption/markdown: one line, no control characters, at most `max_chars`,
    markdown shown as typed (a URL value or a name from a file cannot become a link, an image or a format;
    a zero-width space keeps a bare URL or e-mail address from becoming a link)."""
    cleaned = _MARKDOWN.sub(r"\\\1", clean_text(text, max_chars))
    return _AUTOLINK.sub("\u200b", cleaned)


def clean_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell through clean_text (names from files: no control or bidi characters)."""
    out = frame.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(lambda v: clean_text(v) if isinstance(v, str) else v)
    return out


def _note(key: str, raw: str, why: str, used: object) -> None:
    """Say that `?key=raw` was not used, why, and what the widget shows instead."""
    shown = plain(raw, SHOWN_CHARS) if raw.strip() else "(empty)"
    st.warning(f"Ignored ?{key}={shown} from the URL: {why}; using {plain(used, 200)}.")


def _raw(key: str) -> str | None:
    """The URL's value for `key` (the last one if repeated), or None."""
    return st.query_params.get(key)


def _too_long(key: str, raw: str, default: object, limit: int = MAX_URL_CHARS) -> bool:
    if len(raw) <= limit:
        return False
    _note(key, raw, f"longer than {limit} characters", default)
    return True


def _remember(key: str, value: Any) -> None:
    st.query_params[key] = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def selectbox(label: str, options: Sequence[Any], key: str, default: Any, **kwargs: Any) -> Any:
    """A selectbox whose choice is `?key=` (matched against each option as text)."""
    options = list(options)
    value = default if default in options else options[0]
    raw = _raw(key)
    if raw is not None and not _too_long(key, raw, value):
        by_text = {str(o): o for o in options}
        if raw.strip() in by_text:
            value = by_text[raw.strip()]
        else:
            _note(key, raw, "not one of this widget's choices", value)
    out = st.selectbox(label, options, index=options.index(value), key=key, **kwargs)
    _remember(key, out)
    return out


def multiselect(label: str, options: Sequence[str], key: str, default: Sequence[str], **kwargs: Any) -> list[str]:
    """A multiselect whose choices are `?key=a,b,c` (`?key=` is an empty selection). Every choice at once is
    read back, however long (the page writes it so): the limit is the longer of MAX_URL_CHARS and that."""
    options = list(options)
    chosen = list(default)
    raw = _raw(key)
    limit = max(MAX_URL_CHARS, len(",".join(options)))
    if raw is not None and not _too_long(key, raw, ",".join(chosen), limit):
        asked = list(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
        known = [v for v in asked if v in options]
        unknown = [v for v in asked if v not in options]
        if unknown and not known:
            _note(key, raw, "none of it is one of this widget's choices", ",".join(chosen))
        else:
            if unknown:
                _note(key, ",".join(unknown), "not among this widget's choices", ",".join(known))
            chosen = known
    out = st.multiselect(label, options, default=chosen, key=key, **kwargs)
    _remember(key, out)
    return out


def _parse_number(raw: str, integer: bool) -> tuple[int | float | None, str]:
    """(the number `raw` writes, "") or (None, why it is not one)."""
    text = raw.strip()
    if integer:
        return (int(text), "") if _INTEGER.fullmatch(text) else (None, "not a whole number")
    if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return None, "not a finite number"
    if not _DECIMAL.fullmatch(text):
        return None, "not a number"
    value = float(text)
    return (value, "") if math.isfinite(value) else (None, "not a finite number")


def number(
    label: str,
    key: str,
    default: int | float,
    *,
    min_value: int | float,
    max_value: int | float,
    **kwargs: Any,
) -> int | float:
    """A number input whose value is `?key=`; integer when the default is. Both bounds are required, so no
    URL (or typing) can send the models a value past what they are meant for."""
    integer = isinstance(default, int)
    value = default
    raw = _raw(key)
    if raw is not None and not _too_long(key, raw, default):
        parsed, why = _parse_number(raw, integer)
        if parsed is None:
            _note(key, raw, why, default)
        elif not min_value <= parsed <= max_value:
            _note(key, raw, f"outside {min_value:,} to {max_value:,}", default)
        else:
            value = parsed
    out = st.number_input(label, value=value, min_value=min_value, max_value=max_value, key=key, **kwargs)
    _remember(key, out)
    return out


def checkbox(label: str, key: str, default: bool, **kwargs: Any) -> bool:
    """A checkbox whose state is `?key=true|false`."""
    value = default
    raw = _raw(key)
    if raw is not None and not _too_long(key, raw, str(default).lower()):
        if raw.strip().lower() in ("true", "false"):
            value = raw.strip().lower() == "true"
        else:
            _note(key, raw, "not true or false", str(default).lower())
    out = st.checkbox(label, value=value, key=key, **kwargs)
    _remember(key, "true" if out else "false")
    return out


def csv_download(frame: pd.DataFrame, name: str, label: str = "Download CSV") -> None:
    """A button that downloads `frame` as `name`.csv."""
    st.download_button(label, frame.to_csv(index=False).encode(), file_name=f"{name}.csv", mime="text/csv", key=name)


def fail(exc: Exception) -> None:
    """Show a model's one-line error (it names the fix) and stop the page."""
    st.error(plain(exc))
    st.stop()


def forget_when_changed(name: str, value: object, dependents: Sequence[str]) -> None:
    """When `value` (a widget's, e.g. the model) differs from the last run's, drop the `dependents` widgets'
    values and URL keys, so they start again at the defaults that fit the new choice (EP 64 is V3's, not
    Llama's). Call it after the widget that sets `value` and before the dependents are drawn."""
    memo = f"_last_{name}"
    last = st.session_state.get(memo)
    if last is not None and last != value:
        for key in dependents:
            st.session_state.pop(key, None)
            if key in st.query_params:
                del st.query_params[key]
    st.session_state[memo] = value

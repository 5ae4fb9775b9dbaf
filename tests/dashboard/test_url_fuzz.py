"""Every page under random URLs: random query strings made of the page's own parameters (found by running it)
and junk keys, with values that are text, NaN, infinities, huge, negative or empty. No exception; every number
shown is finite; and a value no widget can take falls back to its default with a note naming the parameter."""

from __future__ import annotations

import math
import re
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import PAGES
from tests.dashboard.apptest import open_view

# Values that no widget on any page accepts (every numeric widget's minimum is >= 0, no choice looks like these).
REFUSED = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "-1",
    "-7.5",
    "9" * 25,
    "1" * 300,
    "abc",
    "[x](http://evil.example)",
    "<script>alert(1)</script>",
    "$x$",
]
ODD = ["", " ", "0", "1", "1.5", "true", "1e3", "0x10", "１２", "%00", "a,b,,", ",", "\u202e", "\x1b[2J"]
NOT_FINITE = re.compile(r"(?i)\b(nan|inf|infinity)\b")


@cache
def parameters(file: str) -> dict[str, str]:
    """The page's own URL parameters and the values it writes for its defaults."""
    at = open_view(file)
    assert not at.exception
    return {key: str(at.query_params[key]) for key in at.query_params}


def values(defaults: dict[str, str]) -> st.SearchStrategy[str]:
    return (
        st.sampled_from(REFUSED)
        | st.sampled_from(ODD)
        | st.sampled_from(sorted(set(defaults.values())))
        | st.integers(-(10**30), 10**30).map(str)
        | st.floats().map(str)
        | st.text(max_size=20)
    )


@pytest.mark.parametrize("file", [file for file, *_ in PAGES])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_urls_render_finite_numbers_or_a_note(file, data):
    own = parameters(file)
    junk_keys = st.sampled_from(["embed_options", "x", "page", "__proto__", "models[]"]) | st.text(
        "abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=8
    )
    query = data.draw(st.dictionaries(st.sampled_from(sorted(own)) | junk_keys, values(own), max_size=6))
    at = open_view(file, **query)
    assert not at.exception, at.exception
    for metric in at.metric:
        assert not NOT_FINITE.search(metric.value), (metric.label, metric.value)
    for box in at.number_input:
        assert math.isfinite(box.value), (box.key, box.value)
    notes = " ".join(w.value for w in at.warning)
    for key, value in query.items():
        if key in own and value in REFUSED:
            assert f"?{key}=" in notes, f"?{key}={value} was ignored without a note"
            assert str(at.query_params[key]) not in REFUSED  # the address holds what the page shows


@pytest.mark.parametrize("file", [file for file, *_ in PAGES])
def test_every_number_input_is_bounded(file):
    at = open_view(file)
    for box in at.number_input:
        assert box.min is not None and box.max is not None, box.key
        assert box.min <= box.value <= box.max <= 2**53, box.key  # a JavaScript number holds it exactly

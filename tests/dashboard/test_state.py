"""dashboard/state.py: URL values are read strictly. A value too long, not a finite number, out of the widget's
range or not one of its choices falls back to the default with a visible note naming the parameter and the value
used; text shown from a URL or a file cannot become a link, an image or a terminal escape."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.state import clean_frame, plain


def widgets() -> None:
    """One widget of each kind, with the bounds and choices the tests below use."""
    from dashboard import state

    state.number("N", key="n", default=5, min_value=1, max_value=10)
    state.number("F", key="f", default=0.5, min_value=0.0, max_value=1.0)
    state.selectbox("S", ["a", "b"], key="s", default="a")
    state.selectbox("P", [4, 8, 16], key="p", default=16)
    state.multiselect("M", ["x", "y", "z"], key="m", default=["x"])
    state.checkbox("C", key="c", default=False)
    state.multiselect("L", [f"choice-{i:02d}" for i in range(30)], key="l", default=["choice-00"])


def run(**query: str) -> AppTest:
    at = AppTest.from_function(widgets, default_timeout=30)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def value(at: AppTest, key: str):
    return at.session_state[key]


def notes(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_no_url_no_notes_and_the_url_gets_every_default():
    at = run()
    assert not at.exception and not notes(at)
    assert {k: at.query_params[k] for k in "nfspmc"} == {
        "n": "5",
        "f": "0.5",
        "s": "a",
        "p": "16",
        "m": "x",
        "c": "false",
    }


@pytest.mark.parametrize(
    ("key", "raw", "want"),
    [
        ("n", "7", 7),
        ("n", " 7 ", 7),
        ("n", "+10", 10),
        ("f", "0.25", 0.25),
        ("f", "1e-1", 0.1),
        ("f", ".5", 0.5),
        ("s", "b", "b"),
        ("p", "8", 8),
        ("m", "y,z", ["y", "z"]),
        ("m", "z,z", ["z"]),
        ("m", "", []),  # an empty selection, as the page wrote it
        ("c", "true", True),
        ("c", "FALSE", False),
    ],
)
def test_good_values_are_used_without_a_note(key, raw, want):
    at = run(**{key: raw})
    assert not at.exception and not notes(at)
    assert value(at, key) == want


@pytest.mark.parametrize(
    ("key", "raw", "why", "used"),
    [
        ("n", "abc", "not a whole number", "5"),
        ("n", "", "not a whole number", "5"),
        ("n", "7.0", "not a whole number", "5"),
        ("n", "1e3", "not a whole number", "5"),
        ("n", "1_0", "not a whole number", "5"),
        ("n", "9" * 25, "not a whole number", "5"),
        ("n", "11", "outside 1 to 10", "5"),
        ("n", "0", "outside 1 to 10", "5"),
        ("n", "-3", "outside 1 to 10", "5"),
        ("n", "7" * 300, "longer than 200 characters", "5"),
        ("f", "nan", "not a finite number", "0.5"),
        ("f", "-Infinity", "not a finite number", "0.5"),
        ("f", "inf", "not a finite number", "0.5"),
        ("f", "1e400", "not a finite number", "0.5"),
        ("f", "0x1p-2", "not a number", "0.5"),
        ("f", "1.5", "outside 0.0 to 1.0", "0.5"),
        ("s", "c", "not one of this widget's choices", "a"),
        ("s", "", "not one of this widget's choices", "a"),
        ("p", "08", "not one of this widget's choices", "16"),
        ("p", "8.0", "not one of this widget's choices", "16"),
        ("m", "q,w", "none of it is one of this widget's choices", "x"),
        ("m", "y,q", "not among this widget's choices", "y"),
        ("c", "yes", "not true or false", "false"),
    ],
)
def test_bad_values_fall_back_with_a_note_naming_the_parameter_and_the_value_used(key, raw, why, used):
    at = run(**{key: raw})
    assert not at.exception
    assert len(notes(at)) == 1
    note = notes(at)[0]
    assert note.startswith(f"Ignored ?{key}=") and why in note and note.endswith(f"; using {used}.")
    assert str(at.query_params[key]) == used  # the address now holds what the page shows
    assert not notes(at.run())  # said once: the corrected URL needs no note


def test_every_choice_of_a_long_multiselect_is_read_back():
    """The page writes every choice as one value (30 choices: 299 characters, past the 200 a value may have):
    the same URL must read back whole, and anything longer still falls back."""
    every = ",".join(f"choice-{i:02d}" for i in range(30))
    at = run(l=every)
    assert not at.exception and not notes(at) and value(at, "l") == every.split(",")
    at = run(l=every + ",choice-00")
    assert "longer than 299 characters" in notes(at)[0] and value(at, "l") == ["choice-00"]


def test_the_fallback_is_the_widgets_own_value_not_a_guess():
    at = run(n="nan", f="nan", s="zz", p="3", m="q", c="2")
    assert not at.exception and len(notes(at)) == 6
    assert [value(at, k) for k in "nfspmc"] == [5, 0.5, "a", 16, ["x"], False]


def test_a_note_shows_a_hostile_value_as_text():
    at = run(s="![x](http://evil.example/p.png)<img src=x>$\\frac{1}{2}$\x1b[31m")
    note = notes(at)[0]
    assert not re.search(r"(?<!\\)[\[\]<>$`]", note)  # every markdown character escaped
    assert "://" not in note and "\x1b" not in note
    assert note.startswith("Ignored ?s=!\\[x\\](http:\u200b//evil.example/p.png)\\<img")
    assert note.count("\n") == 0


def test_plain_escapes_markdown_and_drops_control_characters():
    assert (
        plain("a_b*c*`d` [e](f) <g> $h$ ~i~ |j| #k")
        == "a\\_b\\*c\\*\\`d\\` \\[e\\](f) \\<g\\> \\$h\\$ \\~i\\~ \\|j\\| \\#k"
    )
    zw = "\u200b"  # Streamlit links a bare URL even with its punctuation escaped; a zero-width space stops it
    assert plain("see www.evil.example, https://evil.example, me@evil.example") == (
        f"see www{zw}.evil.example, https:{zw}//evil.example, me@{zw}evil.example"
    )
    assert plain("line one\nline two\u202e\x1b[2J") == "line oneline two\\[2J"
    assert len(plain("x" * 10_000)) <= 500


def test_clean_frame_cleans_every_text_cell_and_keeps_numbers():
    frame = pd.DataFrame({"name": ["ok", "evil\x1b[2J\u202eman"], "n": [1.5, 2.0]})
    out = clean_frame(frame)
    assert out["name"].tolist() == ["ok", "evil[2Jman"]
    assert out["n"].tolist() == [1.5, 2.0]
    assert frame["name"].iloc[1].startswith("evil\x1b")  # the input is left as it was

"""The sweep constraint language (simulator/expr.py): what it computes, checked against plain numpy, and what
it refuses — the code-execution and file-writing attempts that pandas' `DataFrame.eval` ran are regression
tests here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import expr
from simulator.sweep import run_sweep
from simulator.sweepspec import sweep_from_dict

FRAME = pd.DataFrame(
    {
        "pp": [8, 16, 32, 16],
        "ep": [64, 64, 8, 32],
        "gpus": [2048, 2048, 2048, 1024],
        "oversubscription": [1.0, 2.5, 1.0, 3.0],
        "schedule": ["dualpipe", "1f1b", "dualpipe", "zb1p"],
        "gpu": [None, "h800", None, "h100"],
    }
)
PP, EP, GPUS, OVER = (FRAME[c].to_numpy(float) for c in ("pp", "ep", "gpus", "oversubscription"))
SCHEDULE = FRAME["schedule"].to_numpy(object)


def run(text: str) -> np.ndarray:
    return expr.evaluate(expr.parse(text, FRAME.columns), expr.columns_of(FRAME), len(FRAME), text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pp * ep <= gpus", PP * EP <= GPUS),
        ("gpus % pp == 0 and ep >= 16", (GPUS % PP == 0) & (EP >= 16)),
        ("pp > 8 or oversubscription > 2", (PP > 8) | (OVER > 2)),
        ("not pp == 16", ~(PP == 16)),
        ("(pp > 8) & ~(ep == 8)", (PP > 8) & ~(EP == 8)),
        ('schedule == "dualpipe"', SCHEDULE == "dualpipe"),
        ('schedule in ["1f1b", "zb1p"]', np.isin(SCHEDULE, ["1f1b", "zb1p"])),
        ('schedule not in ("1f1b",)', SCHEDULE != "1f1b"),
        ("pp in [8, 32]", np.isin(PP, [8, 32])),
        ("8 < pp < 32", (PP > 8) & (PP < 32)),
        ("min(pp, ep) >= 16", np.minimum(PP, EP) >= 16),
        ("max(pp, ep, 40) == 64", np.maximum.reduce([PP, EP, np.full(4, 40.0)]) == 64),
        ("log2(pp) == floor(log2(pp))", np.log2(PP) == np.floor(np.log2(PP))),
        ("sqrt(gpus) > 40", np.sqrt(GPUS) > 40),
        ("abs(pp - ep) // 8 >= 4", np.abs(PP - EP) // 8 >= 4),
        ("pp ** 2 > ep", PP**2 > EP),
        ('gpu == "h800"', np.array([False, True, False, False])),
        ("True", np.ones(4, bool)),
    ],
)
def test_allowed_expressions_match_numpy(text, expected):
    assert run(text).tolist() == np.asarray(expected).tolist()


def test_numbers_cannot_hang_or_overflow_into_errors():
    """Python would fold 9**9**9 into a huge integer for minutes; float64 makes it inf at once."""
    assert run("9 ** 9 ** 9 > pp").all()
    assert run("pp / 0 > 1").all()  # inf
    assert not run("(pp - pp) / 0 > 1").any()  # NaN compares false: the point fails


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pp > 0 and @pd.io.common.os.system('touch /tmp/v3sim-pwned') == 0", "is not an expression"),
        ("pp.to_csv('/tmp/v3sim-pwned')", "the call"),
        ("__import__('os').system('touch /tmp/v3sim-pwned')", "not allowed"),
        ("open('/tmp/v3sim-pwned', 'w')", "the call"),
        ("pp.__class__", "attribute"),
        ("pp[0] > 1", "subscript"),
        ("(lambda: 1)() == 1", "lambda"),
        ("[x for x in pp]", "listcomp"),
        ("f'{pp}' == 1", "joinedstr"),
        ("pp if pp else ep", "ifexp"),
        ("(x := 1) == 1", "namedexpr"),
        ("sqrt(x=1) > 0", "the call"),
        ("min(*pp) > 0", "the call"),
        ("min > 0", "without a call"),
        ("min(pp) > 0", "takes 2 to 8 arguments"),
        ("pp in [ep, 1]", "a list of anything but constants"),
        ("warp > 1", "unknown name 'warp'"),
        ("pp > None", "the constant None"),
        ("pp > b'x'", "the constant"),
        ("pp + 1", "must be a comparison"),
        ("gpus", "must be a comparison"),
        ("min(pp, ep)", "must be a comparison"),
        ("x" * 2000, "the limit is 1,000"),
        ("(" * 495 + "pp" + ")" * 495 + " > 1", "is not an expression"),
        ("-" * 990 + "pp > 1", "the limit is 400"),
        ("+".join(["pp"] * 300) + " > 1", "the limit is 400"),
    ],
)
def test_everything_else_is_refused(tmp_path, text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")) as err:
        expr.parse(text, FRAME.columns)
    assert "\n" not in str(err.value)


def test_the_attacks_run_nothing_in_a_sweep(tmp_path, monkeypatch):
    """The two attacks the issue reported, through a whole sweep: refused when the file is read, and no file
    appears (the pandas engine ran os.system for the first and wrote the CSV for the second)."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "written.csv"
    attacks = [
        f"pp > 0 and @pd.io.common.os.system('touch {target}') == 0",
        f"pp.to_csv('{target}')",
        f"pp > 0 and __import__('os').system('touch {target}') == 0",
    ]
    for attack in attacks:
        with pytest.raises(ValueError, match="constraint"):
            run_sweep(sweep_from_dict({"axes": {"pp": [8, 16]}, "constraints": [attack]}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schedule < 3", "cannot be computed over the inputs"),
        ("schedule * 2 == 1", "cannot be computed over the inputs"),
    ],
)
def test_a_constraint_that_is_not_a_verdict_is_an_error(text, message):
    with pytest.raises(ValueError, match=message):
        run(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="pp ep gpus schedule()[]+-*/%<>=!&|~.,'\"@_:0123456789andornotin", max_size=60))
def test_fuzz_any_text_is_a_verdict_or_one_line_error(text):
    try:
        tree = expr.parse(text, FRAME.columns)
    except ValueError as err:
        assert "\n" not in str(err)
        return
    try:
        value = expr.evaluate(tree, expr.columns_of(FRAME), len(FRAME), text)
    except ValueError as err:
        assert "\n" not in str(err)
        return
    assert value.dtype == bool and value.shape == (len(FRAME),)

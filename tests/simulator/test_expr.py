"""The sweep constraint language (simulator/explore/expr.py): what it computes, checked against plain numpy, and what
it refuses — the code-execution and file-writing attempts that pandas' `DataFrame.eval` ran are regression
tests here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.explore import expr
from simulator.explore.sweep import run_sweep
from simulator.explore.sweepspec import sweep_from_dict
from tests.hang import no_hang

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
TEXTS = frozenset({"schedule", "gpu"})
PP, EP, GPUS, OVER = (FRAME[c].to_numpy(float) for c in ("pp", "ep", "gpus", "oversubscription"))
SCHEDULE = FRAME["schedule"].to_numpy(object)


def run(text: str, frame: pd.DataFrame = FRAME) -> np.ndarray:
    return expr.evaluate(expr.parse(text, frame.columns, TEXTS), expr.columns_of(frame, TEXTS), len(frame), text)


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
        ("gpu != schedule", np.ones(4, bool)),
        ("(pp > 8) == True", PP > 8),
        ("pp % 0 == 0", np.zeros(4, bool)),  # NaN: false, not a ZeroDivisionError
        ("pp % 0 != 0", np.zeros(4, bool)),  # NaN: false, != too (numpy would say true)
        ("(pp - pp) / 0 not in [1, 2]", np.zeros(4, bool)),
        ("1 < pp % 0 or pp > 16", PP > 16),
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
        expr.parse(text, FRAME.columns, TEXTS)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schedule < 3", "text compared with a number"),
        ("schedule < 'x'", "text ordered"),
        ("schedule == 1", "text compared with a number"),
        ("pp == 'x'", "text compared with a number"),
        ("schedule * 2 == 1", "'schedule' is text"),
        ("gpu + 'x' == 'h800x'", "'gpu' is text"),
        ("not schedule", "'schedule' is text"),
        ("min(schedule, 1) > 0", "'schedule' is text"),
        ("schedule and pp > 1", "'schedule' is text"),
        ("schedule in ['dualpipe', 1]", "the list mixes text and numbers"),
        ("pp in ['8']", "the list mixes text and numbers"),
        ("pp in [8] == True", "not chained"),
        ("[1, 2] == pp", "a list outside `in`"),
    ],
)
def test_text_and_numbers_are_told_apart_when_read(text, message):
    """A constraint that compares text with numbers, orders text or computes on it is refused before any work
    (pandas would have failed mid-sweep, or compared 'dualpipe' < 3 as False without a word)."""
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")) as err:
        expr.parse(text, FRAME.columns, TEXTS)
    assert "\n" not in str(err.value)


def test_columns_are_typed_a_wrong_value_is_nan_and_no_python_integer_is_raised_to_a_power():
    """A mixed column (a sweep's wrongly typed axis value) holds no Python integers to compute with: 16 ** 16 ** 16
    would take forever as a Python int; as float64 it is inf at once. Text columns hold text or None."""
    frame = pd.DataFrame(
        {"pp": [16, "abc", 2**70, True, None, 10**400], "schedule": ["dualpipe", 7, None, "x", "y", "z"]}
    )
    columns = expr.columns_of(frame, TEXTS)
    assert columns["pp"].dtype == np.float64
    assert columns["pp"][0] == 16.0 and columns["pp"][2] == float(2**70)
    assert np.isnan(columns["pp"][[1, 3, 4]]).all() and columns["pp"][5] == np.inf
    assert columns["schedule"].tolist() == ["dualpipe", None, None, "x", "y", "z"]
    with no_hang(20):
        assert run("pp ** pp ** pp > 0", frame).tolist() == [True, False, True, False, False, True]
        assert run("schedule == 'dualpipe'", frame).tolist() == [True] + [False] * 5


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
    "attack", ["pp > 0 and @pd.io.common.os.system('touch {target}') == 0", "pp.to_csv('{target}')"]
)
def test_the_attacks_from_a_sweep_file_exit_2_and_write_nothing(tmp_path, capsys, attack):
    """The same through `v3sim sweep FILE`: exit status 2, one line naming what is not allowed, no file."""
    target = tmp_path / "pwned"
    sweep = tmp_path / "attack.toml"
    sweep.write_text(f'constraints = ["{attack.format(target=target)}"]\n[axes]\npp = [8, 16]\n')
    assert main(["sweep", str(sweep), "--processes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not allowed" in err or "is not an expression" in err
    assert len(err.splitlines()) == 1 and not target.exists()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="pp ep gpus schedule()[]+-*/%<>=!&|~.,'\"@_:0123456789andornotin", max_size=60))
def test_fuzz_any_text_is_a_verdict_or_one_line_error(text):
    try:
        tree = expr.parse(text, FRAME.columns, TEXTS)
    except ValueError as err:
        assert "\n" not in str(err)
        return
    try:
        value = expr.evaluate(tree, expr.columns_of(FRAME, TEXTS), len(FRAME), text)
    except ValueError as err:
        assert "\n" not in str(err)
        return
    assert value.dtype == bool and value.shape == (len(FRAME),)

"""Every example in examples/cli/commands.toml answers as its committed output says.

The expected files were written by the code before the engine was regrouped around the operation list
(issue 19: "every number every command printed before this issue is unchanged"); a change meant to move
a number refreshes them with `V3SIM_REFRESH_EXAMPLES=1 pytest tests/golden/test_cli_examples.py` and says
so in its commit. Numbers agree to 1e-9 relative, text exactly, and no key appears or vanishes.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from pathlib import Path

import pytest

from simulator.cli import main

ROOT = Path(__file__).parents[2] / "examples" / "cli"
EXAMPLES = tomllib.loads((ROOT / "commands.toml").read_text(encoding="utf-8"))["example"]
REL = 1e-9


def _diff(expected: object, got: object, where: str = "$") -> list[str]:
    if isinstance(expected, dict) and isinstance(got, dict):
        out = [f"{where}.{k}: missing" for k in expected.keys() - got.keys()]
        out += [f"{where}.{k}: new" for k in got.keys() - expected.keys()]
        for k in expected.keys() & got.keys():
            out += _diff(expected[k], got[k], f"{where}.{k}")
        return out
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{where}: {len(expected)} items expected, {len(got)} got"]
        return [d for i, (a, b) in enumerate(zip(expected, got, strict=True)) for d in _diff(a, b, f"{where}[{i}]")]
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(got, numbers) and not isinstance(expected, bool):
        if math.isclose(expected, got, rel_tol=REL, abs_tol=1e-12):
            return []
        return [f"{where}: {expected!r} expected, {got!r} got"]
    return [] if expected == got else [f"{where}: {expected!r} expected, {got!r} got"]


def test_examples_are_named_once_and_ask_a_question():
    names = [e["name"] for e in EXAMPLES]
    assert len(names) == len(set(names))
    assert all(e["question"] and e["args"] for e in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_example_output_unchanged(capsys, example):
    assert main([*example["args"], "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    path = ROOT / "expected" / f"{example['name']}.json"
    if os.environ.get("V3SIM_REFRESH_EXAMPLES") == "1":
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    problems = _diff(expected, got)
    assert not problems, f"{example['name']}: " + "; ".join(problems[:10])

"""Every example sweep in examples/sweeps/ runs as its header says (examples/sweeps/v3-event.toml had
stopped running unnoticed: a doubled column in the printed front), and answers what its committed output
in examples/sweeps/expected/ says (refresh: `V3SIM_REFRESH_EXAMPLES=1 pytest tests/simulator/test_examples.py`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.explore.sweepspec import load_sweep
from tests.golden.test_cli_examples import _diff

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "sweeps").glob("*.toml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_each_example_sweep_runs(capsys, path):
    spec = load_sweep(path)
    assert main(["sweep", str(path), "--json", "--processes", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points"] == spec.size and out["valid"] > 0 and out["pareto"]
    assert out["valid"] + out["invalid"] == out["points"]
    expected = path.parent / "expected" / f"{path.stem}.json"
    if os.environ.get("V3SIM_REFRESH_EXAMPLES") == "1":
        expected.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    problems = _diff(json.loads(expected.read_text(encoding="utf-8")), out)
    assert not problems, f"{path.name}: " + "; ".join(problems[:10])

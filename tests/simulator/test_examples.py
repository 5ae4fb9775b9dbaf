"""Every example sweep in examples/sweeps/ runs as its header says (examples/sweeps/v3-event.toml had
stopped running unnoticed: a doubled column in the printed front)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.sweepspec import load_sweep

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "sweeps").glob("*.toml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_each_example_sweep_runs(capsys, path):
    spec = load_sweep(path)
    assert main(["sweep", str(path), "--json", "--processes", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points"] == spec.size and out["valid"] > 0 and out["pareto"]
    assert out["valid"] + out["invalid"] == out["points"]

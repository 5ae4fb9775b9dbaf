"""`mtp_layers` (Megatron's mtp_num_layers): how many multi-token prediction modules a run trains, 0 for none,
None for the model's own. Megatron-Bridge's 25.11 DeepSeek-V3 rows on GB200 ran without MTP ("DeepSeekV3 (w/o
MTP)", docs/performance-summary.md at v0.2.1) and are posed so."""

from __future__ import annotations

import subprocess
import sys

import pytest

from simulator.analytic.report import estimate
from simulator.runspec import build_run
from simulator.runspecfile import load_spec_text, spec_toml
from workloads.layout import stage_blocks

SMALL = {"gpu": "h800", "gpus": 256, "pp": 8, "ep": 32, "schedule": "1f1b", "global_batch_tokens": 4096 * 512}


def test_none_keeps_the_models_own_and_zero_drops_it():
    own, none = build_run(SMALL), build_run({**SMALL, "mtp_layers": 0})
    assert own.model.num_nextn_predict_layers == 1 and none.model.num_nextn_predict_layers == 0
    assert build_run({**SMALL, "mtp_layers": 1}).model == own.model  # the model's own count: the same spec
    last = own.pp - 1
    assert len(stage_blocks(own.model, own.layout, last, include_mtp=True)) == (
        len(stage_blocks(none.model, none.layout, last, include_mtp=True)) + 1
    )
    # MTP's module and its head are FLOPs a token: the last stage, and the step, lose them
    with_mtp, without = estimate(own), estimate(none)
    assert without.model_flops_per_token < with_mtp.model_flops_per_token
    assert without.step_time_s < with_mtp.step_time_s


def test_more_modules_cost_more():
    steps = [estimate(build_run({**SMALL, "mtp_layers": n})).step_time_s for n in (0, 1, 2)]
    assert steps == sorted(steps) and steps[0] < steps[2]


@pytest.mark.parametrize("bad", [-1, 65, 1.5, True])
def test_a_count_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="mtp_layers"):
        build_run({**SMALL, "mtp_layers": bad})


def test_the_cli_and_a_spec_file_carry_it():
    assert "mtp_layers = 0" in spec_toml({"model": "deepseek-v3", "mtp_layers": 0})
    assert load_spec_text("mtp_layers = 2\n", "t.toml") == {"mtp_layers": 2}
    with pytest.raises(ValueError, match="mtp_layers"):
        load_spec_text('mtp_layers = "two"\n', "t.toml")
    out = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "train", "--mtp-layers", "-2"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "mtp_layers=-2 must be from 0" in out.stderr and "Traceback" not in out.stderr


def test_a_sweep_takes_it_as_an_axis():
    """An integer input that may be left out (None: the model's own), as the sweep checks every input."""
    from simulator.explore.sweep import run_sweep
    from simulator.explore.sweepspec import sweep_from_dict

    spec = sweep_from_dict({"method": "grid", "base": SMALL, "axes": {"mtp_layers": [0, 1, 2, -1]}})
    frame = run_sweep(spec)
    valid = frame[frame["valid"]].sort_values("mtp_layers")
    assert list(valid["mtp_layers"]) == [0, 1, 2] and valid["step_time_s"].is_monotonic_increasing
    assert "mtp_layers=-1" in frame.loc[~frame["valid"], "reason"].iloc[0]

"""The Training page with the measured profile (issue 23): a sane figure where a profile was measured on the GPU's
die, an st.error and no GPU-hours where none was or its fit failed; never a CPU's timings priced for a GPU."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import streamlit as st

from hwmodels.profile import PROFILE_DIR, read_profile, write_profile
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.runspec import v3_pretraining
from tests.dashboard.apptest import metrics, open_view

V3_PUBLISHED_GPU_HOURS = 2.664e6  # DeepSeek-V3 technical report, Table 1


@pytest.fixture(autouse=True)
def fresh_cache():
    """The page caches its report by the profile's name, and `measured` names another file in each test."""
    st.cache_data.clear()


def shown_gpu_hours(text: str) -> float:
    """A GPU-hours metric as the page writes it ("2,447K") in GPU-hours."""
    number = re.fullmatch(r"([\d,.]+)\s*([KM]?)", text.strip())
    assert number, text
    return float(number[1].replace(",", "")) * {"": 1, "K": 1e3, "M": 1e6}[number[2]]


def test_measured_on_h800_beside_a_cpu_run_is_priced_from_the_h200(tmp_path, monkeypatch):
    """The issue's case: a CPU run in the profile folder made the page show 8,009,563,797K GPU-hours. `measured`
    is what was timed on the H800's die, our H200 run: within 10x (indeed 20%) of the V3 report's 2,664K."""
    (tmp_path / "measured-cpu.json").write_text((PROFILE_DIR / "cpu-measured.json").read_text())
    monkeypatch.setenv("V3SIM_PROFILE_DIR", str(tmp_path))
    at = open_view("training.py", profile="measured")
    assert not at.exception and not at.error
    shown = shown_gpu_hours(metrics(at)["GPU-hours"])
    run = v3_pretraining()
    assert shown == round(estimate(run, rates_for("measured", run.node.gpu)).gpu_hours, -3)
    assert shown < 10 * V3_PUBLISHED_GPU_HOURS and abs(shown / V3_PUBLISHED_GPU_HOURS - 1) < 0.2


def test_measured_on_a_die_no_one_measured_is_an_error_and_no_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("V3SIM_PROFILE_DIR", str(tmp_path))
    at = open_view("training.py", profile="measured", node="b200-ib")
    assert not at.exception
    assert len(at.error) == 1 and "nothing was measured on the b200" in at.error[0].value
    assert "GPU-hours" not in metrics(at)


def test_a_fit_over_the_limit_is_an_error_and_no_figure(tmp_path, monkeypatch):
    record = read_profile(PROFILE_DIR / "h200-measured.json")
    noisy = {**record.fits, "gemm_fp8": replace(record.fits["gemm_fp8"], rel_rmse=35.83)}
    write_profile(replace(record, name="noisy", catalog_gpu="h800", fits=noisy), tmp_path / "noisy.json")
    monkeypatch.setenv("V3SIM_PROFILE_DIR", str(tmp_path))
    at = open_view("training.py", profile="measured")
    assert not at.exception
    assert len(at.error) == 1
    shown = at.error[0].value.replace("\\", "")  # markdown escapes taken off
    assert "gemm_fp8 fit misses its own samples by 3,583% rms, over the 25%" in shown
    assert "GPU-hours" not in metrics(at)


def test_a_new_calibration_shows_without_a_restart(tmp_path, monkeypatch):
    """The page's caches are keyed by what `measured` names now (the file and its time), not by the word: a
    profile written after the page first ran is the one it prices next."""
    import os

    from dashboard.profiles import profile_version

    monkeypatch.setenv("V3SIM_PROFILE_DIR", str(tmp_path))
    before = profile_version("measured", "h800-ib")
    assert profile_version("published", "h800-ib") == "published"
    record = read_profile(PROFILE_DIR / "h200-measured.json")
    write_profile(replace(record, name="mine", catalog_gpu="h800"), tmp_path / "mine.json")
    os.utime(tmp_path / "mine.json")
    after = profile_version("measured", "h800-ib")
    assert after != before and str(tmp_path / "mine.json") in after

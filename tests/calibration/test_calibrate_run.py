"""`v3sim calibrate run` end to end on this machine's CPU: time, fit, write, and the simulator reads it."""

from __future__ import annotations

import numpy as np
import pytest

from hwmodels.profile import MAX_FIT_RMSE, PROFILE_DIR, read_profile
from hwmodels.registry import load_gpu
from simulator.analytic.profile import measured_path, rates_for
from simulator.cli import main


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("profiles") / "cpu.json"
    assert main(["calibrate", "run", "--device", "cpu", "--quick", "--json", "--out", str(out)]) == 0
    return out


def test_quick_cpu_run_writes_a_complete_profile(measured):
    p = read_profile(measured)
    assert p.kind == "measured" and p.device.startswith("cpu") and p.catalog_gpu is None
    assert p.torch_version and p.created
    kinds = {s.kernel for s in p.samples}
    assert kinds >= {"gemm", "grouped_gemm", "attention_fwd", "attention_bwd", "memory"}
    assert {"gemm_bf16", "grouped_gemm_bf16", "attention_fwd_bf16", "attention_bwd_bf16", "memory"} <= set(p.fits)
    assert all(s.time_s > 0 and s.source.startswith("measured") for s in p.samples)


def test_each_fit_reports_its_error_against_the_timings(measured):
    """The fit's time for each timed shape, against the timing: the rms error the profile reports is that one."""
    p = read_profile(measured)
    errors = []
    for cls in ("gemm_bf16", "attention_fwd_bf16", "memory"):
        samples = [s for s in p.samples if s.kernel_class == cls]
        predicted = np.array([p.fits[cls].time_s(s.flops, s.bytes) for s in samples])
        measured_s = np.array([s.time_s for s in samples])
        rel = predicted / measured_s - 1
        assert np.sqrt(np.mean(rel**2)) == pytest.approx(p.fits[cls].rel_rmse, abs=1e-9)
        assert p.fits[cls].passes == (p.fits[cls].rel_rmse <= MAX_FIT_RMSE)
        errors.extend(np.abs(rel))
    # and the fits describe the timings; pooled, because one class has 3 shapes and a busy CPU (CI running
    # beside other work) can throw one of them off by more than half (seen: the memory class at 61%)
    assert np.median(errors) < 0.5


LLAMA_8B = ["--model", "llama-3.1-8b", "--gpus", "64", "--pp", "1", "--schedule", "1f1b", "--precision", "bf16"]
LLAMA_8B += ["--global-batch-tokens", "4194304", "--zero", "3", "--json"]


def test_a_cpu_profile_prices_no_gpu_run(measured, capsys):
    """A CPU's timings say nothing of a GPU's: the run is refused in one line naming where it was measured,
    the run's GPU and the fix, never priced at the CPU's speed (8,009,563,797K GPU-hours for V3 on H800)."""
    assert main(["train", *LLAMA_8B, "--profile", str(measured)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "measured-cpu was measured on cpu" in err and "not on a catalog GPU" in err
    assert "h800" in err and "--profile published" in err and "v3sim calibrate run" in err


def test_measured_on_an_h800_skips_a_newer_cpu_run(measured, tmp_path, monkeypatch):
    """`measured` is what was timed on the run's GPU or its die: a CPU run in the folder is not it, so the
    shipped H200 profile (GH100, as the H800) prices it, as the same fractions of the H800's peaks."""
    monkeypatch.setenv("V3SIM_PROFILE_DIR", str(tmp_path))
    (tmp_path / "measured-cpu.json").write_text(measured.read_text())
    rates = rates_for("measured", load_gpu("h800"))
    assert rates.name == "h200-measured" and any("the same die, gh100" in n for n in rates.notes)
    assert measured_path(load_gpu("h800")) == PROFILE_DIR / "h200-measured.json"
    assert measured_path() == tmp_path / "measured-cpu.json"  # with no GPU to match: the newest, to show it

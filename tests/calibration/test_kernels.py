"""`v3sim calibrate kernels`: the FP8 recipe's kernel classes timed here (CPU: the code path only)."""

from __future__ import annotations

import json

import pytest

from simulator.cli import main


@pytest.mark.slow
def test_kernels_small_writes_every_class(tmp_path, capsys):
    out = tmp_path / "k.json"
    assert main(["calibrate", "kernels", "--small", "--out", str(out), "--json"]) == 0
    data = json.loads(out.read_text())
    classes = {r["kernel_class"] for r in data["rows"]}
    assert {"copy", "cast", "cast_transpose", "norm", "swiglu", "combine", "gemm_bf16_forward"} <= classes
    assert {"gemm_fp8_forward", "gemm_fp8_wgrad"} <= classes  # tensorwise fp8 runs on CPU too
    for r in data["rows"]:
        assert r["time_s"] > 0 and r["bytes"] > 0
        assert r["gbytes_per_s"] == pytest.approx(r["bytes"] / r["time_s"] / 1e9)
    assert data["info"]["small"] is True
    assert json.loads(capsys.readouterr().out)["path"] == str(out)


def test_kernels_refuses_a_non_json_out(capsys):
    assert main(["calibrate", "kernels", "--small", "--out", "k.txt"]) == 2
    assert "use a .json file" in capsys.readouterr().err


def test_shipped_h200_measurements_are_readable():
    from pathlib import Path

    from hwmodels.profile import read_profile

    root = Path(__file__).parents[2] / "calibration" / "data" / "measured"
    rows = json.loads((root / "h200-kernels-2026-12-04.json").read_text())["rows"]
    copy = max(r["gbytes_per_s"] for r in rows if r["kernel_class"] == "copy")
    assert 3500 < copy < 4800  # H200 datasheet: 4.8 TB/s; no measured rate may pass it
    fp8 = [r["tflops"] for r in rows if r["kernel_class"].startswith("gemm_fp8")]
    assert max(fp8) < 1979  # H100/H200 dense FP8 datasheet peak
    assert read_profile(root / "h200-profile-2026-12-04.json").catalog_gpu == "h200"

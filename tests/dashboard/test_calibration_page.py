"""The Calibration page renders, reads its view from the URL, and shows the fits simulator.analytic.profile returns."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from hwmodels.registry import catalog, load_gpu
from simulator.analytic.profile import describe, load_profile, rates_for, shipped_profiles
from tests.dashboard.apptest import metrics, open_view

SHIPPED = Path(__file__).parents[2] / "hwmodels" / "data" / "profiles"
PROFILES = ["published", "measured", *shipped_profiles(), "sol"]


def page(**query: object) -> AppTest:
    return open_view("kernel_profiles.py", **query)


def expected(profile: str, gpu_name: str) -> dict[str, str]:
    """The metric strings for the same choice, from the GPU catalog and simulator.analytic.profile."""
    gpu = load_gpu(gpu_name)
    fit = rates_for(profile, gpu).fits.get("gemm_fp8")
    peak = gpu.peak_fp8_flop_per_s
    return {
        "Peak bf16 (TFLOPS)": f"{gpu.peak_bf16_flop_per_s / 1e12:,.0f}",
        "Peak fp8 (TFLOPS)": f"{peak / 1e12:,.0f}" if peak else "none",
        "HBM bandwidth (GB/s)": f"{gpu.hbm_bw_bytes_per_s / 1e9:,.0f}",
        "fp8 GEMM achieved (TFLOPS)": f"{fit.flop_per_s / 1e12:.4g}" if fit and peak else "n/a",
        "fp8 GEMM share of peak": f"{100 * fit.flop_per_s / peak:.3g}%" if fit and peak else "n/a",
    }


def test_default_view_is_the_published_h800_profile():
    at = page()
    assert not at.exception
    assert not at.error
    assert at.title[0].value == "Calibration"
    assert at.selectbox(key="profile").value == "published"
    assert at.selectbox(key="gpu").value == "h800"
    assert metrics(at) == expected("published", "h800")
    assert (
        metrics(at)["fp8 GEMM share of peak"] == "56.9%"
    )  # DeepGEMM's fitted rate on the H800's 1979 TFLOPS (max-roofline fit)
    rates = rates_for("published", load_gpu("h800"))
    fits, _peaks, samples = at.dataframe
    assert list(fits.value["class"]) == [row["class"] for row in describe(rates.fits, rates.sources)]
    assert len(samples.value) == len(load_profile("h800-published").samples)
    assert (at.query_params["profile"], at.query_params["gpu"]) == ("published", "h800")


def test_changing_widgets_changes_the_numbers():
    at = page()
    at.selectbox(key="gpu").set_value("h100").run()
    assert not at.exception
    assert metrics(at) == expected("published", "h100")
    at.selectbox(key="profile").set_value("h800-published").run()
    assert metrics(at) == expected("h800-published", "h100")
    assert at.query_params["profile"] == "h800-published"


def test_view_is_read_from_the_url():
    at = page(profile="measured", gpu="mi300x")
    assert not at.exception
    assert at.selectbox(key="profile").value == "measured"
    assert at.selectbox(key="gpu").value == "mi300x"
    assert metrics(at) == expected("measured", "mi300x")


def test_sol_has_no_samples_and_shows_the_peaks():
    at = page(profile="sol", gpu="h800")
    assert not at.exception
    assert any("no samples" in info.value for info in at.info)
    assert metrics(at)["fp8 GEMM share of peak"] == "100%"
    assert len(at.dataframe) == 2  # fits and peak shares; no samples table


def test_a_gpu_without_fp8_says_so():
    at = page(profile="published", gpu="a100")
    assert not at.exception
    assert metrics(at) == expected("published", "a100")
    assert metrics(at)["fp8 GEMM achieved (TFLOPS)"] == "n/a"


@settings(max_examples=8, deadline=None)
@given(profile=st.sampled_from(PROFILES), gpu=st.sampled_from(catalog("gpus")))
def test_any_widget_values_show_metrics_or_an_error(profile, gpu):
    at = page()
    at.selectbox(key="profile").set_value(profile)
    at.selectbox(key="gpu").set_value(gpu)
    at.run()
    assert not at.exception
    if at.error:
        assert not at.metric
    else:
        assert metrics(at) == expected(profile, gpu)


def test_a_measured_profiles_text_is_shown_as_text(tmp_path, monkeypatch):
    """A profile `v3sim calibrate run` wrote is a user's file: its names cannot become links, images or escapes."""
    profile = json.loads((SHIPPED / "cpu-measured.json").read_text())
    profile["name"] = "mine\x1b[2J"
    profile["device"] = "![pixel](http://evil.example/p.png) <b>cpu</b>"
    profile["notes"] = ["see [this](https://evil.example) \u202eevil"]
    for sample in profile["samples"]:
        sample["source"] = "bench\x1b[31m, www.evil.example"
    (tmp_path / "mine.json").write_text(json.dumps(profile))
    monkeypatch.setenv("V3SIM_PROFILE_DIR", str(tmp_path))
    at = page(profile="measured", gpu="h800")
    assert not at.exception and not at.error
    shown = [t for t in [m.value for m in at.markdown] + [c.value for c in at.caption] if "evil" in t or "mine" in t]
    assert len(shown) >= 3  # the heading, the profile's note, the samples' caption
    for text in shown:
        assert not re.search(r"(?<!\\)[\[\]<>$`]", text), text  # every markdown character escaped
        assert "://" not in text and "www.evil" not in text and "\x1b" not in text and "\u202e" not in text
    for frame in at.dataframe:
        for column in frame.value.columns:
            assert not frame.value[column].astype(str).str.contains("\x1b|\u202e").any()

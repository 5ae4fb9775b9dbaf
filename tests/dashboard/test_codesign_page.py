"""The Co-design page (`dashboard/views/codesign.py`), driven by Streamlit's AppTest: its numbers are
`simulator.explore.codesign`'s, formatted by `dashboard.fmt`; its state is the URL's; a what-if that does not
run is an st.error naming what to change, and a URL value out of range a note, never an exception."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.fmt import duration, signed_percent, usd
from simulator.analytic.fitting import fitting_run
from simulator.explore.codesign import HardwareWhatIf, evaluate
from simulator.runspec import build_run
from tests.dashboard.apptest import metrics, open_view
from workloads.registry import model_slugs

V3 = build_run({"model": "deepseek-v3", "node": "h800-ib", "gpus": 2048})
BASE = evaluate(V3)


def page(**query: object) -> AppTest:
    return open_view("codesign.py", **query)


def seconds(text: str) -> float:
    """A step time as the page shows it ("17.2 s") in seconds."""
    value, unit = text.split()
    assert unit == "s"
    return float(value)


def test_renders_v3_at_its_defaults():
    at = page()
    assert not at.exception and not at.error and not at.warning
    shown = metrics(at)
    assert shown["Step time"] == duration(BASE["step_time_s"]) == "17.6 s"
    assert shown["GPU-hours"] == f"{BASE['gpu_hours'] / 1e3:,.0f}K"
    assert shown["Cost"] == usd(BASE["cost_usd"])
    assert shown["Memory per GPU (of 85.5 GB)"] == "65.8 GB"
    assert shown["Network cost per GPU"] == usd(BASE["network_usd_per_gpu"])
    assert all(m.delta is None or m.delta == "" for m in at.metric)  # nothing changed: no deltas
    text = " ".join(m.value for m in at.markdown)
    assert "For deepseek-v3 on 2,048 H800" in text and "**FLOP/s buys most**" in text
    assert len(at.get("plotly_chart")) == 3  # step time and cost by multiplier, the topology scatter
    assert at.query_params["nic"] in ("1.0", ["1.0"]) and at.query_params["domain"] in ("1.0", ["1.0"])


def test_double_nic_bandwidth_in_the_url_shortens_the_step():
    at = page(nic=2)
    assert not at.exception and not at.error
    want = evaluate(V3, HardwareWhatIf(nic_bw_x=2.0))
    step = next(m for m in at.metric if m.label == "Step time")
    assert step.value == duration(want["step_time_s"])
    assert seconds(step.value) < seconds(duration(BASE["step_time_s"]))
    assert step.delta == signed_percent(want["step_time_s"] / BASE["step_time_s"] - 1)
    assert step.delta.startswith("-")


def test_a_widget_changes_the_numbers_as_the_engine_does():
    at = page()
    at.number_input(key="flops").set_value(2.0).run()
    assert not at.exception and not at.error
    assert metrics(at)["Step time"] == duration(evaluate(V3, HardwareWhatIf(compute_x=2.0))["step_time_s"])
    assert at.query_params["flops"] in ("2.0", ["2.0"])


def test_an_out_of_range_url_value_is_a_note():
    at = page(nic=1000)
    assert not at.exception and not at.error
    assert any("Ignored ?nic=1000" in w.value for w in at.warning)
    assert metrics(at)["Step time"] == duration(BASE["step_time_s"])


def test_a_larger_nvlink_domain_and_another_topology():
    at = page(domain=2, topology="fat-tree-3")
    assert not at.exception and not at.error
    want = evaluate(V3, HardwareWhatIf(scaleup_size_x=2.0, topology="fat-tree-3"))
    assert metrics(at)["Step time"] == duration(want["step_time_s"])
    assert metrics(at)["Network cost per GPU"] == usd(want["network_usd_per_gpu"])


def test_a_domain_that_does_not_divide_the_gpus_says_what_to_change():
    at = page(domain=9)
    assert not at.exception and not metrics(at)
    assert "multiple of the 72-GPU NVLink domain (2,016 or 2,088)" in at.error[0].value
    at = page(domain=1.3)
    assert not at.exception and not metrics(at)
    assert "gives 10.4 GPUs per NVLink domain" in at.error[0].value


def test_a_what_if_that_does_not_fit_says_how_much_hbm_it_needs():
    at = page(hbm=0.5)  # V3 needs 65.8 GB of the H800's 85.5 (81,559 MiB): half of it does not hold the run
    assert not at.exception and not metrics(at)
    assert "raise HBM capacity to at least x0.77" in at.error[0].value
    at = page(hbm=0.85)
    assert not at.exception and not at.error
    assert "Memory per GPU (of 72.7 GB)" in metrics(at)


@pytest.mark.parametrize("model", model_slugs())
def test_every_catalog_model_answers_or_says_what_to_change(model):
    at = page(model=model)
    assert not at.exception
    row = evaluate(fitting_run(build_run({"model": model, "node": "h800-ib", "gpus": 2048})).run)
    assert row["fits"]  # the engine's default run, with its fitting memory settings (as v3sim train)
    assert not at.error and metrics(at)["Step time"] == duration(row["step_time_s"])

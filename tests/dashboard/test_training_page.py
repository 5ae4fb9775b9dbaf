"""The Training cost page (`dashboard/views/training.py`), driven by Streamlit's AppTest: its numbers are the
analytic model's, its state is the URL's, and bad input is an st.error, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from simulator.analytic.report import estimate
from simulator.runspec import build_run
from tests.dashboard.apptest import metrics, open_view


def page(**query: object) -> AppTest:
    return open_view("training.py", **query)


def expected(**options) -> dict[str, str]:
    r = estimate(build_run(options), "published")
    return {
        "GPU-hours": f"{r.gpu_hours / 1e3:,.0f}K",
        "Cost": f"${r.cost_usd / 1e6:,.2f}M",
        "Days": f"{r.days:.1f}",
        "MFU (bf16 peak)": f"{r.mfu['bf16']:.1%}",
        "Step time": f"{r.step_time_s:.2f} s",
    }


def test_defaults_are_v3_as_the_model_computes_it():
    at = page()
    assert not at.exception and not at.error
    shown = metrics(at)
    assert {k: shown[k] for k in expected()} == expected()
    assert shown["GPU-hours"] == "2,306K"  # docs/training.md: the V3 figure
    assert any("2,664K" in c.value and "out of sample" in c.value for c in at.caption)  # the published figure
    from simulator.explore.uncertainty import uncertainty
    from simulator.runspec import build_run

    band = uncertainty(build_run({}))["gpu_hours"]
    shown_band = f"{band['p10'] / 1e3:,.0f}K-{band['p90'] / 1e3:,.0f}K GPU-hours"
    assert any(shown_band in c.value for c in at.caption)  # the P10-P90 band, as the model computes it


def test_widgets_change_the_numbers_exactly_as_the_simulator_does():
    at = page()
    at.number_input(key="pp").set_value(32).run()
    at.number_input(key="ep").set_value(32).run()
    at.number_input(key="tokens").set_value(10.0).run()
    at.number_input(key="price").set_value(3.0).run()
    assert not at.exception and not at.error
    want = expected(pp=32, ep=32, tokens=10e12, price_per_gpu_hour=3.0)
    assert {k: metrics(at)[k] for k in want} == want
    at.selectbox(key="node").set_value("h200-ib").run()
    at.selectbox(key="schedule").set_value("zb1p").run()
    want = expected(node="h200-ib", pp=32, ep=32, schedule="zb1p", tokens=10e12, price_per_gpu_hour=3.0)
    assert {k: metrics(at)[k] for k in want} == want
    assert at.query_params["pp"] == ["32"] or at.query_params["pp"] == "32"  # the view is in the URL


def test_the_url_sets_the_view():
    at = page(model="llama-3.1-8b", gpus="64", pp="2", schedule="1f1b", precision="bf16", over="1.0")
    assert not at.exception and not at.error
    want = expected(model="llama-3.1-8b", gpus=64, pp=2, schedule="1f1b", precision="bf16")
    assert {k: metrics(at)[k] for k in want} == want
    assert at.number_input(key="ep").value == 1  # a dense model: no experts to spread


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ep": 48}, "ep=48"),
        ({"pp": 8}, "GB per GPU"),  # V3 at PP8 does not fit an H800
        ({"gpus": 100}, "not a multiple of 8"),
    ],
)
def test_bad_combinations_are_an_error_that_says_what_to_change(changes, message):
    at = page()
    for key, value in changes.items():
        at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value


@given(
    st.fixed_dictionaries(
        {
            "gpus": st.sampled_from([8, 64, 512, 1024, 2048, 4096, 100]),
            "tp": st.sampled_from([1, 2, 4, 8, 3]),
            "pp": st.sampled_from([1, 2, 4, 8, 16, 32, 61, 64]),
            "ep": st.sampled_from([1, 8, 32, 64, 256, 48]),
            "mb": st.sampled_from([1, 2, 4]),
            "over": st.sampled_from([1.0, 2.0, 3.0]),
        }
    ),
    st.sampled_from(["1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev"]),
    st.sampled_from(["deepseek-v3", "mixtral-8x7b", "llama-3.1-8b"]),
)
@settings(max_examples=15, deadline=None)
def test_random_widget_values_never_raise(numbers, schedule, model):
    at = page()
    at.selectbox(key="model").set_value(model).run()
    at.selectbox(key="schedule").set_value(schedule).run()
    for key, value in numbers.items():
        at.number_input(key=key).set_value(value)
    at.run()
    assert not at.exception
    assert len(at.error) == 1 or metrics(at)["Step time"].endswith(" s")


def test_the_expected_run_is_the_goodput_model_and_its_widgets_move_it():
    """Failures, checkpoints and restarts: the page's expected figures are `run_goodput`'s; no failures leave
    only the checkpoint writes; a slower restart costs more."""
    from simulator.analytic.goodput import Reliability, run_goodput

    at = page()
    assert not at.exception and not at.error
    r = estimate(build_run({}), "published")
    want = run_goodput(build_run({}), r.days * 86400, r.gpu_hours, r.cost_usd, Reliability())
    shown = metrics(at)
    assert shown["Expected GPU-hours"] == f"{want['expected_gpu_hours'] / 1e3:,.0f}K"
    assert shown["Goodput"] == f"{want['goodput']:.1%}" == "99.0%"
    assert any("failures expected" in c.value and "optimum" in c.value for c in at.caption)
    at.number_input(key="failures").set_value(0.0).run()
    assert not at.exception and metrics(at)["Goodput"] == "100.0%"
    at.number_input(key="failures").set_value(1.0).run()
    at.number_input(key="restart").set_value(3600.0).run()
    slower = metrics(at)["Goodput"]
    assert float(slower.rstrip("%")) < 99.0

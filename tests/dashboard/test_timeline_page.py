"""The Pipeline timeline page renders, reads its view from the URL, and shows exactly what simulate() returns."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from simulator.events.ep_comm import Routing
from simulator.events.simulate import simulate
from simulator.runspec import build_run
from tests.dashboard.apptest import metrics, open_view

LABELS = ("Event step (s)", "Analytic step (s)", "Difference", "Busiest rank idle (s)")


def page(**query: object) -> AppTest:
    return open_view("timeline.py", **query)


def expected(schedule: str, pp: int, microbatches: int, network: str = "analytic", cv: float = 0.0, seed: int = 0):
    """The metric strings for the same run, from the simulator itself."""
    base = build_run({"pp": pp, "schedule": "1f1b"})
    tokens = microbatches * base.dp * base.micro_batch * base.seq_len
    run = build_run({"pp": pp, "schedule": schedule, "global_batch_tokens": tokens})
    out = simulate(run, None, network, Routing(expert_cv=cv, seed=seed)).to_dict()
    assert run.microbatches == microbatches
    return {
        "Event step (s)": f"{out['step_time_s']:.3f}",
        "Analytic step (s)": f"{out['analytic_step_time_s']:.3f}",
        "Difference": f"{out['difference']:+.1%}",
        "Busiest rank idle (s)": f"{min(out['idle_s']):.3f}",
    }


def test_default_view_renders_the_simulated_step():
    at = page()
    assert not at.exception
    assert not at.error
    assert at.title[0].value == "Pipeline timeline"
    assert at.selectbox(key="schedule").value == "dualpipe"
    assert at.selectbox(key="pp").value == 16
    assert at.number_input(key="mb").value == 32
    assert at.selectbox(key="network").value == "analytic"
    assert metrics(at) == expected("dualpipe", 16, 32)
    assert at.query_params["schedule"] == "dualpipe" and at.query_params["pp"] == "16"  # the view is in the URL


def test_changing_widgets_changes_the_numbers_as_simulate_does():
    at = page()
    at.selectbox(key="schedule").set_value("1f1b")
    at.selectbox(key="pp").set_value(4)
    at.number_input(key="mb").set_value(12)
    at.run()
    assert not at.exception
    assert metrics(at) == expected("1f1b", 4, 12)
    at.selectbox(key="schedule").set_value("zb1p").run()
    assert metrics(at) == expected("zb1p", 4, 12)
    assert (at.query_params["schedule"], at.query_params["pp"], at.query_params["mb"]) == ("zb1p", "4", "12")


def test_view_is_read_from_the_url():
    at = page(schedule="interleaved", pp=4, mb=8, network="analytic", seed=3)
    assert not at.exception
    assert at.selectbox(key="schedule").value == "interleaved"
    assert at.selectbox(key="pp").value == 4
    assert at.number_input(key="mb").value == 8
    assert metrics(at) == expected("interleaved", 4, 8, seed=3)


def test_flow_network_uses_its_expert_cv_and_seed():
    at = page(schedule="dualpipe", pp=4, mb=8, network="flow", cv=0.3, seed=1)
    assert not at.exception
    assert at.number_input(key="cv").value == 0.3
    assert metrics(at) == expected("dualpipe", 4, 8, "flow", 0.3, 1)


def test_trace_download_is_the_chrome_trace():
    at = page(schedule="1f1b", pp=4, mb=4)
    button = at.get("download_button")
    names = [b.proto.label for b in button]
    assert "Download Chrome trace (step.json)" in names


def test_invalid_combination_shows_the_models_error():
    at = page(schedule="dualpipe", pp=4, mb=7)  # dualpipe needs an even number >= 2 x pp
    assert not at.exception
    assert at.error and "micro-batches" in at.error[0].value
    assert not at.metric


@settings(max_examples=7, deadline=None)
@given(
    schedule=st.sampled_from(["1f1b", "interleaved", "zb1p", "dualpipe"]),
    pp=st.sampled_from([4, 8]),
    microbatches=st.integers(1, 40),
    network=st.sampled_from(["analytic", "analytic", "flow"]),
    seed=st.integers(0, 5),
)
def test_any_widget_values_show_metrics_or_an_error(schedule, pp, microbatches, network, seed):
    at = page()
    at.selectbox(key="schedule").set_value(schedule)
    at.selectbox(key="pp").set_value(pp)
    at.number_input(key="mb").set_value(microbatches)
    at.selectbox(key="network").set_value(network)
    at.number_input(key="seed").set_value(seed)
    at.run()
    assert not at.exception
    if at.error:
        assert not at.metric
    else:
        assert metrics(at) == expected(schedule, pp, microbatches, network, 0.0, seed)

"""The Pipeline timeline page: its defaults are the Training page's run (the analytic step beside the event
step), it opens with a computed answer, reads its view from the URL, shows exactly what simulate() returns,
and reports progress while the simulation runs."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from dashboard.fmt import duration
from dashboard.progress import progress_text, remaining_s
from simulator.analytic.report import estimate
from simulator.events.ep_comm import Routing
from simulator.events.simulate import simulate
from simulator.runspec import build_run
from tests.dashboard.apptest import metrics, open_view

V3 = build_run({})
V3_SEQUENCES = V3.global_batch_tokens // V3.seq_len


def page(**query: object) -> AppTest:
    return open_view("timeline.py", **query)


def run_of(schedule: str, pp: int, sequences: int):
    return build_run({"pp": pp, "schedule": schedule, "global_batch_tokens": sequences * V3.seq_len})


def expected(schedule: str, pp: int, sequences: int, network: str = "flow", cv: float = 0.0, seed: int = 0):
    """The metric strings for the same run, from the simulator itself."""
    out = simulate(run_of(schedule, pp, sequences), None, network, Routing(expert_cv=cv, seed=seed)).to_dict()
    return {
        "Event step": f"{out['step_time_s']:,.2f} s",
        "Analytic step": f"{out['analytic_step_time_s']:,.2f} s",
        "Difference": f"{out['difference']:+.1%}",
        "Least idle rank": duration(min(out["idle_s"])),
    }


def answer(at: AppTest) -> str:
    return at.markdown[0].value


def all_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "title", "subheader") for e in getattr(at, kind)]
    return " ".join(map(str, parts)) + " ".join(f"{m.label} {m.value}" for m in at.metric)


def test_the_default_is_the_training_pages_run_and_agrees_with_the_analytic_step():
    at = page()
    assert not at.exception and not at.error
    assert at.title[0].value == "Pipeline timeline"
    assert (at.selectbox(key="schedule").value, at.selectbox(key="pp").value) == (V3.schedule, V3.pp)
    assert at.number_input(key="batch").value == V3_SEQUENCES and V3.microbatches == 120
    assert at.selectbox(key="network").value == "flow"
    shown = metrics(at)
    assert shown == expected(V3.schedule, V3.pp, V3_SEQUENCES)
    analytic = estimate(V3).step_time_s  # what the Training page shows for the same run
    event = simulate(V3, None, "flow").step_time_s
    assert shown["Analytic step"] == f"{analytic:,.2f} s"
    assert abs(event / analytic - 1) < 0.05
    assert at.query_params["schedule"] == "dualpipe" and at.query_params["batch"] == str(V3_SEQUENCES)


def test_the_page_opens_with_a_computed_answer_that_follows_the_inputs():
    at = page()
    first = answer(at)
    sim = simulate(V3, None, "flow")
    assert f"steps this run in **{sim.step_time_s:.2f} s**" in first
    assert f"analytic model's {sim.analytic_step_time_s:.2f} s" in first
    assert "published GPU-hours imply" in first  # V3's own run: the published reference beside it
    assert "Where the step goes: compute" in first and "exposed expert all-to-all" in first
    at.selectbox(key="pp").set_value(8).run()
    assert not at.exception
    changed = answer(at)
    assert changed != first and "published GPU-hours" not in changed  # not V3's published layout any more
    assert f"{simulate(run_of('dualpipe', 8, V3_SEQUENCES), None, 'flow').step_time_s:.2f} s" in changed


def test_units_and_labels_are_for_people():
    at = page()
    text = all_text(at)
    assert "GiB" not in text
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", " ".join(m.label for m in at.metric))
    for chart in at.get("plotly_chart"):
        spec = chart.proto.spec
        for raw in ("dispatch_f", "combine_b", '"title":{"text":"op"'):
            assert f'"name":"{raw}"' not in spec and raw not in spec.split('"customdata"')[0]


def test_the_gantt_draws_a_window_and_says_so():
    at = page()
    caption = next(c.value for c in at.caption if c.value.startswith("Drawn:"))
    drawn, total = (int(x.replace(",", "")) for x in re.findall(r"[\d,]+(?= of| bars)", caption)[:2])
    assert 0 < drawn < total == 10_098
    at.selectbox(key="window").set_value("whole step").run()
    caption = next(c.value for c in at.caption if c.value.startswith("Drawn:"))
    assert caption.startswith("Drawn: 10,098 of the step's 10,098 bars")


def test_changing_widgets_changes_the_numbers_as_simulate_does():
    at = page(network="analytic")
    at.selectbox(key="schedule").set_value("1f1b")
    at.selectbox(key="pp").set_value(4)
    at.number_input(key="batch").set_value(512 * 12)
    at.run()
    assert not at.exception
    assert metrics(at) == expected("1f1b", 4, 512 * 12, "analytic")
    at.selectbox(key="schedule").set_value("zb1p").run()
    assert metrics(at) == expected("zb1p", 4, 512 * 12, "analytic")
    assert (at.query_params["schedule"], at.query_params["pp"], at.query_params["batch"]) == ("zb1p", "4", "6144")


def test_flow_network_uses_its_expert_cv_and_seed():
    at = page(schedule="dualpipe", pp=4, batch=512 * 8, network="flow", cv=0.3, seed=1)
    assert not at.exception
    assert at.number_input(key="cv").value == 0.3
    assert metrics(at) == expected("dualpipe", 4, 512 * 8, "flow", 0.3, 1)


def test_trace_download_is_the_chrome_trace():
    at = page(schedule="1f1b", pp=4, batch=512 * 4, network="analytic")
    names = [b.proto.label for b in at.get("download_button")]
    assert "Download Chrome trace (step.json)" in names


def test_invalid_combinations_show_the_models_error():
    at = page(schedule="dualpipe", pp=4, batch=512 * 7)  # dualpipe needs an even number >= 2 x pp
    assert not at.exception
    assert at.error and "micro-batches" in at.error[0].value and not at.metric
    at = page(batch=1000)  # not a multiple of the data-parallel width: the error names the fix
    assert at.error and "multiple of 128 sequences" in at.error[0].value and not at.metric


def test_progress_reaches_the_end_and_leaves_the_step_unchanged():
    calls: list[tuple[int, int, str]] = []
    run = run_of("dualpipe", 4, 512 * 8)
    with_bar = simulate(run, None, "flow", Routing(seed=2), progress=lambda *c: calls.append(c))
    plain = simulate(run, None, "flow", Routing(seed=2))
    assert with_bar.step_time_s == plain.step_time_s and with_bar.timeline.events.equals(plain.timeline.events)
    samples = Routing().samples  # each sample's dispatch and combine solved in turn: a rate to carry
    a2a = [c for c in calls if c[2] == "all-to-alls"]
    assert a2a == [(k, 2 * samples, "all-to-alls") for k in range(2 * samples + 1)]
    ops = [c for c in calls if c[2] == "ops"]
    total = with_bar.to_dict()["ops"]
    assert ops[-1] == (total, total, "ops") and [d for d, _, _ in ops] == sorted({d for d, _, _ in ops})
    assert len(ops) <= 101


def test_the_time_left_is_the_rate_so_far_carried_to_the_end():
    assert remaining_s(250, 1000, 2.0) == 6.0
    assert remaining_s(0, 1000, 2.0) is None and remaining_s(10, 1000, 0.01) is None  # no rate yet
    assert progress_text("Simulating", 250, 1000, 2.0) == "Simulating: 250 of 1,000, about 6 s left"
    assert progress_text("Simulating", 1000, 1000, 2.0) == "Simulating: 1,000 of 1,000"


@settings(max_examples=6, deadline=None)
@given(
    schedule=st.sampled_from(["1f1b", "interleaved", "zb1p", "dualpipe"]),
    pp=st.sampled_from([4, 8]),
    microbatches=st.integers(1, 40),
    network=st.sampled_from(["analytic", "analytic", "flow"]),
    seed=st.integers(0, 5),
)
def test_any_widget_values_show_metrics_or_an_error(schedule, pp, microbatches, network, seed):
    dp = 2048 // pp
    at = page(network="analytic")
    at.selectbox(key="schedule").set_value(schedule)
    at.selectbox(key="pp").set_value(pp)
    at.number_input(key="batch").set_value(microbatches * dp)
    at.selectbox(key="network").set_value(network)
    at.number_input(key="seed").set_value(seed)
    at.run()
    assert not at.exception
    if at.error:
        assert not at.metric
    else:
        assert metrics(at) == expected(schedule, pp, microbatches * dp, network, 0.0, seed)

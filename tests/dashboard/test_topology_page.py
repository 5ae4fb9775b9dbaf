"""The Topology explorer page (`dashboard/views/topology.py`), driven by Streamlit's AppTest: its numbers are
`topology_summary`'s, the fast network model's all-to-all and the analytic V3 model's; its state is the URL's; a
combination a model rejects is an invalid row with the model's reason, never an exception."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from hwmodels.registry import load_node, load_switch
from hwmodels.routing import build_fabric
from hwmodels.topology import KINDS, design_topology
from simulator.analytic.report import estimate
from simulator.events.ep_comm import Routing
from simulator.events.simulate import simulate
from simulator.network import collectives as network
from simulator.network.summary import topology_summary
from simulator.runspec import build_run
from tests.dashboard.apptest import metrics, open_view

CHEAPEST = "Cheapest network ($ per endpoint)"
FASTEST = "Fastest V3 step time"
VALID = "Valid configurations"


def page(**query: object) -> AppTest:
    return open_view("topology.py", **query)


def table(at: AppTest):
    return at.dataframe[0].value


def expected(combos: list[tuple[str, int, float, int]], planes: int = 8) -> dict[str, str]:
    """The page's three metrics, computed here with the library over (kind, radix, oversubscription, gpus)."""
    costs, steps = [], []
    for kind, radix, over, gpus in combos:
        try:
            planed = planes if kind in ("multi-plane", "multi-rail") else None
            cost = topology_summary(kind, radix, gpus, planed, over)["cost_per_endpoint_usd"]
            run = {"gpus": gpus, "topology": kind, "radix": radix, "oversubscription": over}
            step = estimate(build_run(run), "published").step_time_s
        except ValueError:
            continue
        costs.append(cost)
        steps.append(step)
    return {CHEAPEST: f"${min(costs):,.0f}", FASTEST: f"{min(steps):.3f} s", VALID: f"{len(costs)} of {len(combos)}"}


def test_renders_the_defaults():
    at = page()
    assert not at.exception
    defaults = [(k, 64, o, 2048) for k in ("fat-tree-2", "multi-plane", "fat-tree-3") for o in (1.0, 3.0)]
    assert metrics(at) == expected(defaults)
    frame = table(at)
    assert len(frame) == 6 and frame["Valid"].all()
    assert at.query_params["kinds"] == "fat-tree-2,multi-plane,fat-tree-3" and at.query_params["over"] == "1,3"
    assert len(at.get("plotly_chart")) == 6  # four sweep charts, the Pareto scatter, the drawing
    assert len(at.get("download_button")) == 1


def test_widgets_change_the_numbers_as_the_library_computes_them():
    at = page()
    at.multiselect(key="kinds").set_value(["dragonfly", "slim-fly"])
    at.multiselect(key="radix").set_value(["32", "64"])
    at.multiselect(key="over").set_value(["1"])
    at.multiselect(key="gpus").set_value(["4096"])
    at.number_input(key="a2a_mb").set_value(100)
    at.run()
    assert not at.exception
    combos = [(k, r, 1.0, 4096) for k in ("dragonfly", "slim-fly") for r in (32, 64)]
    assert metrics(at) == expected(combos)
    frame = table(at)
    for _, shown_row in frame[frame["Valid"]].iterrows():  # the fast model on each row's own fabric
        spec = design_topology(shown_row["Topology"], int(shown_row["Radix"]), 4096)
        fabric = build_fabric(spec, load_node("h800-ib"), load_switch("ib-ndr-64"), 4096)
        a2a = network.fast_s(fabric, *network.all_to_all_transfers(fabric, 4096, 100e6))
        assert shown_row["All-to-all (ms)"] == a2a * 1e3
    assert frame["All-to-all (ms)"].nunique() > 1  # the shape of the network shows
    row = frame[(frame["Topology"] == "dragonfly") & (frame["Radix"] == 64)].iloc[0]
    net = topology_summary("dragonfly", 64, 4096)
    assert row["Cost per endpoint ($)"] == net["cost_per_endpoint_usd"] and row["Switches"] == net["switches"]
    assert row["Bisection (TB/s)"] == net["bisection_bytes_per_s"] / 1e12
    assert at.query_params["kinds"] == "dragonfly,slim-fly" and at.query_params["gpus"] == "4096"


def test_state_is_read_from_the_url():
    at = page(kinds="multi-plane", radix="32", over="2", gpus="1024", planes="4", draw="dragonfly")
    assert not at.exception
    frame = table(at)
    assert frame[["Topology", "Radix", "Planes", "Oversubscription", "GPUs"]].values.tolist() == [
        ["multi-plane", 32, 4, 2.0, 1024]
    ]
    net = topology_summary("multi-plane", 32, 1024, 4, 2.0)
    assert frame["Cost per endpoint ($)"].iloc[0] == net["cost_per_endpoint_usd"]
    assert metrics(at)[CHEAPEST] == f"${net['cost_per_endpoint_usd']:,.0f}"
    assert at.selectbox(key="draw").value == "dragonfly"


def test_rejected_combinations_are_invalid_rows_with_the_reason():
    at = page(kinds="slim-fly,dragonfly", over="3")
    assert not at.exception
    frame = table(at)
    assert not frame["Valid"].any()
    assert frame["Why not"].str.contains("takes no --oversubscription").all()
    assert len(at.error) == 1 and "None of the 2 combinations is valid" in at.error[0].value
    at = page(kinds="multi-plane", gpus="512", over="1")  # 512 GPUs: V3 at PP16 EP64 needs 91.5 GB per GPU
    frame = table(at)
    assert not frame["Valid"].iloc[0] and frame["Why not"].iloc[0].startswith("V3 run: needs")
    assert math.isnan(frame["V3 step (s)"].iloc[0]) and frame["Cost per endpoint ($)"].notna().iloc[0]


def test_an_empty_selection_says_what_to_pick():
    at = page()
    at.multiselect(key="kinds").set_value([])
    at.run()
    assert not at.exception
    assert "pick a topology" in at.warning[0].value and not at.metric


@settings(max_examples=8, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True),
    radixes=st.lists(st.sampled_from(["16", "32", "64", "128"]), min_size=1, max_size=2, unique=True),
    overs=st.lists(st.sampled_from(["1", "2", "3", "4"]), min_size=1, max_size=2, unique=True),
    gpus=st.lists(st.sampled_from(["512", "1024", "2048", "4096", "8192"]), min_size=1, max_size=2, unique=True),
    planes=st.integers(1, 16),
    draw=st.sampled_from(KINDS),
    draw_radix=st.sampled_from(["4", "6", "8", "10", "12"]),
    ends=st.booleans(),
)
def test_any_widget_values_render_without_an_exception(kinds, radixes, overs, gpus, planes, draw, draw_radix, ends):
    at = page(
        kinds=",".join(kinds),
        radix=",".join(radixes),
        over=",".join(overs),
        gpus=",".join(gpus),
        planes=str(planes),
        draw=draw,
        draw_radix=draw_radix,
        draw_ends=str(ends).lower(),
    )
    assert not at.exception
    assert at.metric or at.error or at.warning
    assert len(table(at)) == len(kinds) * len(radixes) * len(overs) * len(gpus)


def test_the_event_model_is_one_click_away():
    """Pick a configuration of the sweep, press the button: the event model's V3 step on that fabric, beside
    the analytic one the sweep shows (both from the library, as `v3sim simulate` computes them)."""
    at = page(kinds="multi-plane,fat-tree-2", gpus="1024", over="1")
    assert not at.exception and not at.metric[3:]  # nothing run until asked
    labels = at.selectbox(key="event_config").options
    assert labels == ["multi-plane, radix 64, 1:1, 1024 GPUs", "fat-tree-2, radix 64, 1:1, 1024 GPUs"]
    at.selectbox(key="event_config").set_value(labels[0])
    at.button(key="event_run").click().run()
    assert not at.exception
    shown = metrics(at)
    options = {"gpus": 1024, "topology": "multi-plane", "radix": 64, "oversubscription": 1.0}
    sim = simulate(build_run(options), "published", "flow", Routing(samples=2))
    assert shown["Event-model V3 step"] == f"{sim.step_time_s:.2f} s"
    assert shown["Analytic step (the sweep's)"] == f"{sim.analytic_step_time_s:.2f} s"
    assert shown["Analytic step (the sweep's)"] == f"{table(at)['V3 step (s)'].iloc[0]:.2f} s"


def answer(at: AppTest) -> str:
    return at.markdown[0].value


def test_the_page_opens_with_the_fastest_and_cheapest_network_and_v3s_own():
    """The answer names the fastest and the cheapest network by the library's numbers, by how much they
    differ, and puts V3's published multi-plane network (ISCA 2025's cost per endpoint) beside them."""
    at = page()
    text = answer(at)
    fast = estimate(build_run({"topology": "multi-plane"}), "published").step_time_s
    slow = estimate(build_run({"topology": "fat-tree-2", "oversubscription": 3.0}), "published").step_time_s
    cheap = topology_summary("fat-tree-2", 64, 2048, None, 3.0)["cost_per_endpoint_usd"]
    plane = topology_summary("multi-plane", 64, 2048, 8, 1.0)["cost_per_endpoint_usd"]
    assert f"the fastest network is **multi-plane, radix 64, 1:1, 2,048 GPUs** ({fast:.2f} s a step" in text
    assert (
        f"the cheapest is **fat-tree-2, radix 64, 3:1, 2,048 GPUs** (${cheap:,.0f}, {cheap / plane - 1:+.1%})" in text
    )
    assert f"{slow:.2f} s step ({slow / fast - 1:+.1%})" in text
    assert "The fastest is V3's own network, a multi-plane two-layer fat tree (ISCA 2025 publishes $4,390" in text
    at.multiselect(key="kinds").set_value(["fat-tree-2", "fat-tree-3"]).run()  # V3's network left out
    changed = answer(at)
    assert changed != text and "is not in this sweep: add multi-plane at 1:1" in changed


def test_headers_are_words_and_no_gib():
    at = page()
    headers = list(table(at).columns)
    assert not [h for h in headers if "_" in h], headers
    text = " ".join(str(e.value) for kind in ("markdown", "caption") for e in getattr(at, kind))
    assert "GiB" not in text
    for chart in at.get("plotly_chart")[:5]:  # the sweep's charts: hover labels and legends in words
        assert "cost_per_endpoint_usd=" not in chart.proto.spec and "kind=" not in chart.proto.spec

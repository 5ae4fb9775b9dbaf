"""The Training cost page (`dashboard/views/training.py`), driven by Streamlit's AppTest: its numbers are the
analytic model's, its state is the URL's, and bad input is an st.error, never an exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from simulator.analytic.report import estimate
from simulator.names import CP_COMM_MODES
from simulator.runspec import build_run
from simulator.schedules import SCHEDULES
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
    assert shown["GPU-hours"] == "2,354K"  # docs/training.md: the V3 figure
    assert any("2,664K" in c.value and "out of sample" in c.value for c in at.caption)  # the published figure
    from simulator.explore.uncertainty import uncertainty
    from simulator.runspec import build_run

    band = uncertainty(build_run({}))["gpu_hours"]
    shown_band = f"{band['p10'] / 1e3:,.0f}K-{band['p90'] / 1e3:,.0f}K GPU-hours"
    assert any(shown_band in c.value for c in at.caption)  # the P10-P90 band, as the model computes it


def test_the_kernels_v3_ran_are_a_choice_of_the_page():
    """The FP8 GEMMs V3 ran (h800-v3-cutlass, its validate row's profile): the page prices V3 with them as
    `estimate` does, slower than today's kernels (docs/training.md: 2,472K against 2,354K)."""
    at = page(profile="h800-v3-cutlass")
    assert not at.exception and not at.error
    r = estimate(build_run({}), "h800-v3-cutlass")
    assert metrics(at)["GPU-hours"] == f"{r.gpu_hours / 1e3:,.0f}K" == "2,472K"


def test_widgets_change_the_numbers_exactly_as_the_simulator_does():
    at = page()
    at.number_input(key="pp").set_value(32).run()
    at.selectbox(key="ep").set_value(32).run()
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
    assert at.selectbox(key="ep").disabled  # a dense model: no experts to spread
    assert "EP1 " in next(c.value for c in at.caption if c.value.startswith("Priced:"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pp": 8}, "GB per GPU"),  # V3 at PP8 with TP1, ZeRO-1, selective recomputation does not fit an H800
        ({"gpus": 100}, "not a multiple of 8"),
    ],
)
def test_bad_combinations_are_an_error_that_says_what_to_change(changes, message):
    at = page(tp=1, zero=1, recompute="selective")  # given, not left to the engine: nothing is chosen for them
    for key, value in changes.items():
        at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value


def test_an_ep_the_experts_do_not_split_into_is_not_offered():
    at = page(ep=48)
    assert not at.exception and not at.error
    assert any("?ep=48" in w.value and "not one of this widget's choices" in w.value for w in at.warning)
    assert "48" not in at.selectbox(key="ep").options and "64" in at.selectbox(key="ep").options


@given(
    st.fixed_dictionaries(
        {
            "gpus": st.sampled_from([8, 64, 512, 1024, 2048, 4096, 100]),
            "pp": st.sampled_from([1, 2, 4, 8, 16, 32, 61, 64]),
            "mb": st.sampled_from([1, 2, 4]),
            "over": st.sampled_from([1.0, 2.0, 3.0]),
        }
    ),
    st.sampled_from(["1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev"]),
    st.sampled_from(["deepseek-v3", "mixtral-8x7b", "llama-3.1-8b"]),
    st.sampled_from(["auto", 1, 2, 4, 8]),
    st.sampled_from(["auto", 1, 8]),
)
@settings(max_examples=15, deadline=None)
def test_random_widget_values_never_raise(numbers, schedule, model, tp, ep):
    at = page()
    at.selectbox(key="model").set_value(model).run()
    at.selectbox(key="schedule").set_value(schedule).run()
    for key, value in numbers.items():
        at.number_input(key=key).set_value(value)
    at.selectbox(key="tp").set_value(tp)
    if at.selectbox(key="ep").options != ["auto", "1"]:
        at.selectbox(key="ep").set_value(ep)
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


def test_async_checkpoints_and_hot_spares_on_the_page_are_run_goodputs():
    """The page's async checkpoints and dedicated pool (from the URL) give `run_goodput`'s figures; the interval
    chart is `gpu_hours_by_interval`'s, blank where an async write would not end in time."""
    import numpy as np

    from simulator.analytic.goodput import Reliability, gpu_hours_by_interval, run_goodput

    at = page(checkpointing="async", pool="true", spares=3, repair=36.0)
    assert not at.exception and not at.error
    r = estimate(build_run({}), "published")
    inputs = Reliability(checkpointing="async", spare_nodes=3, repair_h=36.0)
    want = run_goodput(build_run({}), r.days * 86400, r.gpu_hours, r.cost_usd, inputs)
    shown = metrics(at)
    assert shown["Expected GPU-hours"] == f"{want['expected_gpu_hours'] / 1e3:,.0f}K"
    assert shown["Goodput"] == f"{want['goodput']:.1%}"
    caption = next(c.value for c in at.caption if "failures expected" in c.value)
    assert "written in" in caption and "3 hot spare nodes" in caption
    assert f"finds none free {want['spares']['shortfall_probability']:.1%}" in caption
    at.checkbox(key="pool").uncheck().run()
    assert not at.exception and "hot spare" not in next(c.value for c in at.caption if "failures expected" in c.value)
    curve = gpu_hours_by_interval(want, r.days * 86400, r.gpu_hours, np.array([1.0, 600.0, 1e9]))
    assert np.isnan(curve[0]) and curve[1] > want["expected_gpu_hours"] * (1 - 1e-9) and curve[2] > curve[1]


def test_goodput_at_scale_is_the_scale_study_for_the_pages_run():
    """Goodput at scale (behind a checkbox: the first study in a process routes fabrics up to 131,072 GPUs): the
    table is `goodput_scale`'s for the page's run, restart times and failure inputs, and the caption says where
    its rows put the crossover; a new restart time adds its own columns."""
    from simulator.explore.scale import crossovers, goodput_scale

    at = page()
    assert not at.exception and not any("Failures overtake" in c.value for c in at.caption)  # off by default
    at.checkbox(key="scale").check().run()
    assert not at.exception and not at.error and not at.warning
    assert at.query_params["scale"] in (["true"], "true")  # the view is in the URL
    run = {"model": "deepseek-v3", "node": "h800-ib", "tp": 1, "pp": 16, "ep": 64, "schedule": "dualpipe"}
    for restart, restarts in ((150.0, (150.0, 600.0)), (300.0, (300.0, 150.0, 600.0))):
        if restart != 150.0:
            at.number_input(key="restart").set_value(restart).run()
            assert not at.exception and not at.warning
        rows = goodput_scale(restarts_s=restarts, topology="fat-tree-3", radix=128, **run)
        table = at.dataframe[-2].value  # the study's table; the inputs' table is last
        assert table["GPUs"].tolist() == [r["gpus"] for r in rows] == [1024 * 2**k for k in range(8)]
        assert table["steady days"].tolist() == [r["steady_days"] for r in rows]
        assert table["exposed network (share of a step)"].tolist() == [r["exposed_network_share"] for r in rows]
        assert table["interval (min)"].tolist() == [r["interval_min"] for r in rows]
        for s in restarts:
            assert table[f"goodput, {s:g} s restarts"].tolist() == [r["goodput"][s] for r in rows]
            assert table[f"failures' share, {s:g} s"].tolist() == [r["failure_share"][s] for r in rows]
        (caption,) = [c.value for c in at.caption if "Failures overtake" in c.value]
        assert crossovers(rows)[600.0] == (65536, 131072) and crossovers(rows)[150.0] is None
        assert "between 65,536 and 131,072 GPUs with 600 s restarts" in caption
        assert "not at or below 131,072 GPUs with 150 s restarts" in caption


def test_the_whole_run_is_the_plan_priced_on_the_pages_run():
    """The whole run (behind a checkbox): at the defaults the table is V3's plan and the figures are
    `price_plan`'s for it; the table round-trips to the plan; a bad cell is one error naming it."""
    import pandas as pd

    from dashboard.plan import plan_frame, plan_of
    from simulator.analytic.runplan import price_plan
    from simulator.runplan import load_plan, plan_from_dict

    want = price_plan(load_plan("deepseek-v3"), "published")  # the page's kernel profile, not the plan's own
    at = page(plan="true")
    assert not at.exception and not at.error
    assert metrics(at)["Whole-run GPU-hours"] == f"{want['total']['gpu_hours'] / 1e3:,.0f}K"
    assert any("context extension" in c.value and "-16.7%" in c.value for c in at.caption)
    table = next(d for d in at.dataframe if "cp_comm" in d.value.columns)  # the plan's editor
    assert list(table.value["cp_comm"][1:3]) == ["ring", "all-to-all"]  # the 128K phase's exchange is kept
    config = json.loads(table.proto.columns)  # named choices are pick-lists, not free text
    assert config["cp_comm"]["type_config"]["options"] == list(CP_COMM_MODES)
    assert config["schedule"]["type_config"]["options"] == list(SCHEDULES)
    frame = plan_frame()
    again = price_plan(plan_from_dict(plan_of(frame, {})), "published")
    assert again["total"]["gpu_hours"] == want["total"]["gpu_hours"]
    bad = frame.copy()
    bad.loc[1, "batch_sequences"] = 7
    with pytest.raises(ValueError, match=r"context extension 32K.*does not split"):
        price_plan(plan_from_dict(plan_of(bad, {})))
    empty_row = pd.concat([frame, pd.DataFrame([{}])], ignore_index=True)  # the editor's "add row", left blank
    assert price_plan(plan_from_dict(plan_of(empty_row, {})))["total"] == want["total"]


def test_context_parallelism_on_the_page_is_the_models():
    at = page(cp=2)
    assert not at.exception and not at.error
    assert metrics(at)["Step time"] == f"{estimate(build_run({'cp': 2}), 'published').step_time_s:.2f} s"
    at = page(cp=3)
    shown = at.error[0].value.replace("\\*", "*")  # st.error shows text as Markdown: asterisks escaped
    assert len(at.error) == 1 and "tp*cp*pp=48 must divide gpus=2048" in shown


def test_cuda_graphs_on_the_page_are_the_models():
    """A small MoE on one B200 node waits for its eager launches (README: Host launch time); graphs give it back."""
    run = {"model": "qwen3-30b-a3b", "node": "b200-ib", "gpus": 8, "pp": 1, "ep": 8, "schedule": "1f1b"}
    steps = {}
    for scope in ("none", "full"):
        at = page(model="qwen3-30b-a3b", node="b200-ib", gpus=8, pp=1, ep=8, schedule="1f1b", graphs=scope)
        assert not at.exception and not at.error
        steps[scope] = metrics(at)["Step time"]
        assert steps[scope] == f"{estimate(build_run({**run, 'cuda_graphs': scope}), 'published').step_time_s:.2f} s"
    assert float(steps["none"].split()[0]) > float(steps["full"].split()[0])


def test_the_fp8_scaling_on_the_page_is_the_models():
    """Per-tensor FP8 prices the dense GEMMs as cuBLAS's scaled GEMM timed on the H100 (README: FP8 recipes);
    MXFP8 on a Hopper is an error that names the fix."""
    run = {"model": "llama-3.1-8b", "node": "h100-ib", "gpus": 64, "pp": 1, "schedule": "1f1b"}
    for recipe in ("block", "tensor"):
        at = page(model="llama-3.1-8b", node="h100-ib", gpus=64, pp=1, schedule="1f1b", fp8recipe=recipe)
        assert not at.exception and not at.error
        want = estimate(build_run({**run, "fp8_recipe": recipe}), "published").step_time_s
        assert metrics(at)["Step time"] == f"{want:.2f} s"
    at = page(model="llama-3.1-8b", node="h100-ib", gpus=64, pp=1, schedule="1f1b", fp8recipe="mx")
    assert not at.exception and len(at.error) == 1 and "block or tensor" in at.error[0].value


def test_every_catalog_model_answers_on_h100_and_h800_at_the_defaults():
    """Only the model and the GPU changed, as a new user would: GPU-hours and no error for every catalog
    model, the figures `fitting_run` gives (where V3's memory settings do not fit, the engine's fitting choice,
    said in a note)."""
    from simulator.analytic.fitting import fitting_run
    from workloads.registry import model_slugs

    at = page()
    for node in ("h100-ib", "h800-ib"):
        at.selectbox(key="node").set_value(node).run()
        for model in model_slugs():
            at.selectbox(key="model").set_value(model).run()
            assert not at.exception and not at.error, (node, model, [e.value for e in at.error])
            fitted = fitting_run(build_run({"model": model, "node": node}), "published")
            want = estimate(fitted.run, "published")
            assert metrics(at)["GPU-hours"] == f"{want.gpu_hours / 1e3:,.0f}K", (node, model)
            notes = [i.value for i in at.info if "The engine chose" in i.value]
            assert bool(notes) == bool(fitted.note), (node, model)
            assert at.query_params.get("ep") in (None, [], ["auto"], "auto")  # V3's EP 64 is not carried over


def test_changing_the_model_resets_what_depends_on_it():
    at = page()
    at.selectbox(key="ep").set_value(32).run()
    at.number_input(key="seq").set_value(8192).run()
    at.selectbox(key="model").set_value("mixtral-8x7b").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="ep").value == "auto" and at.number_input(key="seq").value == 4096
    at.selectbox(key="model").set_value("mixtral-8x7b").run()  # the same model again: nothing reset
    at.selectbox(key="ep").set_value(4).run()
    at.number_input(key="pp").set_value(8).run()
    assert at.selectbox(key="ep").value == 4


def test_sequence_global_batch_zero_and_recomputation_are_the_models():
    at = page(seq=8192, batch=7680, zero=2, recompute="full", pp=16)
    assert not at.exception and not at.error
    want = estimate(
        build_run({"seq_len": 8192, "global_batch_tokens": 7680 * 8192, "zero_stage": 2, "recompute": "full"}),
        "published",
    )
    assert metrics(at)["Step time"] == f"{want.step_time_s:.2f} s"
    assert at.number_input(key="seq").max == 163840  # V3's longest context (its config.json)


def test_the_answer_comes_first_with_the_published_runs_and_what_moves_it():
    from simulator.explore.sensitivity import sensitivity

    at = page()
    first = at.markdown[0].value
    assert "2,354K GPU-hours" in first and "largest overhead is the exposed expert-parallel all-to-all" in first
    assert any("published 2,664K, v3sim 2,354K (-11.7%, out of sample)" in c.value for c in at.caption)
    from simulator.explore.validate import regime_summary, training_run_rows

    hopper_moe = next(g for g in regime_summary(training_run_rows()) if g["regime"] == "training, Hopper, MoE")
    record = (f"On the {hopper_moe['rows']} published training runs of this kind (training, Hopper, MoE), v3sim's "
              f"speed against what ran: median {hopper_moe['median_speed_error']:+.1%}")  # fmt: skip
    assert any(record in c.value for c in at.caption)
    top = next(r for r in sensitivity(build_run({})) if r["input"] != "price per GPU-hour")
    assert any(f"the **{top['input']}** moves the bill most" in m.value for m in at.markdown)
    at.selectbox(key="model").set_value("llama-3.1-8b").run()
    assert "llama-3.1-8b" in at.markdown[0].value and not at.error  # a dense model's tornado has no expert rows
    assert any("Published runs of this model" in c.value and "Llama 3" in c.value for c in at.caption)
    at.selectbox(key="model").set_value("qwen2.5-72b").run()
    assert any("No published training run of qwen2.5-72b" in c.value and "(training, Hopper, dense)" in c.value
               for c in at.caption)  # fmt: skip


def test_a_pinned_baseline_gives_every_metric_its_delta_and_scenarios_sit_side_by_side():
    at = page()
    at.button(key="pin").click().run()
    at.number_input(key="pp").set_value(32).run()
    assert not at.exception and not at.error
    base = estimate(build_run({}), "published")
    now = estimate(build_run({"pp": 32}), "published")
    gpu_hours = next(m for m in at.metric if m.label == "GPU-hours")
    assert gpu_hours.delta == f"{now.gpu_hours / base.gpu_hours - 1:+.1%}"
    at.text_input(key="scenario_name").set_value("PP32").run()
    at.button(key="pin").click().run()
    (table,) = [d.value for d in at.dataframe if d.value.columns[0] == "metric"]
    assert list(table.columns) == ["metric", "Scenario A", "PP32", "this run"]
    assert (
        table.loc[table["metric"] == "GPU-hours", "PP32"]
        .item()
        .endswith(f"({now.gpu_hours / base.gpu_hours - 1:+.1%})")
    )
    assert any("PP32 vs Scenario A: PP 16 → 32" in c.value for c in at.caption)
    for _ in range(2):
        at.button(key="pin").click().run()
    assert at.button(key="pin").disabled  # four at most
    at.button(key="unpin").click().run()
    assert not any(m.delta for m in at.metric if m.label == "GPU-hours")


def test_a_run_saved_as_toml_is_what_v3sim_train_spec_runs_and_opens_back(tmp_path, capsys):
    import json

    from simulator.cli import main
    from simulator.runspecfile import load_spec_text, spec_toml

    options = {"model": "mixtral-8x7b", "node": "h100-ib", "gpus": 512, "pp": 8, "schedule": "1f1b", "tokens": 2e12}
    at = page(model="mixtral-8x7b", node="h100-ib", gpus=512, pp=8, schedule="1f1b", tokens=2.0)
    assert not at.exception and not at.error
    shown = metrics(at)
    text = spec_toml(load_spec_text(spec_toml(options), "x"))
    path = tmp_path / "run.toml"
    path.write_text(text)
    assert main(["train", "--spec", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert f"{out['gpu_hours'] / 1e3:,.0f}K" == shown["GPU-hours"]
    # Opened on the page (its options become the URL's keys, as the Open button writes them): the same run
    from dashboard import scenarios

    url = {}
    for field, value in load_spec_text(text, "run.toml").items():
        key, to_url = scenarios.URL_KEYS[field]
        url[key] = to_url(value)
    assert metrics(page(**url))["GPU-hours"] == shown["GPU-hours"]

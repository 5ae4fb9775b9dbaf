"""`simulator.analytic.fitting`: where the memory settings a caller left to V3's defaults do not fit the GPU,
the fitting TP / ZeRO / recomputation with the fewest GPU-hours, said in a note; what the caller gave is kept."""

from __future__ import annotations

import json
from dataclasses import fields
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.analytic.fitting import FREE, RECOMPUTE_CHOICES, TP_CHOICES, ZERO_CHOICES, _fits, fitting_run
from simulator.analytic.report import estimate
from simulator.cli import main
from simulator.runspec import RunSpec, build_run
from workloads.registry import model_slugs


def test_a_run_that_fits_is_returned_as_it_is():
    run = build_run({})
    fitted = fitting_run(run)
    assert fitted.run is run and fitted.note == "" and fitted.chosen == {}


def test_the_fitting_choice_is_the_cheapest_that_fits():
    """Llama 3.1 70B on 2,048 H100 with V3's TP1 / ZeRO-1 / selective recomputation needs 107 GB per GPU; every
    combination is priced here by brute force, and the engine's choice is the one with the fewest GPU-hours."""
    run = build_run({"model": "llama-3.1-70b", "gpu": "h100"})
    assert not _fits(run)
    fitted = fitting_run(run)
    assert _fits(fitted.run) and fitted.note.startswith("chose ") and "107 GB per GPU" in fitted.note
    best = min(
        estimate(run.with_(tp=tp, zero_stage=z, recompute=rc)).gpu_hours
        for tp, z, rc in product(TP_CHOICES, ZERO_CHOICES, RECOMPUTE_CHOICES)
        if _fits(run.with_(tp=tp, zero_stage=z, recompute=rc))
    )
    assert estimate(fitted.run).gpu_hours == pytest.approx(best, rel=1e-12)
    assert set(fitted.chosen) <= {*FREE, "global_batch_tokens"} and fitted.chosen
    assert fitted.run.defaults == run.defaults  # still the caller's defaults: explain lists them so


def test_what_the_caller_gave_is_never_changed():
    run = build_run({"model": "llama-3.1-70b", "gpu": "h100", "zero_stage": 1, "recompute": "selective"})
    fitted = fitting_run(run)
    assert fitted.run.zero_stage == 1 and fitted.run.recompute == "selective"
    assert set(fitted.chosen) <= {"tp", "global_batch_tokens"} and fitted.run.tp > 1
    given_all = build_run({"model": "llama-3.1-70b", "gpu": "h100", "tp": 1, "zero_stage": 1, "recompute": "selective"})
    assert fitting_run(given_all).run is given_all  # nothing left to choose: estimate names the fix


def test_a_run_nothing_fits_is_returned_unchanged_and_refused_by_estimate():
    run = build_run({"model": "llama-3.1-405b", "gpu": "h100", "gpus": 16, "pp": 2, "schedule": "1f1b"})
    fitted = fitting_run(run)
    assert fitted.run is run and not fitted.note
    with pytest.raises(ValueError, match="GB per GPU"):
        estimate(run)


def test_a_default_global_batch_follows_the_chosen_data_parallel_width():
    """TP2 halves dp: a batch left to its default is rebuilt for the new width (as `build_run` would)."""
    run = build_run({"model": "deepseek-v3", "gpu": "a100"})  # V3's weights do not fit an A100 at TP1
    fitted = fitting_run(run)
    assert (
        fitted.run.tp == 2 and build_run({"gpu": "a100", "tp": 2}).global_batch_tokens == fitted.run.global_batch_tokens
    )


@given(
    st.sampled_from(model_slugs()),
    st.sampled_from(["h100", "h800", "a100", "h20", "b200", "mi300x"]),
    st.sampled_from([256, 512, 1024, 2048]),
)
@settings(max_examples=25, deadline=None)
def test_the_engine_changes_only_memory_settings_left_to_it_and_only_to_fit(model, gpu, gpus):
    try:
        run = build_run({"model": model, "gpu": gpu, "gpus": gpus})
    except ValueError:
        return
    fitted = fitting_run(run)
    if fitted.run is run:
        return
    assert not _fits(run) and _fits(fitted.run)
    for f in fields(RunSpec):
        if f.name not in (*FREE, "global_batch_tokens", "stage_layers"):
            assert getattr(fitted.run, f.name) == getattr(run, f.name), f.name


def test_train_takes_the_fitting_choice_and_says_so(capsys):
    assert main(["train", "--model", "llama-3.1-70b", "--gpu", "h100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run"]["zero_stage"] == 2 and out["notes"][0].startswith("chose ZeRO 2")
    assert main(["train", "--model", "llama-3.1-70b", "--gpu", "h100"]) == 0
    assert "note: the engine chose ZeRO 2" in capsys.readouterr().out
    assert main(["train", "--model", "llama-3.1-70b", "--gpu", "h100", "--zero", "1", "--recompute", "selective",
                 "--tp", "1"]) == 2  # fmt: skip
    assert "GB per GPU" in capsys.readouterr().err

"""`v3sim validate`'s serving section: published serving results (simulator/data/published_serving.toml) beside
what `v3sim serve` predicts for the same deployment, each with its source, quote and sample flag."""

from __future__ import annotations

from dataclasses import replace

import pytest

from simulator.analytic.serving import serve
from simulator.explore.servingvalidate import (
    METRICS,
    _mtp_chain_ok,
    chain_acceptance,
    offline_figure,
    pose,
    published_result,
    published_serving,
    serving_rows,
)
from simulator.explore.validate import tolerance, validation_rows

RESULTS = published_serving()


def test_at_least_six_published_serving_results_each_with_its_source_and_quote():
    assert len(RESULTS) >= 6
    assert len({r["id"] for r in RESULTS}) == len(RESULTS)
    for r in RESULTS:
        assert r["source"].strip() and r["quote"].strip() and r["published"] > 0, r["id"]
        assert isinstance(r["in_sample"], bool)
    assert len({(r["gpu"], r["metric"]) for r in RESULTS}) >= 4  # more than one GPU and metric


@pytest.fixture(scope="module")
def rows() -> dict:
    return {r["id"]: r for r in serving_rows(tolerance("serving_run"))}


@pytest.mark.parametrize("result", RESULTS, ids=[r["id"] for r in RESULTS])
def test_each_prediction_is_serve_for_the_deployment_as_published(result, rows):
    spec, phase = pose(result)
    assert phase == METRICS[result["metric"]][0]
    assert spec.node.gpu.name == result["gpu"] and spec.model.name == result["model"]
    for key in ("tp", "ep", "prefill_ep", "redundant"):
        if key in result:
            assert getattr(spec, key) == result[key], key
    for key in ("weight_dtype", "kv_dtype", "attention_dtype"):  # the dtypes a source names are the ones posed
        if key in result:
            assert getattr(spec, key) == result[key], key
    row = rows[result["id"]]
    if "requests" in result:  # an offline benchmark: its run in the event model (test_serving_offline.py)
        assert spec.colocated and row["predicted"] == offline_figure(result["id"])
        assert f"{result['requests']:,} requests queued at once" in row["note"]
    else:
        assert row["predicted"] == pytest.approx(
            METRICS[result["metric"]][1](serve(spec, result.get("profile"), phase)), rel=1e-12
        )
    assert row["rel_error"] == pytest.approx(row["predicted"] / result["published"] - 1)


def test_the_rows_are_in_validate_with_the_issues_tolerance():
    serving = [r for r in validation_rows() if r["figure"] in {x["figure"] for x in RESULTS}]
    assert len(serving) == len(RESULTS) and all(r["tolerance"] == 0.25 for r in serving)


def test_the_balanced_prefill_runs_land_where_the_default_router_does_not(rows):
    """SGLang's blog ran one 32-H100 prefill with its default EPLB (50,302 tokens/s per node) and with simulated
    perfect EPLB (59,337), and read DeepSeek's balanced-routing prefill trace at 62,713. v3sim's router is
    balanced: it poses both SGLang runs alike, the balanced runs are the ones its pricing answers for, and a
    skewed router (the busiest GPU's experts and all-to-all at 1.2 x the mean) brings the default run closer."""
    default, balanced = rows["sglang-h100-prefill-4k"], rows["sglang-h100-prefill-4k-balanced"]
    assert default["predicted"] == balanced["predicted"]
    for rid in ("sglang-h100-prefill-4k-balanced", "deepseek-profile-prefill-h800"):
        assert abs(rows[rid]["rel_error"]) <= 0.25, rid  # measured +16.5% and +10.3% (2026-12-06)
    assert abs(default["rel_error"]) > abs(balanced["rel_error"])  # measured +37.5%
    spec, phase = pose(published_result("sglang-h100-prefill-4k"))
    skewed = serve(replace(spec, expert_imbalance=1.2), phase=phase)
    assert default["published"] < skewed["input_tokens_per_s_per_node"] < default["predicted"]


def test_a_published_acceptance_length_is_posed_as_one_rate_per_draft():
    """SGLang publishes a mean acceptance length (tokens a step emits, its own included), not a rate per depth:
    v3sim poses the one rate whose chain of drafts emits that many."""
    assert chain_acceptance(1, 1.85) == pytest.approx(0.85)
    a = chain_acceptance(3, 2.18)
    assert 0 < a < 1 and sum(a**i for i in range(4)) == pytest.approx(2.18)
    assert chain_acceptance(2, 3.0) == 1.0  # every draft accepted
    spec, _ = pose(published_result("sglang-h200-ep16-64k-mtp3"))
    assert spec.mtp_tokens == 3 and spec.tokens_per_step == pytest.approx(2.18)
    ok = {"mtp": True, "mtp_tokens": 3, "mtp_accept_length": 2.18}
    assert _mtp_chain_ok(ok)
    for bad in ({"mtp": False}, {"mtp_tokens": 0}, {"mtp_tokens": 2.5}, {"mtp_accept_length": 4.5},
                {"mtp_accept_length": 1.0}, {"mtp_accept_length": "2"}):  # fmt: skip
        assert not _mtp_chain_ok(ok | bad), bad


def test_the_scheduler_overlapped_run_is_the_one_v3sim_prices(rows):
    """SGLang ran one 16-H200 decode with and without its overlap scheduler (60.4 and 51.0 tokens/s per rank):
    v3sim prices no CPU scheduling, so it poses both alike and lands nearer the overlapped run."""
    plain, overlapped = rows["sglang-h200-ep16-64k-nomtp"], rows["sglang-h200-ep16-64k-overlap"]
    assert plain["predicted"] == overlapped["predicted"]
    assert 0 < overlapped["rel_error"] < plain["rel_error"]  # measured +11.8% and +32.4% (2026-12-06)
    mtp = [rows[f"sglang-h200-ep16-64k-mtp{n}"] for n in (3, 4)]
    assert all(r["in_sample"] for r in mtp)  # their acceptance lengths are those runs' own
    assert all(r["predicted"] > plain["predicted"] for r in mtp)  # more tokens a step than the step costs more


def test_a_result_may_give_its_decode_batch_per_instance():
    """AIConfigurator's silicon reference of R1 on 8 B200 under attention TP8 runs 4 sequences on the whole
    instance: half a sequence per GPU, as `serve --batch-per-instance 4` poses it."""
    r = published_result("aic-r1-b200-sglang-tp8-c4")
    spec, phase = pose(r)
    assert phase == "decode" and spec.batch_per_instance == 4 and spec.decode_batch == pytest.approx(0.5)
    eight = serve(replace(spec, batch_per_instance=8), r.get("profile"), phase)["tpot_s"]
    one_each = serve(replace(spec, batch_per_instance=None, batch=1), r.get("profile"), phase)["tpot_s"]
    assert eight == pytest.approx(one_each)  # the same step: 8 on 8 GPUs is one sequence on each
    assert serve(spec, r.get("profile"), phase)["tpot_s"] < eight  # and 4 is a shorter one

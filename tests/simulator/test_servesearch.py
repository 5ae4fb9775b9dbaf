"""The deployment search (`simulator.explore.servesearch`, `v3sim serve-search`; issue 21 item 6): V3 on H800
under a 50 ms TPOT finds a deployment at least as good as DeepSeek's published one, every EP size is tried,
every ranked candidate meets the target, the frontier is Pareto, dense models search TP, bad input is one line."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.analytic.serving import serve
from simulator.cli import main
from simulator.explore.servesearch import (
    PUBLISHED,
    decode_layouts,
    ep_sizes,
    prefill_layouts,
    search,
    slot_choices,
)
from simulator.presets import deployment

TPOT_MS = 50.0


@pytest.fixture(scope="module")
def v3():
    """V3 on H800 under 50 ms TPOT, every candidate kept."""
    return search(tpot_ms=TPOT_MS)


def test_v3_beats_or_equals_deepseeks_published_deployment(v3):
    best, published = v3.ranked[0], v3.published
    assert published is not None and published["published"]
    assert best["output_tokens_per_s_per_gpu"] >= published["output_tokens_per_s_per_gpu"]
    assert best["usd_per_million_output_tokens"] <= published["usd_per_million_output_tokens"]
    # the published deployment as `v3sim serve` prices it at the same SLO: the same numbers
    layout = {k: PUBLISHED[k] for k in ("tp", "ep", "redundant", "prefill_ep", "prefill_redundant")}
    out = serve(deployment(tpot_ms=TPOT_MS, mtp_acceptance=PUBLISHED["mtp_acceptance"], **layout))
    for key in ("output_tokens_per_s_per_gpu", "usd_per_million_output_tokens", "tpot_s", "batch_per_gpu"):
        assert published[key] == out[key]
    assert published["input_tokens_per_s_per_gpu"] == out["input_tokens_per_s_per_gpu"]


def test_the_published_layout_is_among_the_candidates_tried(v3):
    base = deployment(tpot_ms=TPOT_MS)
    decode = {k: PUBLISHED[k] for k in ("tp", "ep", "redundant", "mtp_acceptance")}
    assert decode in decode_layouts(base, 0.85)
    assert (PUBLISHED["prefill_ep"], PUBLISHED["prefill_redundant"]) in prefill_layouts(base)
    assert sum(r["published"] for r in v3.ranked) == 1


def test_every_ep_size_in_whole_nodes_up_to_320_is_tried(v3):
    assert set(range(8, 321, 8)) <= set(v3.eps_tried) and {1, 2, 4} <= set(v3.eps_tried)
    assert max(v3.eps_tried) == 320
    assert v3.tried == len(decode_layouts(deployment(tpot_ms=TPOT_MS), 0.85))
    assert v3.tried == len(v3.ranked) + sum(v3.skipped.values())
    assert {r["mtp"] for r in v3.ranked} == {False, True} and {r["tp"] for r in v3.ranked} == {1, 2, 4, 8}


def test_slot_choices_are_the_fewest_and_more_where_they_divide():
    assert slot_choices(256, 144) == [32]  # DeepSeek's decode: 288 slots, 2 per GPU
    assert slot_choices(256, 32) == [0, 32, 64]  # its prefill runs EP32 + 32
    assert slot_choices(256, 320) == [64]
    assert ep_sizes(8, 8) == [1, 2, 4, 8, 16]  # Mixtral: never past two slots per expert
    assert ep_sizes(0, 8) == [1]


def test_every_ranked_candidate_meets_the_tpot_target_and_the_ranking_is_by_cost(v3):
    assert all(r["tpot_s"] <= TPOT_MS / 1e3 for r in v3.ranked)
    costs = [r["usd_per_million_output_tokens"] for r in v3.ranked]
    assert costs == sorted(costs) and [r["rank"] for r in v3.ranked] == list(range(1, len(v3.ranked) + 1))


def test_a_candidate_is_priced_as_serve_prices_it(v3):
    row = v3.ranked[0]
    layout = {k: row[k] for k in ("tp", "ep", "redundant", "prefill_ep", "prefill_redundant", "mtp_acceptance")}
    out = serve(deployment(tpot_ms=TPOT_MS, **layout))
    for key in ("output_tokens_per_s_per_gpu", "tpot_s", "batch_per_gpu", "input_tokens_per_s_per_gpu"):
        assert row[key] == out[key]


def _at_least(a: dict, b: dict) -> bool:
    return all(a[k] >= b[k] for k in ("output_tokens_per_s_per_gpu", "output_tokens_per_s_per_user"))


def test_the_frontier_is_pareto(v3):
    assert v3.frontier and all(p["frontier"] for p in v3.frontier)
    for point in v3.frontier:  # no candidate dominates a frontier point
        assert not any(_at_least(r, point) and r is not point and not _at_least(point, r) for r in v3.ranked)
    for row in v3.ranked:  # and each candidate is matched or beaten by one
        assert any(_at_least(p, row) for p in v3.frontier)


def test_a_request_mix_sizes_the_prefill_pool():
    report = search(tpot_ms=TPOT_MS, output_tokens=1024, cache_hit=0.563, top=3)
    best = report.ranked[0]
    assert len(report.ranked) == 3 and 0 < best["prefill_gpus_per_decode_gpu"] < 2 and best["usd_per_request"] > 0


def test_a_dense_model_searches_tp_layouts():
    report = search("qwen2.5-72b", tpot_ms=TPOT_MS)
    assert report.eps_tried == (1,) and report.published is None
    assert {r["ep"] for r in report.ranked} == {1} and not any(r["mtp"] for r in report.ranked)
    assert len({r["tp"] for r in report.ranked}) >= 2 and {r["tp"] for r in report.ranked} <= {1, 2, 4, 8}


def test_the_checkpoints_fp8_scaling_reaches_every_candidate(capsys):
    """`serve-search --fp8-recipe` (a step option, as `serve` takes it): under TensorRT-LLM a per-tensor FP8
    checkpoint's GEMMs are cuBLAS's scaled GEMM, a block one's TensorRT-LLM's own 1x128 kernel on Hopper."""
    kw = {"gpu": "h200", "tpot_ms": TPOT_MS, "engine": "trtllm", "top": 1}
    block, tensor = (search("llama-3.1-70b", **kw, fp8_recipe=r).ranked[0] for r in ("block", "tensor"))
    assert tensor["tp"] == block["tp"] and tensor["tpot_s"] != block["tpot_s"]
    spec = deployment("llama-3.1-70b", "h200", tp=tensor["tp"], batch=tensor["batch_per_gpu"], engine="trtllm",
                      fp8_recipe="tensor")  # fmt: skip
    assert serve(spec, None, "decode")["tpot_s"] == pytest.approx(tensor["tpot_s"])
    argv = ["serve-search", "--model", "llama-3.1-70b", "--gpu", "h200", "--tpot-ms", str(TPOT_MS), "--engine",
            "trtllm", "--fp8-recipe", "tensor", "--top", "1", "--json"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["ranked"][0]["tpot_s"] == pytest.approx(tensor["tpot_s"])


def test_cli_prints_the_table_and_the_published_line(capsys):
    assert main(["serve-search", "--tpot-ms", "50", "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "DeepSeek's published deployment (EP144 +32, prefill EP32) as priced here" in text
    assert "best found" in text and "x better" in text and "EP144+32 / TP1" in text
    assert main(["serve-search", "--tpot-ms", "50", "--top", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["ranked"]) == 2 and out["published"]["ep"] == 144 and out["tpot_target_s"] == 0.05


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--tpot-ms"),
        (["--tpot-ms", "0"], "must be positive"),
        (["--tpot-ms", "1"], "no deployment of deepseek-v3 on h800-ib meets TPOT 1 ms"),
        (["--tpot-ms", "50", "--model", "qwen2.5-72b", "--mtp-acceptance", "0.9"], "no multi-token prediction"),
        (["--tpot-ms", "50", "--gpu", "nope"], "no catalog node has a nope GPU"),
        (["--tpot-ms", "50", "--top", "0"], "not a positive integer"),
        (["--tpot-ms", "50", "--cache-hit", "2"], "between 0 and 1"),
        (["--tpot-ms", "50", "--model", "gpt-17"], "gpt-17"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(["serve-search", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


JUNK = st.sampled_from(["", "nan", "inf", "-1", "0", "abc", "1e400", "\x1b[2J"])
OPTIONS = {
    "--model": st.one_of(st.sampled_from(["deepseek-v3", "qwen2.5-72b", "mixtral-8x7b", "llama-3.1-8b"]), JUNK),
    "--gpu": st.one_of(st.sampled_from(["h800", "h100", "gb200", "a100", "mi300x"]), JUNK),
    "--ttft-ms": st.one_of(st.floats(1, 1e5).map(repr), JUNK),
    "--context": st.one_of(st.sampled_from(["512", "4096", "131072", "1048577"]), JUNK),
    "--output-tokens": st.one_of(st.sampled_from(["1", "1024", "4096"]), JUNK),
    "--cache-hit": st.one_of(st.floats(0, 1).map(repr), JUNK),
    "--mtp-acceptance": st.one_of(st.floats(0, 1).map(repr), JUNK),
    "--top": st.one_of(st.integers(1, 500).map(str), JUNK),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tpot=st.one_of(st.floats(1, 1e3).map(repr), JUNK),
    chosen=st.lists(st.sampled_from(sorted(OPTIONS)), max_size=3, unique=True),
    data=st.data(),
)
def test_fuzz_the_command_line(capsys, tpot, chosen, data):
    """Random options: strict JSON whose ranked rows meet the target, or one line with exit 2."""
    argv = ["serve-search", "--tpot-ms", tpot, "--json"]
    for option in chosen:
        argv += [option, data.draw(OPTIONS[option])]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, err)
    if code == 2:
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err
        return
    report = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the output"))
    assert report["ranked"] and all(r["tpot_s"] <= report["tpot_target_s"] for r in report["ranked"])


def test_a_colocated_search_ranks_one_pool_per_layout_as_serve_prices_it(capsys):
    """`serve-search --colocated`: each layout one pool whose decode steps carry the prompts' chunks, at the
    largest batch meeting TPOT; no prefill pool, nothing published beside it; each row is `serve --colocated`
    of that layout."""
    found = search(tpot_ms=50, output_tokens=1000, context=4096, colocated=True, top=5)
    assert found.prefill == () and found.published is None and found.ranked
    for row in found.ranked:
        assert row["tpot_s"] <= 0.050 and "prefill_ep" not in row and row["ttft_s"] > 0
        layout = {k: row[k] for k in ("tp", "ep", "redundant", "mtp_acceptance")}
        priced = serve(deployment(tpot_ms=50, output_tokens=1000, context=4096, colocated=True, **layout))
        assert priced["batch_per_gpu"] == row["batch_per_gpu"]
        assert priced["output_tokens_per_s_per_gpu"] == pytest.approx(row["output_tokens_per_s_per_gpu"])
    costs = [r["usd_per_million_output_tokens"] for r in found.ranked]
    assert costs == sorted(costs)
    assert main(["serve-search", "--tpot-ms", "50", "--colocated", "--output-tokens", "1000", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "co-located layouts tried" in out and "TTFT ms" in out and "best: one pool" in out
    assert main(["serve-search", "--tpot-ms", "50", "--colocated"]) == 2
    assert "--colocated needs --output-tokens" in capsys.readouterr().err

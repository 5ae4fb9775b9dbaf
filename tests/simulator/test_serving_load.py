"""The serving event model (`simulator.events.serving`, `v3sim serve --rate`): it agrees with the analytic
operating point at low load, queues into a knee at capacity and saturates at the analytic throughput above
it, repeats itself for a seed, prices steps by tables held to the analytic functions, and reads request
lengths as data only."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.analytic.profile import rates_for
from simulator.analytic.serving import decode, prefill
from simulator.analytic.servingcomm import kv_transfer
from simulator.analytic.servingmemory import max_sequences_per_gpu, prompt_tokens
from simulator.cli import main
from simulator.events.serving import simulate_serving
from simulator.events.serving_stats import decode_capacity_qps
from simulator.events.serving_tables import decode_table, prefill_table
from simulator.lengths import FORMS, parse_lengths
from simulator.limits import MAX_SEQ_TOKENS
from simulator.presets import deployment

LOAD_KEYS = {
    "offered_qps",
    "completed_qps",
    "analytic_capacity_qps",
    "ttft_s",
    "tpot_s",
    "queueing_s",
    "mean_decode_batch_per_gpu",
    "output_tokens_per_s_per_gpu",
    "input_tokens_per_s_per_gpu",
    "goodput",
    "goodput_output_tokens_per_s_per_gpu",
    "warmup",
    "seed",
}


def v3(**options):
    """DeepSeek-V3 on H800 with a 32-GPU decode instance (EP32) and 1,792 + 256-token requests."""
    s = deployment("deepseek-v3", **{"ep": 32, "context": 2048, "output_tokens": 256, **options})
    return s, rates_for(None, s.node.gpu)


# --- (a) at low load the event model is the analytic operating point -------------------------------------------


@pytest.mark.parametrize("mtp", [None, 0.85])
def test_low_load_agrees_with_the_analytic_point(mtp):
    s, rates = v3(mtp_acceptance=mtp)
    # 5% of the decode instance's capacity, and prefill instances enough that each prompt runs alone
    out = simulate_serving(s, rates, 0.05 * decode_capacity_qps(s, rates, 256), requests=1000, prefill_instances=20)
    assert out["input_len"] == "1792" and out["output_len"] == "256"  # from the deployment's context and output
    batch, kv = out["mean_busiest_batch_per_gpu"], out["mean_kv_tokens"]
    assert batch < 0.05 * max_sequences_per_gpu(s)  # low load: the batch is a few sequences of the cache's 225
    at = replace(s, context=round(kv), output_tokens=None)
    analytic_tpot = decode(at, rates, batch).step_s / (1 + (mtp or 0.0))
    # measured: +0.4% (no MTP), +0.6% (MTP: acceptance drawn per sequence and step); the draw of the busiest
    # GPU's expert load (x1.3-1.4 of the mean) costs little at a batch this small
    assert out["tpot_s"]["p50"] == pytest.approx(analytic_tpot, rel=0.05)
    assert out["mean_expert_imbalance"] > 1.1
    lone = prefill(s, rates, prompt_tokens(s)).step_s + kv_transfer(s)["s_per_request"]
    assert out["ttft_s"]["p50"] == pytest.approx(lone, rel=0.05)  # measured: equal to 1e-14
    assert out["completed_qps"] == pytest.approx(out["offered_qps"], rel=0.1)


# --- (b) queueing toward capacity; saturation above it -------------------------------------------------------


def test_ttft_p99_has_a_knee_at_capacity():
    # 4 sequences per GPU (128 in the instance): few enough slots that the queue forms before capacity
    s, rates = v3(batch=4)
    capacity = decode_capacity_qps(s, rates, 256)
    runs = {share: simulate_serving(s, rates, share * capacity, requests=3000) for share in (0.5, 0.95, 1.2)}
    p99 = {share: out["ttft_s"]["p99"] for share, out in runs.items()}
    # measured (seed 0): P99 0.40 s at 50%, 1.42 s at 95%, 21.7 s at 120% (and growing with the run)
    assert p99[0.95] > 3 * p99[0.5]
    assert p99[1.2] > 10 * p99[0.95]
    assert runs[0.95]["ttft_s"]["p50"] < 1.5 * runs[0.5]["ttft_s"]["p50"]  # the median hardly moves
    over = runs[1.2]
    assert over["completed_qps"] == pytest.approx(capacity, rel=0.1)  # measured: 0.999 x
    assert over["mean_decode_batch_per_gpu"] == pytest.approx(4, rel=0.02)


def test_above_capacity_throughput_saturates_at_the_kv_capacity_batch():
    # fixed 16,128 + 256-token requests fill exactly the 16,384-token slots the analytic KV capacity counts
    s = deployment("deepseek-v3", ep=32, context=16384, output_tokens=256)
    rates = rates_for(None, s.node.gpu)
    capacity = max_sequences_per_gpu(s)
    out = simulate_serving(s, rates, 1.3 * decode_capacity_qps(s, rates, 256), requests=8000)
    assert out["mean_decode_batch_per_gpu"] > 0.97 * capacity
    # the analytic step at the run's drawn expert load (its busiest GPU's experts and all-to-all slower than the
    # balanced capacity's): measured 0.2% under its tokens/s (the mean KV length is a little under the context),
    # and the completed rate 0.97 x its request rate (2026-12-07). Fixed lengths finish together, a whole batch of
    # ~1,000 requests at a time, so a run counts completions in a few bursts: 4,000 requests read 1.13 x
    balanced, drawn = (decode(s, rates, capacity, expert_imbalance=x) for x in (1.0, out["mean_expert_imbalance"]))
    assert out["mean_expert_imbalance"] > 1 and drawn.step_s > balanced.step_s
    assert out["output_tokens_per_s_per_gpu"] == pytest.approx(drawn.tokens / drawn.step_s, rel=0.02)
    at_drawn_qps = out["analytic_capacity_qps"] * balanced.step_s / drawn.step_s
    assert out["completed_qps"] == pytest.approx(at_drawn_qps, rel=0.12)


# --- (c) deterministic ----------------------------------------------------------------------------------------------


def test_same_seed_same_result_another_seed_another():
    s, rates = v3(mtp_acceptance=0.85, ttft_ms=1000, tpot_ms=20)
    kwargs = {"input_len": "exp:1500", "output_len": "uniform:100-400", "requests": 400}
    first = simulate_serving(s, rates, 30, **kwargs)
    assert simulate_serving(s, rates, 30, **kwargs) == first
    other = simulate_serving(s, rates, 30, seed=1, **kwargs)
    assert other != first and other["ttft_s"] != first["ttft_s"]
    assert 0 < first["goodput"] <= 1 and first["slo"] == {"ttft_s": 1.0, "tpot_s": 0.02}
    assert json.loads(json.dumps(first, allow_nan=False)) == first


# --- (d) the step tables ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "options"),
    [("deepseek-v3", {"mtp_acceptance": 0.85}), ("deepseek-v3", {"ep": 32, "cache_hit": 0.5}), ("mixtral-8x7b", {})],
)
def test_tables_match_the_analytic_functions_off_the_grid(model, options):
    s = deployment(model, **options)
    rates = rates_for(None, s.node.gpu)
    steps, forwards = decode_table(s, rates), prefill_table(s, rates)
    rng = np.random.default_rng(7)
    points = zip(rng.uniform(1, 300, 40), rng.integers(200, 30000, 40), rng.uniform(1, 3, 40), strict=True)
    for batch, ctx, factor in points:
        exact = decode(replace(s, context=int(ctx), output_tokens=None), rates, batch, factor).step_s
        assert steps(batch, ctx, factor) == pytest.approx(exact, rel=0.01)
    for tokens, prompt in zip(rng.integers(1, 16384, 40), rng.integers(100, 30000, 40), strict=True):
        exact = prefill(replace(s, context=int(prompt) + 1, output_tokens=1), rates, int(tokens)).step_s
        assert forwards(tokens, prompt) == pytest.approx(exact, rel=0.01)
    on_grid = decode(replace(s, context=64, output_tokens=None), rates, 7).step_s
    assert steps(7, 64, 1.0) == pytest.approx(on_grid, rel=1e-12)


# --- (e) length distributions are data --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mean"),
    [("512", 512), ("uniform:100-300", 200), ("exp:800", 800), ("lognormal:1000,0.5", 1000 * np.exp(0.125))],
)
def test_length_forms_draw_their_means(text, mean):
    lengths = parse_lengths(text)
    assert lengths.mean_tokens == pytest.approx(mean)
    drawn = lengths.sample(np.random.default_rng(0), 20000)
    assert drawn.dtype == np.int64 and drawn.min() >= 1
    assert drawn.mean() == pytest.approx(mean, rel=0.03)


def test_a_trace_is_one_column_of_lengths(tmp_path):
    path = tmp_path / "lengths.csv"
    path.write_text("prompt_tokens\n100\n300\n\n200\n")
    lengths = parse_lengths(f"trace:{path}")
    assert lengths.mean_tokens == 200
    assert set(lengths.sample(np.random.default_rng(0), 100)) == {100, 200, 300}
    path.write_text("100,5\n")
    with pytest.raises(ValueError, match="one column of lengths"):
        parse_lengths(f"trace:{path}")


def test_lengths_are_clipped_to_the_model_limit():
    assert parse_lengths("exp:16000000").sample(np.random.default_rng(0), 1000).max() == MAX_SEQ_TOKENS


@pytest.mark.parametrize(
    "text",
    ["__import__('os')", "exp:", "exp:1e3", "-5", "0", "uniform:300-100", "lognormal:100,9", "１２", "trace:/no/such"],
)
def test_bad_lengths_are_one_line_errors(text):
    with pytest.raises(ValueError) as err:
        parse_lengths(text)
    assert "\n" not in str(err.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_in_one_line(text):
    try:
        lengths = parse_lengths(text)
    except ValueError as err:
        assert "\n" not in str(err)
        return
    assert 1 <= lengths.mean_tokens <= MAX_SEQ_TOKENS


def test_a_mean_request_longer_than_the_context_is_refused():
    s, rates = v3()
    with pytest.raises(ValueError, match="raise --context"):
        simulate_serving(s, rates, 10, "2000", "256")


# --- (f) the command line -----------------------------------------------------------------------------------------

SMALL = ["serve", "--ep", "32", "--context", "2048", "--batch", "4", "--output-tokens", "256"]


def test_cli_serve_rate_json_has_the_load(capsys):
    assert main([*SMALL, "--rate", "10", "--requests", "300", "--seed", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["load"]) >= LOAD_KEYS and out["load"]["seed"] == 3
    assert set(out["load"]["ttft_s"]) == {"p50", "p90", "p99"}
    assert main([*SMALL, "--rate", "10", "--requests", "300", "--input-len", "exp:1500"]) == 0
    text = capsys.readouterr().out
    assert "TTFT          P50" in text and "input exp:1500" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "5", "--input-len", "__import__('os')"], FORMS),
        (["--rate", "5", "--phase", "decode"], "use --phase both"),
        (["--input-len", "100"], "give --rate"),
        (["--rate", "5", "--requests", "5"], "requests=5 must be from 20"),
        (["--rate", "1e-9"], "must be from 0.001"),
        (["--rate", "5", "--requests", "3000000"], "over the limit"),
    ],
)
def test_cli_bad_load_is_one_line_exit_2(capsys, argv, message):
    assert main([*SMALL, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# --- (f) prefill and decode on the same GPUs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def colocated_pool():
    s = deployment(gpu="h200", ep=8, redundant=0, context=2304, output_tokens=256, colocated=True, tpot_ms=60.0)
    return s, rates_for(None, s.node.gpu)


def test_a_colocated_pool_under_load_agrees_with_its_analytic_point(colocated_pool):
    """`serve --colocated --rate`: one pool whose steps carry the decode batch and the prompts. Below capacity,
    with the budget at the analytic step's tokens (the default: its batch and a whole prompt), it keeps up; its
    TPOT lands on the analytic step at the run's own batch and its TTFT on the analytic point's (measured
    2026-12-07: 39.9 vs 42.0 ms at the run's 2.6 sequences per GPU, 277 vs 282 ms). The point itself, at the
    TPOT target's larger batch, steps slower: more of the eight units carry a prompt in a step."""
    from simulator.analytic.serving import serve

    s, rates = colocated_pool
    point = serve(s)
    capacity = decode_capacity_qps(s, rates, 256)
    out = simulate_serving(s, rates, 0.68 * capacity, requests=3000)
    assert out["colocated"] and out["prefill_instances"] == 0 and out["prefill_gpus"] == 0
    assert out["completed_qps"] == pytest.approx(out["offered_qps"], rel=0.05)
    assert out["tpot_s"]["p50"] == pytest.approx(out["analytic_tpot_s"], rel=0.08)
    assert out["ttft_s"]["p50"] == pytest.approx(point["ttft_s"], rel=0.25)
    assert out["mean_busiest_batch_per_gpu"] <= point["batch_per_gpu"]  # the TPOT target's batch caps the units
    assert out["analytic_tpot_s"] <= point["tpot_s"]  # the analytic step at the run's (smaller) mean batch
    assert out["input_tokens_per_s_per_gpu"] == pytest.approx(out["output_tokens_per_s_per_gpu"] * 2048 / 255, rel=0.1)


def test_a_saturated_colocated_pool_emits_what_its_analytic_point_does():
    """Above capacity a co-located pool runs at its KV-filled batch, its sequences at every point of their
    outputs alike: a step reads each cache at its prompt and half its output on average (`decoding_context`),
    as the analytic point prices it. Qwen3-30B-A3B on one B200, 1,024 + 1,024-token requests (measured
    2026-12-05: 37,923 vs 37,995 output tok/s per GPU; priced at the whole request, the analytic step read
    33,525, 12% short of the simulated pool)."""
    from simulator.analytic.serving import serve

    s = deployment("qwen3-30b-a3b", gpu="b200", tp=1, ep=1, redundant=0, weight_dtype="fp4", kv_dtype="fp8",
                   context=2048, output_tokens=1024, colocated=True)  # fmt: skip
    rates = rates_for(None, s.node.gpu)
    point = serve(s)
    out = simulate_serving(s, rates, 80, "1024", "1024", requests=20000)
    assert out["output_tokens_per_s_per_gpu"] == pytest.approx(point["output_tokens_per_s_per_gpu"], rel=0.02)
    assert out["tpot_s"]["p50"] == pytest.approx(point["tpot_s"], rel=0.02)


def test_thin_chunks_every_step_cost_a_small_batch_more_than_whole_prompts(colocated_pool):
    """A step budget that cuts every prompt into thin chunks (64 tokens a step per GPU) keeps a chunk in nearly
    every step, each waking most of the experts the step's few decode tokens leave idle; whole prompts (the
    default budget, or vLLM's and SGLang's 8,192) run in one step each, long but rare. At this small batch the
    thin chunks cost TPOT and, a prompt spread over dozens of steps, far more TTFT (measured 2026-12-07: TPOT
    44.6 vs 39.9 ms, TTFT 1.60 vs 0.28 s). Both keep up with the load."""
    s, rates = colocated_pool
    rate = 0.68 * decode_capacity_qps(s, rates, 256)
    whole = simulate_serving(s, rates, rate, requests=3000)
    thin = simulate_serving(replace(s, prefill_tokens=64), rates, rate, requests=3000)
    chunks_8k = simulate_serving(replace(s, prefill_tokens=8192), rates, rate, requests=3000)
    assert thin["tpot_s"]["p50"] > 1.05 * whole["tpot_s"]["p50"]
    assert thin["ttft_s"]["p50"] > 3 * whole["ttft_s"]["p50"]
    assert chunks_8k["tpot_s"]["p50"] == pytest.approx(whole["tpot_s"]["p50"], rel=0.05)
    for out in (whole, thin, chunks_8k):
        assert out["completed_qps"] == pytest.approx(out["offered_qps"], rel=0.05)
    with pytest.raises(ValueError, match="a co-located pool has no prefill instances"):
        simulate_serving(s, rates, rate, requests=200, prefill_instances=2)


def test_cli_colocated_rate_prints_one_pool(capsys):
    argv = ["serve", "--gpu", "h200", "--ep", "8", "--redundant", "0", "--context", "2304", "--output-tokens", "256",
            "--colocated", "--tpot-ms", "60", "--rate", "5", "--requests", "1500"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "pool          8 GPUs, prefill and decode co-located" in out and "per GPU of the pool" in out
    assert main([*argv, "--json"]) == 0
    load = json.loads(capsys.readouterr().out)["load"]
    assert load["colocated"] and load["prefill_load"] is None


def test_the_chunk_table_matches_the_mixed_step_off_the_grid(colocated_pool):
    """A co-located step as the event model prices it (the decode step plus the chunk table) is the analytic
    mixed step within 1% off the grid."""
    from simulator.analytic.colocated import mixed_step
    from simulator.events.serving_tables import chunk_table

    s, rates = colocated_pool
    chunks = chunk_table(s, rates)
    rng = np.random.default_rng(11)
    for batch, chunk in zip(rng.uniform(1, 150, 30), rng.uniform(1, 8192, 30), strict=True):
        alone = mixed_step(s, rates, batch, 0.0).step_s
        exact = mixed_step(s, rates, batch, chunk).step_s
        assert alone + chunks(batch, chunk) == pytest.approx(exact, rel=0.01)

"""Serving operating points (issue 21): the decode batch from a TPOT target, the prefill chunk from a TTFT target,
the redundancy an --ep needs, prompt-cache hits as input tokens, prefill as it runs, and the KV transfer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.analytic.profile import rates_for
from simulator.analytic.serving import PREFILL_TOKEN_CHOICES, layer_compute_s, prefill, serve, tpot_s
from simulator.analytic.servingcomm import PREFILL_COMM_SMS
from simulator.analytic.servingmemory import kv_bytes_per_token, max_sequences_per_gpu
from simulator.cli import main
from simulator.presets import deployment
from workloads.flops import attention_core_flops
from workloads.ops import layer_ops, total
from workloads.registry import load_model
from workloads.servingops import serving_layer_ops

V3 = load_model("deepseek-v3")


def test_an_ep_alone_gets_the_fewest_redundant_slots_and_says_so(capsys):
    """DeepSeek's decode runs EP144 with 32 redundant experts (288 slots): `--ep 144` alone answers that way."""
    assert main(["serve", "--phase", "decode", "--ep", "144"]) == 0
    text = capsys.readouterr().out
    assert "--ep 144: 32 redundant expert slots" in text and "288 slots, 2 per GPU" in text
    assert main(["serve", "--phase", "decode", "--ep", "144", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ep"] == 144 and out["redundant"] == 32 and out["notes"]
    assert deployment(ep=64).redundant == 0 and deployment(ep=320).redundant == 64
    assert deployment(prefill_ep=48).prefill_redundant == 32  # 288 / 48 = 6 per GPU
    assert deployment(ep=144, redundant=32).notes == ()  # given: nothing chosen, nothing said


def test_a_tpot_target_picks_the_largest_batch_that_meets_it():
    s = deployment(ep=144, tpot_ms=30.0)
    rates = rates_for(None, s.node.gpu)
    out = serve(s, phase="decode")
    batch = out["batch_per_gpu"]
    assert out["decode_limit"] == "tpot" and out["tpot_s"] <= 0.030
    assert tpot_s(s, rates, batch + 1) > 0.030  # one more sequence per GPU misses the target
    assert batch < out["max_concurrent_sequences_per_gpu"]
    loose = serve(deployment(ep=144, tpot_ms=10_000.0), phase="decode")
    assert loose["decode_limit"] == "kv" and loose["batch_per_gpu"] == max_sequences_per_gpu(s)
    assert out["decode_bound"] in ("compute", "network")


def test_tpot_rises_with_the_batch_so_bisection_is_sound():
    s = deployment(ep=144)
    rates = rates_for(None, s.node.gpu)
    times = [tpot_s(s, rates, b) for b in range(1, max_sequences_per_gpu(s) + 1, 5)]
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tpot-ms", "1"], "TPOT 1 ms is out of reach"),
        (["--ttft-ms", "1"], "TTFT 1 ms is out of reach"),
        (["--tpot-ms", "50", "--batch", "8"], "not both"),
        (["--ttft-ms", "900", "--prefill-tokens", "4096"], "not both"),
        (["--ep", "100", "--redundant", "3"], "pass --redundant 44"),
        (["--node", "h100-ib", "--cache-tier", "storage"], "no shared KV store"),
    ],
)
def test_unreachable_or_conflicting_targets_are_one_line_errors(capsys, argv, message):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_ttft_target_picks_the_chunk_with_the_most_throughput_that_meets_it():
    s = deployment(ttft_ms=1000.0, output_tokens=1024)
    out = serve(s, phase="prefill")
    assert out["prefill_limit"] == "ttft" and out["ttft_s"] <= 1.0
    rates = rates_for(None, s.node.gpu)
    chosen = out["input_tokens_per_s_per_gpu"]
    for tokens in PREFILL_TOKEN_CHOICES:  # no other chunk that meets the target does better
        p = prefill(s, rates, tokens)
        new = 3072
        ttft = p.step_s * (0.5 + max(1, -(-new // tokens)))  # half a forward's wait, then its own
        if ttft <= 1.0:
            assert p.tokens / p.step_s <= chosen * (1 + 1e-12)
    default = serve(deployment(output_tokens=1024), phase="prefill")
    assert default["prefill_tokens_per_gpu"] == 16384 and default["ttft_s"] > 1.0


def test_cache_hits_count_as_input_tokens_and_half_hits_give_over_one_and_a_half_times_the_rate():
    """Issue 21: input tokens/s per node with 50% cache hits > 1.5x without (hits cost their KV load and the
    attention over the cached prefix, not a pass through the weights)."""
    cold = serve(deployment(), phase="prefill")
    warm = serve(deployment(cache_hit=0.5), phase="prefill")
    ratio = warm["input_tokens_per_s_per_node"] / cold["input_tokens_per_s_per_node"]
    assert 1.5 < ratio < 2.0  # below 2: the prefix is up-projected, attended and loaded


def test_cached_kv_is_read_from_its_tier_and_a_slow_tier_shows():
    """At 95% hits the store's share per GPU (3FS, 40 GiB/s per node) cannot keep up; host memory can."""
    store = deployment(cache_hit=0.95, cache_tier="storage")
    host = deployment(cache_hit=0.95, cache_tier="host")
    rates = rates_for(None, store.node.gpu)
    slow, fast = prefill(store, rates, 16384), prefill(host, rates, 16384)
    cached = 16384 * 0.95 / 0.05
    load_s = cached * kv_bytes_per_token(store) / (store.node.storage_bw_bytes_per_s / 8)
    assert slow.breakdown["exposed_cache_load"] > 0 and slow.step_s == pytest.approx(load_s)
    assert fast.breakdown["exposed_cache_load"] == 0 and fast.step_s < slow.step_s
    assert kv_bytes_per_token(store) == 70272  # V3's published KV bytes per token (61 layers x 576 x 2)


def test_prefill_runs_mla_unabsorbed_with_its_element_wise_work():
    """Prefill's attention is FlashAttention over per-head QK 192 / V 128 (as the training forward), not the
    absorbed decode form; its GEMMs and attention FLOPs equal the training forward's; element-wise kernels run
    in both phases."""
    tokens, ctx = 4096.0, 2048.5
    pre = serving_layer_ops(V3, True, tokens, tokens, ctx, "prefill", ep=32)
    fwd = layer_ops(V3, True, tokens, ctx, ("forward",), ep=32)
    assert total(pre) == pytest.approx(total(fwd), rel=1e-12)
    att = next(op for op in pre if op.kind == "attention")
    assert att.flops == pytest.approx(tokens * attention_core_flops(V3, ctx))
    assert att.flops == pytest.approx(tokens * 2 * 128 * (192 + 128) * ctx)
    assert {op.kind for op in pre} >= {"elementwise"}
    dec = serving_layer_ops(V3, True, tokens, tokens, ctx, "decode", ep=32)
    assert {op.name for op in dec if op.kind == "elementwise"} == {op.name for op in pre if op.kind == "elementwise"}


def test_cached_prefix_is_up_projected_and_read_by_the_attention():
    plain = serving_layer_ops(V3, True, 1000.0, 1000.0, 3000.0, "prefill")
    cached = serving_layer_ops(V3, True, 1000.0, 1000.0, 3000.0, "prefill", prefix=2000.0)
    extra = total(cached) - total(plain)
    kv_b = 2 * 2000 * V3.kv_lora_rank * V3.num_attention_heads * (V3.qk_nope_head_dim + V3.v_dim)
    assert extra == pytest.approx(kv_b)
    assert total(cached, "hbm_bytes") > total(plain, "hbm_bytes")


def test_prefill_compute_gives_deepep_its_sms():
    """DeepEP's normal kernels hold 24 SMs in prefill; decode's low-latency kernels hold none."""
    s = deployment()
    rates = rates_for(None, s.node.gpu)
    share = (s.node.gpu.sm_count - PREFILL_COMM_SMS) / s.node.gpu.sm_count
    ctx = 2048.5
    slow = layer_compute_s(s.for_prefill(), rates, True, 8192, 8192, ctx, "prefill", sm_share=share)
    fast = layer_compute_s(s.for_prefill(), rates, True, 8192, 8192, ctx, "prefill")
    assert 0 < share < 1 and slow > fast
    p = prefill(s, rates, 16384)
    assert p.breakdown["moe_layers"] == pytest.approx(
        58 * 2 * layer_compute_s(s.for_prefill(), rates, True, 8192, 8192, 2048.5, "prefill", sm_share=share)
    )


def test_the_kv_transfer_is_costed_and_a_tapered_fabric_never_speeds_it():
    base = serve(deployment(output_tokens=1024))
    move = base["kv_transfer"]
    assert move["gb_per_request"] == pytest.approx(3072 * 70272 / 1e9)
    nic = deployment().node.scaleout_achieved_bw_bytes_per_s_per_gpu
    assert move["s_per_request"] == pytest.approx(3072 * 70272 / nic + deployment().node.nic.latency_s)
    tapered = serve(deployment(output_tokens=1024, topology="fat-tree-2", oversubscription=3.0))["kv_transfer"]
    assert tapered["switch_factor"] >= 1 and tapered["s_per_request"] >= move["s_per_request"]
    assert 0 < move["prefill_nic_share"] < 1


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["deepseek-v3", "qwen2.5-72b", "mixtral-8x7b"]),
    st.sampled_from(["h800", "h100", "gb200"]),
    st.floats(1.0, 500.0),
    st.one_of(st.none(), st.floats(50.0, 20_000.0)),
    st.floats(0.0, 0.95),
    st.sampled_from([1024, 4096, 16384]),
)
def test_any_target_is_met_or_refused_in_one_line(model, gpu, tpot_ms, ttft_ms, hit, context):
    try:
        out = serve(
            deployment(model, gpu, tpot_ms=tpot_ms, ttft_ms=ttft_ms, cache_hit=hit, context=context, output_tokens=256)
        )
    except ValueError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert out["tpot_s"] <= tpot_ms / 1e3 * (1 + 1e-9)
    assert out["batch_per_gpu"] <= out["max_concurrent_sequences_per_gpu"]
    if out["decode_limit"] == "tpot":
        assert out["batch_per_gpu"] < out["max_concurrent_sequences_per_gpu"]
    if ttft_ms is not None:
        assert out["ttft_s"] <= ttft_ms / 1e3 * (1 + 1e-9)
    assert out["input_tokens_per_s_per_gpu"] > 0 and out["kv_transfer"]["s_per_request"] > 0


def test_decode_attention_reads_the_cache_at_flashmlas_rate_not_above():
    """Decode attention is its own kernel class, sourced from FlashMLA's README (3000 GB/s memory-bound, 660
    TFLOPS compute-bound on the H800): never faster than that, whatever the batch (issue 21: it was 5,385 GB/s)."""
    s = deployment()
    rates = rates_for(None, s.node.gpu)
    ops = serving_layer_ops(V3, True, 64.0, 64.0, 4096.0, "decode", ep=320, redundant=64)
    att = next(op for op in ops if op.kind == "attention")
    from simulator.analytic.pricing import op_s, priced_class

    assert att.profile_class == "attention_decode_mla_bf16"  # MLA's decode, a class the H800 table lacks:
    assert priced_class(att, rates) == "attention_decode_bf16"  # FlashMLA's series prices it
    fit = rates.fits["attention_decode_bf16"]
    assert fit.bytes_per_s == pytest.approx(3000e9) and fit.flop_per_s == pytest.approx(660e12)
    assert att.hbm_bytes / op_s(att, rates) <= 3000e9 * (1 + 1e-12)


@given(
    st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=2, max_size=400),
    st.floats(0.0, 1.0),
)
def test_largest_meeting_finds_the_last_batch_under_the_target_in_few_steps(steps, where):
    """Any rising step time (here a cumulative sum of random rises, flat runs included): the answer is the
    largest batch within the target, found in no more than twice a bisection's steps."""
    import math

    from simulator.analytic.serving import largest_meeting

    values = [1.0]
    for rise in steps:
        values.append(values[-1] + rise)
    hi = len(values) - 1
    target = values[0] + where * (values[hi] - values[0])
    if values[hi] <= target:
        return
    calls = []

    def f(n: int) -> float:
        calls.append(n)
        return values[n]

    got = largest_meeting(f, target, (0, values[0]), (hi, values[hi]))
    assert got == max(n for n in range(hi) if values[n] <= target)
    assert len(calls) <= 2 * math.ceil(math.log2(hi)) + 1

"""Serving options of issue 27 that build on the operating points: MTP depth, overlap schemes, expert imbalance
as an input, and memory checked per phase against the pool that runs it. Each moves the answer the way the
physics says."""

from __future__ import annotations

import json

import pytest

from simulator.analytic.profile import rates_for
from simulator.analytic.serving import decode, serve
from simulator.analytic.servingcomm import ep_comm_s
from simulator.cli import main
from simulator.presets import deployment
from simulator.servespec import OVERLAP_MODES


def test_mtp_depth_emits_the_accepted_chain_and_verifies_every_draft():
    one, three = deployment(mtp_acceptance=0.8), deployment(mtp_acceptance=0.8, mtp_tokens=3)
    assert one.tokens_per_step == pytest.approx(1.8) and three.tokens_per_step == pytest.approx(1 + 0.8 + 0.64 + 0.512)
    assert (one.verify_tokens, three.verify_tokens, deployment().verify_tokens) == (2, 4, 1)
    rates = rates_for(None, one.node.gpu)
    small = [decode(s, rates, 8) for s in (one, three)]
    assert small[1].step_s > small[0].step_s  # more tokens through the model and the draft module run thrice
    assert small[1].breakdown["mtp"] == pytest.approx(3 * small[0].breakdown["mtp"])
    # memory-bound at a small batch: deeper drafts pay; compute-bound at a full one: they cost
    per_gpu = [p.tokens / p.step_s for p in small]
    assert per_gpu[1] > per_gpu[0]
    full = [decode(s, rates, 160) for s in (one, three)]
    assert full[1].tokens / full[1].step_s < full[0].tokens / full[0].step_s


def test_overlap_schemes_order_as_they_hide_communication():
    rates = rates_for(None, deployment().node.gpu)
    steps = {mode: decode(deployment(ep=144, overlap=mode), rates, 64) for mode in OVERLAP_MODES}
    assert steps["none"].step_s > steps["single-batch"].step_s  # the combine hides under the shared expert
    assert steps["auto"].step_s == min(steps["two-batch"].step_s, steps["none"].step_s)
    assert steps["two-batch"].micro_batches == 2 and steps["none"].micro_batches == 1
    assert steps["none"].breakdown["exposed_comm"] > steps["single-batch"].breakdown["exposed_comm"] > 0


def test_expert_imbalance_slows_the_routed_experts_and_their_all_to_all_only():
    rates = rates_for(None, deployment().node.gpu)
    base, skewed = (decode(deployment(expert_imbalance=x), rates, 64) for x in (1.0, 1.3))
    assert skewed.step_s > base.step_s
    assert skewed.breakdown["head"] == base.breakdown["head"]
    assert skewed.breakdown["dense_layers"] == base.breakdown["dense_layers"]
    exposed = [decode(deployment(expert_imbalance=x, overlap="none"), rates, 64).breakdown for x in (1.0, 1.3)]
    assert exposed[1]["exposed_comm"] > exposed[0]["exposed_comm"]  # the busiest GPU receives more copies
    drafts = [decode(deployment(mtp_acceptance=0.8), rates, 64, expert_imbalance=x).breakdown for x in (1.0, 1.3)]
    assert drafts[1]["mtp"] > drafts[0]["mtp"]  # the MTP module's MoE block waits for the same busiest GPU
    assert (
        serve(deployment(expert_imbalance=1.3))["input_tokens_per_s_per_gpu"]
        < serve(deployment())["input_tokens_per_s_per_gpu"]
    )


def test_the_all_to_all_ends_with_its_busiest_gpu():
    """Its links carry `imbalance` x the mean GPU's copies; the latency and the call's fixed cost do not grow."""
    s = deployment()
    for forwarded in (False, True):
        a, b, c = (ep_comm_s(s, 256, s.ep, forwarded, imbalance=x) for x in (1.0, 1.3, 2.0))
        assert a < b < c and (c - a) == pytest.approx((b - a) * (2.0 - 1.0) / (1.3 - 1.0))
        assert c < 2 * a  # the fixed part is paid once


def test_prefill_memory_is_checked_against_the_prefill_pool(capsys):
    out = serve(deployment(), phase="prefill")
    assert 0 < out["prefill_gb_per_gpu"] * 1e9 < deployment().node.gpu.hbm_bytes * 0.9
    assert main(["serve", "--prefill-ep", "8"]) == 2  # 32 experts per GPU: 671B / 8 of fp8 weights
    err = capsys.readouterr().err
    assert "prefill does not fit" in err and "--prefill-ep" in err and err.count("\n") == 1
    assert main(["serve", "--prefill-ep", "8", "--phase", "decode"]) == 0  # decode alone never runs prefill


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--overlap", "three-batch"], "invalid choice"),
        (["--mtp-tokens", "9", "--mtp-acceptance", "0.8"], "mtp_tokens=9 must be an integer from 1 to 8"),
        (["--expert-imbalance", "0.5"], "expert_imbalance=0.5 must be from 1"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, argv, message):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_load_model_draws_the_draft_chain_as_the_analytic_model_averages_it(capsys):
    """Two drafts at 0.8: the event model accepts each only after the one before it; at low load its TPOT
    matches the analytic one (which divides the step by 1 + 0.8 + 0.64) within 5%."""
    argv = ["serve", "--ep", "32", "--context", "2048", "--output-tokens", "256", "--rate", "5", "--json"]
    assert main([*argv, "--mtp-acceptance", "0.8", "--mtp-tokens", "2"]) == 0
    load = json.loads(capsys.readouterr().out)["load"]
    assert load["tpot_s"]["p50"] == pytest.approx(load["analytic_tpot_s"], rel=0.05)


def test_offloaded_weights_stream_over_pcie_and_show_when_the_forward_is_short():
    """Prefill on EP8 holds 84 GB of fp8 weights per GPU: refused in HBM, answered with --offload-weights, the
    overflow streamed from host memory each forward over the node's PCIe (64 GB/s per GPU on h800-ib)."""
    assert serve(deployment(), phase="prefill")["offloaded_gb_per_gpu"] == 0  # fits: nothing streamed
    long = serve(deployment(prefill_ep=8, offload_weights=True), phase="prefill")
    assert (
        long["offloaded_gb_per_gpu"] > 0 and long["prefill_gb_per_gpu"] * 1e9 <= deployment().node.gpu.hbm_bytes * 0.9
    )
    assert long["breakdown"]["prefill"]["exposed_weight_offload"] == 0  # hidden under a 16K-token forward
    short = deployment(prefill_ep=8, offload_weights=True, prefill_tokens=1024)
    out = serve(short, phase="prefill")
    stream_s = out["offloaded_gb_per_gpu"] * 1e9 / short.node.pcie_bw_bytes_per_s
    assert out["breakdown"]["prefill"]["exposed_weight_offload"] > 0 and out["prefill_step_s"] == pytest.approx(
        stream_s
    )
    resident = serve(deployment(prefill_tokens=1024), phase="prefill")
    assert out["input_tokens_per_s_per_gpu"] < resident["input_tokens_per_s_per_gpu"]


def test_expert_tp_splits_the_expert_gemms_and_adds_its_collectives():
    from workloads.ops import total
    from workloads.registry import load_model
    from workloads.servingops import serving_layer_ops

    v3 = load_model("deepseek-v3")
    ops = {n: serving_layer_ops(v3, True, 64.0, 64.0, 4096.0, "decode", ep=32, expert_tp=n) for n in (1, 4)}
    routed = {n: [op for op in o if op.component == "routed_experts"] for n, o in ops.items()}
    assert total(routed[4]) == pytest.approx(total(routed[1]))  # the same work per GPU
    assert routed[4][0].n == routed[1][0].n / 4 and routed[4][0].groups == 4 * routed[1][0].groups
    coll = [op for op in ops[4] if op.component == "expert_tp"]
    pairs = 3 * 64 * 8 * 7168
    assert [op.nvlink_bytes for op in coll] == [pairs, 2 * pairs] and not any(
        op.component == "expert_tp" for op in ops[1]
    )
    rates = rates_for(None, deployment().node.gpu)
    steps = [decode(deployment(ep=32, expert_tp=n), rates, 64).step_s for n in (1, 2, 8)]
    assert steps[0] < steps[1] < steps[2]  # balanced experts: the split only adds NVLink traffic
    assert serve(deployment(ep=32, expert_tp=2))["weights_gb_per_gpu"] == serve(deployment(ep=32))["weights_gb_per_gpu"]


def test_serve_search_takes_expert_tp_and_offload(capsys):
    """serve-search passes --expert-tp and --offload-weights to every candidate; layouts expert TP cannot
    split are skipped with their reason, never a traceback."""
    from simulator.explore.servesearch import SKIP_EXPERT_TP, search

    plain = search(tpot_ms=50, top=3)
    split = search(tpot_ms=50, top=3, expert_tp=2)
    assert split.skipped.get(SKIP_EXPERT_TP, 0) > 0 and split.ranked
    assert all(r["ep"] % 2 == 0 for r in split.ranked)
    assert split.ranked[0]["output_tokens_per_s_per_gpu"] != plain.ranked[0]["output_tokens_per_s_per_gpu"]
    assert main(["serve-search", "--tpot-ms", "50", "--expert-tp", "2", "--offload-weights", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ranked"] and SKIP_EXPERT_TP in out["skipped"]


def test_mtp_acceptance_by_depth(capsys):
    """`--mtp-acceptance 0.85,0.7`: the second draft accepted at 0.7 once the first was (deeper drafts are
    accepted less often), 1 + 0.85 + 0.85 x 0.7 tokens per step; the same acceptance at every depth is the
    single-rate chain; a depth list that disagrees with --mtp-tokens is a one-line error."""
    by_depth = deployment(mtp_acceptance=0.85, mtp_tokens=2, mtp_acceptance_by_depth=(0.85, 0.7))
    assert by_depth.tokens_per_step == pytest.approx(1 + 0.85 + 0.85 * 0.7) and by_depth.verify_tokens == 3
    same = deployment(mtp_acceptance=0.8, mtp_tokens=3, mtp_acceptance_by_depth=(0.8, 0.8, 0.8))
    assert same.tokens_per_step == pytest.approx(deployment(mtp_acceptance=0.8, mtp_tokens=3).tokens_per_step)
    with pytest.raises(ValueError, match="per-depth acceptances"):
        deployment(mtp_acceptance=0.85, mtp_tokens=3, mtp_acceptance_by_depth=(0.85, 0.7))
    assert main(["serve", "--phase", "decode", "--mtp-acceptance", "0.85,0.7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mtp_tokens_per_step"] == pytest.approx(2.445)
    assert main(["serve", "--mtp-acceptance", "0.85,0.7", "--mtp-tokens", "3"]) == 2
    assert "2 depths" in capsys.readouterr().err
    assert main(["serve", "--mtp-acceptance", "0.85,1.7"]) == 2
    argv = ["serve", "--ep", "32", "--context", "2048", "--output-tokens", "256", "--rate", "5", "--json"]
    assert main([*argv, "--mtp-acceptance", "0.9,0.5"]) == 0  # the load model draws each depth at its own rate
    load = json.loads(capsys.readouterr().out)["load"]
    assert load["tpot_s"]["p50"] == pytest.approx(load["analytic_tpot_s"], rel=0.05)


def test_fp8_attention_speeds_prefill_from_its_own_kernel_class(capsys):
    """`--attention-dtype fp8`: prefill attention priced in its own class, FlashAttention-3's FP8 forward (the
    paper's figure: 1,008 TFLOPS at 16k, head dim 128), reading fp8 Q, K, V; prefill gets faster, decode is
    untouched (FlashMLA's bf16 compute, the KV at --kv-dtype); a GPU without fp8 says what to change."""
    bf16, fp8 = deployment(), deployment(attention_dtype="fp8")
    rates = rates_for(None, bf16.node.gpu)
    assert rates.fits["attention_fwd_fp8"].flop_per_s > 1.5 * rates.fits["attention_fwd_bf16"].flop_per_s
    assert "FlashAttention-3" in rates.sources["attention_fwd_fp8"]
    pre = [serve(s, phase="prefill")["input_tokens_per_s_per_gpu"] for s in (bf16, fp8)]
    assert pre[1] > 1.03 * pre[0]
    dec = [decode(s, rates, 64).step_s for s in (bf16, fp8)]
    assert dec[0] == pytest.approx(dec[1])
    assert main(["serve", "--gpu", "a100", "--attention-dtype", "fp8"]) == 2
    assert "--attention-dtype bf16" in capsys.readouterr().err


def test_batch_per_instance_poses_a_single_stream_on_a_tp_group(capsys):
    """`--batch-per-instance 1` on a TP8 instance: one sequence over 8 GPUs, 1/8 per GPU, a step no slower
    than a per-GPU batch of 1 (which is 8 sequences) and an eighth of its tokens; on an EP group the
    instance is the group. Giving two of batch, batch per instance and a TPOT target is a one-line error."""
    one = deployment("llama-3.1-70b", "h100", tp=8, batch_per_instance=1)
    assert one.instance_gpus == 8 and one.decode_batch == pytest.approx(1 / 8)
    out = serve(one, phase="decode")
    per_gpu = serve(deployment("llama-3.1-70b", "h100", tp=8, batch=1), phase="decode")
    assert out["batch_per_instance"] == pytest.approx(1) and out["batch_per_gpu"] == pytest.approx(1 / 8)
    assert out["tpot_s"] <= per_gpu["tpot_s"]
    # an eighth of the tokens in a step no shorter than 3/4 of the eight-sequence one (measured 0.87, 2026-12-07)
    assert out["output_tokens_per_s_per_gpu"] < per_gpu["output_tokens_per_s_per_gpu"] / 6
    ep = deployment(ep=32, batch_per_instance=64)
    assert ep.instance_gpus == 32 and ep.decode_batch == 2
    assert serve(ep, phase="decode")["output_tokens_per_s_per_gpu"] == pytest.approx(
        serve(deployment(ep=32, batch=2), phase="decode")["output_tokens_per_s_per_gpu"]
    )
    assert main(["serve", "--batch-per-instance", "1", "--tpot-ms", "50"]) == 2
    assert "not both --batch-per-instance and --tpot-ms" in capsys.readouterr().err


def test_fp4_weights_store_the_gemm_weights_in_nvfp4_and_run_them_at_the_fp4_rate(capsys):
    """`--weight-dtype fp4` (NVFP4 on Blackwell): the quantized weights take 0.5 + 1/16 bytes each (4-bit values,
    an fp8 scale per 16) against fp8's 1, the embedding, head, norms and router stay bf16; its GEMM classes
    are the fp8 fits at the datasheet's FP4/FP8 ratio (said ASSUMED in the profile's notes); a decode step at
    the same batch reads fewer weight bytes and is no slower; more sequences fit; a GPU without fp4 says which
    have it."""
    from simulator.analytic.servingmemory import weight_bytes_per_gpu
    from workloads.dtypes import dtype_bytes

    fp8, fp4 = (deployment(gpu="b200", weight_dtype=w) for w in ("fp8", "fp4"))
    bf16 = deployment(gpu="b200", weight_dtype="bf16")
    w8, w4, w16 = (weight_bytes_per_gpu(s, s.ep, s.redundant) for s in (fp8, fp4, bf16))
    quantized8 = (w16 - w8) / (2 - 1)  # bf16 - fp8 = the quantized weights' count x 1 byte
    assert w4 == pytest.approx(w8 - quantized8 * (1 - dtype_bytes("fp4")), rel=1e-9)
    assert dtype_bytes("fp4") == 0.5625
    rates = rates_for(None, fp4.node.gpu)
    gpu = fp4.node.gpu
    ratio = gpu.peak_fp4_flop_per_s / gpu.peak_fp8_flop_per_s
    for kernel in ("gemm", "grouped_gemm"):
        assert rates.fits[f"{kernel}_fp4"].flop_per_s == pytest.approx(ratio * rates.fits[f"{kernel}_fp8"].flop_per_s)
        assert rates.fits[f"{kernel}_fp4"].flop_per_s <= gpu.peak_fp4_flop_per_s  # never above the datasheet
    assert any("fp4" in n and "ASSUMED" in n for n in rates.notes)
    steps = [decode(s, rates, 64).step_s for s in (fp8, fp4)]
    assert steps[1] < steps[0]
    outs = [serve(s, phase="decode") for s in (fp8, fp4)]
    assert outs[1]["max_concurrent_sequences_per_gpu"] > outs[0]["max_concurrent_sequences_per_gpu"]
    assert main(["serve", "--gpu", "gb200", "--weight-dtype", "fp4", "--json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["weights_gb_per_gpu"] < serve(deployment(gpu="gb200"))["weights_gb_per_gpu"]
    )
    assert main(["serve", "--gpu", "h800", "--weight-dtype", "fp4"]) == 2
    assert "no fp4 tensor cores (GPUs with them: b200, gb200)" in capsys.readouterr().err
    assert (
        main(["serve-search", "--gpu", "b200", "--tpot-ms", "50", "--weight-dtype", "fp4", "--top", "1", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["ranked"][0]["weights_gb_per_gpu"] > 0
    assert main(["kv", "deepseek-v3", "--dtype", "fp4"]) == 2  # a KV cache in fp4 has no source here


def test_colocated_steps_carry_prompt_chunks_through_the_decode_weights(capsys):
    """`--colocated`: one pool whose decode steps carry prompt chunks. With no prompt tokens the step is the
    decode step exactly (each cache at its prompt and half its output: the pool's mean); a chunk shares the
    GEMMs' weight reads, so the mixed step costs more than decode alone
    and less than decode plus a separate prefill forward of the same tokens; the chunk keeps the pool even
    (prompt / output tokens per output token), and TPOT is the mean step (`steady_step`: whole prompts in some
    steps); a shorter output means bigger chunks and a longer TPOT."""
    from dataclasses import replace

    from simulator.analytic.colocated import chunk_for, decoding_context, mixed_step, steady_step
    from simulator.analytic.serving import prefill

    s = deployment(gpu="h200", ep=8, redundant=0, batch=64, context=3072, output_tokens=2048, colocated=True)
    rates = rates_for(None, s.node.gpu)
    assert decoding_context(s) == 1024 + 2049 / 2
    alone = decode(s, rates, 64, context=decoding_context(s))
    assert alone.step_s < decode(s, rates, 64).step_s  # the whole request's cache reads more
    assert mixed_step(s, rates, 64, 0.0).step_s == alone.step_s
    chunk = chunk_for(s, alone.tokens)
    assert chunk == pytest.approx(alone.tokens * 1024 / 2048)
    mixed = mixed_step(s, rates, 64, chunk).step_s
    apart = alone.step_s + prefill(replace(s, prefill_ep=8, prefill_redundant=0), rates, int(chunk)).step_s
    assert alone.step_s < mixed < apart
    out = serve(s)
    steady = steady_step(s, rates, 64, chunk).step_s  # a whole prompt in some steps, under DP8 any unit's
    assert alone.step_s < steady and out["colocated"] and out["tpot_s"] == pytest.approx(steady / s.tokens_per_step)
    assert out["input_tokens_per_s_per_gpu"] == pytest.approx(out["output_tokens_per_s_per_gpu"] * 1024 / 2048)
    shorter = serve(replace(s, output_tokens=512))
    assert shorter["prefill_chunk_tokens_per_gpu"] > out["prefill_chunk_tokens_per_gpu"]
    assert shorter["tpot_s"] > out["tpot_s"]
    argv = ["serve", "--gpu", "h200", "--ep", "8", "--redundant", "0", "--batch", "64", "--context", "3072",
            "--colocated"]  # fmt: skip
    assert main(argv) == 2 and "--colocated needs --output-tokens" in capsys.readouterr().err
    assert main([*argv, "--output-tokens", "2048"]) == 0
    assert "co-located    batch 64 per GPU" in capsys.readouterr().out


def test_a_mixed_step_runs_one_pass_over_both_phases_tokens():
    """Decode's tokens and the chunk's run as one batch: each element-wise kernel and each collective once, on
    both token counts (one kernel's fixed cost), each GEMM once on both (a grouped GEMM on the experts either
    phase reaches); attention stays one kernel per phase."""
    from simulator.analytic.colocated import merged
    from simulator.analytic.serving import spec_layer_ops

    s = deployment(gpu="h200", tp=8, ep=8, redundant=0, batch=2, context=3072, output_tokens=2048, colocated=True)
    dec = spec_layer_ops(s, True, 2, 2, 2048, "decode")
    pre = spec_layer_ops(s, True, 2, 2, 512, "prefill")
    one = merged(dec, pre)
    names = [(op.name, op.kind) for op in one]
    assert len(names) == len(set(names)) + 1  # attention once per phase, everything else once
    by = {op.name: op for op in one if op.kind != "attention"}
    d, p = ({op.name: op for op in ops} for ops in (dec, pre))
    assert by["add_norm.attn"].hbm_bytes == pytest.approx(d["add_norm.attn"].hbm_bytes + p["add_norm.attn"].hbm_bytes)
    assert by["all_reduce.attn"].nvlink_bytes == pytest.approx(
        d["all_reduce.attn"].nvlink_bytes + p["all_reduce.attn"].nvlink_bytes
    )
    union = 1 - (1 - d["experts.down"].active) * (1 - p["experts.down"].active)
    assert by["experts.down"].active == pytest.approx(union)
    assert d["experts.down"].active < union < 1  # the chunk's tokens reach experts decode's did not
    assert {op.phase for op in one if op.kind == "attention"} == {"decode", "prefill"}


def test_experts_on_the_attention_tp_group_are_all_reduced_not_dispatched():
    """TP8 attention with EP8 experts on the same 8 GPUs: every rank holds the group's tokens, runs its experts on
    those routed to them, and one all-reduce sums the outputs (TensorRT-LLM's and SGLang's MoE under attention TP);
    under attention DP the tokens are dispatched and combined."""
    from simulator.analytic.serving import spec_layer_ops

    tp8 = deployment(gpu="h200", tp=8, ep=8, redundant=0, batch=2, context=2048)
    dp8 = deployment(gpu="h200", tp=1, ep=8, redundant=0, batch=2, context=2048)
    names = {op.name for op in spec_layer_ops(tp8, True, 2, 2, 2048, "decode")}
    assert {"all_reduce.attn", "all_reduce.mlp"} <= names
    assert ep_comm_s(tp8, 2, 8, False) == 0.0
    assert "all_reduce.mlp" not in {op.name for op in spec_layer_ops(dp8, True, 2, 2, 2048, "decode")}
    assert ep_comm_s(dp8, 2, 8, False) > 0
    wide = deployment(gpu="h200", tp=8, ep=16, redundant=0, batch=2, context=2048)  # experts beyond the group
    assert ep_comm_s(wide, 2, 16, False) > 0


def test_a_colocated_pool_meets_its_slo_at_the_largest_batch_that_does(capsys):
    """`serve --colocated --tpot-ms`: the largest batch whose mean step (decode and its share of the prompts)
    meets the TPOT target; one sequence more misses it. Here a prompt runs whole in one step (1,024 tokens on its
    DP GPU, more than a step's average share), so TTFT rises with the batch (measured 2026-12-07: 138 ms at one
    sequence a GPU, 159 ms at the TPOT target's 30); a TTFT target the TPOT batch misses takes the largest smaller
    batch that meets it (what set the batch: "ttft"), and one no batch meets is out of reach: a one-line error
    naming the fix."""
    from dataclasses import replace

    from simulator.analytic.colocated import OutOfReach, colocated_numbers, colocated_point
    from simulator.analytic.servingmemory import max_sequences_per_gpu

    s = deployment(gpu="h200", ep=8, redundant=0, context=3072, output_tokens=2048, colocated=True, tpot_ms=50.0)
    rates = rates_for(None, s.node.gpu)
    capacity = max_sequences_per_gpu(s)
    batch, limit = colocated_point(s, rates, capacity)
    assert limit == "tpot" and 1 < batch < capacity
    at, above = colocated_numbers(s, rates, batch), colocated_numbers(s, rates, batch + 1)
    assert at["tpot_s"] <= 0.050 < above["tpot_s"]
    assert all(colocated_numbers(s, rates, b)["ttft_s"] < at["ttft_s"] for b in (1, batch // 4, batch // 2))
    quick = replace(s, ttft_ms=150.0)
    smaller, limit = colocated_point(quick, rates, capacity)
    assert limit == "ttft" and 1 <= smaller < batch
    assert colocated_numbers(s, rates, smaller)["ttft_s"] <= 0.150 < colocated_numbers(s, rates, smaller + 1)["ttft_s"]
    out = serve(s)
    assert (out["batch_per_gpu"], out["decode_limit"], out["tpot_target_s"]) == (batch, "tpot", 0.050)
    assert colocated_point(replace(s, tpot_ms=None), rates, capacity) == (capacity, "kv")
    with pytest.raises(OutOfReach, match="TTFT 100 ms is out of reach co-located") as caught:
        colocated_point(replace(s, ttft_ms=100.0), rates, capacity)
    assert caught.value.target == "ttft"
    argv = ["serve", "--gpu", "h200", "--ep", "8", "--redundant", "0", "--context", "3072", "--output-tokens", "2048",
            "--colocated", "--tpot-ms"]  # fmt: skip
    assert main([*argv, "1"]) == 2
    assert "TPOT 1 ms is out of reach co-located" in capsys.readouterr().err
    assert main([*argv, "50", "--phase", "decode"]) == 2
    assert "--colocated prices one pool running both phases; drop --phase decode" in capsys.readouterr().err
    assert main([*argv, "50"]) == 0
    assert f"co-located    batch {batch} per GPU" in capsys.readouterr().out


def test_two_batch_overlap_places_each_communication_beside_its_compute():
    """Two-batch overlap as DeepSeek's profile figures draw it (`two_batch_layer_s`): with no communication a
    layer is its compute; it is never faster than the longer of compute and communication (what hiding all of
    one under the other would give) nor slower than both in turn; decode's routed experts run with nothing
    beside them, so a network-bound decode layer is dispatch + routed + combine, twice."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from simulator.analytic.serving import SEGMENTS, layer_compute_s, layer_segments_s, two_batch_layer_s

    times = st.floats(0.0, 1e-3, allow_nan=False)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(times, min_size=4, max_size=4), times, times, st.booleans())
    def check(parts, dispatch, combine, prefill):
        seg = dict(zip(SEGMENTS, parts, strict=True))
        compute, comm = 2 * sum(parts), 2 * (dispatch + combine)
        layer = two_batch_layer_s(seg, dispatch, combine, prefill)
        assert max(compute, comm) - 1e-15 <= layer <= compute + comm + 1e-15
        assert two_batch_layer_s(seg, 0.0, 0.0, prefill) == pytest.approx(compute)

    check()
    seg = {"attn0": 1e-5, "attn1": 1e-5, "shared": 1e-5, "mlp": 2e-4}
    assert two_batch_layer_s(seg, 1e-3, 2e-3, prefill=False) == pytest.approx(2 * (1e-3 + 2e-4 + 2e-3))
    s = deployment(gpu="h100", ep=72, redundant=32, context=2100, batch=256)
    rates = rates_for(None, s.node.gpu)
    parts = layer_segments_s(s, rates, 128, 128, s.context, "decode")
    assert sum(parts.values()) == pytest.approx(layer_compute_s(s, rates, True, 128, 128, s.context))
    assert all(v > 0 for v in parts.values())

"""TP collectives overlapped as Transformer Engine's userbuffers run them: each under the GEMM it feeds or drains,
that GEMM in chunks (simulator/analytic/tpoverlap.py; Megatron-Bridge's comm_overlap.py configurations)."""

from __future__ import annotations

import pytest

from simulator.analytic.pricing import op_s
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.analytic.tpoverlap import exposed_s, paired_gemm_s
from simulator.analytic.training import _RunParts, block_ops, tokens_per_gpu
from simulator.runspec import build_run


def llama405b(**kw):
    opts = {"model": "llama-3.1-405b", "gpu": "h100", "gpus": 1024, "tp": 8, "pp": 8, "cp": 2, "virtual_stages": 8,
            "schedule": "interleaved", "precision": "fp8", "fp8_recipe": "tensor", "seq_len": 8192,
            "global_batch_tokens": 1536 * 8192, "recompute": "none", **kw}  # fmt: skip
    return build_run(opts)


def test_each_collective_runs_under_the_gemm_it_feeds_or_drains():
    run = llama405b(tp_comm="overlapped")
    ops = block_ops(run, False)
    rates = rates_for(None, run.node.gpu)
    paired = paired_gemm_s(ops, rates, 1.0, run.node.gpu.hbm_bw_bytes_per_s)
    t = {(op.name, op.phase): op_s(op, rates, hbm_bytes_per_s=run.node.gpu.hbm_bw_bytes_per_s) for op in ops}
    assert paired[("attn", "F", "all_gather")] == pytest.approx(t[("qkv_proj", "forward")])
    assert paired[("attn", "F", "reduce_scatter")] == pytest.approx(t[("o_proj", "forward")])
    assert paired[("mlp", "F", "all_gather")] == pytest.approx(t[("mlp.gate_up", "forward")])
    assert paired[("mlp", "F", "reduce_scatter")] == pytest.approx(t[("mlp.down", "forward")])
    # backward: the output gradients are gathered for the row-parallel dgrads, the column-parallel ones scatter
    assert paired[("attn", "B", "all_gather")] == pytest.approx(t[("o_proj.dgrad", "backward_input")])
    assert paired[("mlp", "B", "reduce_scatter")] == pytest.approx(t[("mlp.gate_up.dgrad", "backward_input")])


def test_what_outlasts_its_gemm_shows():
    paired = {("attn", "F", "all_gather"): 2.0, ("attn", "F", "reduce_scatter"): 5.0}
    assert exposed_s(3.0, 1.0, paired, "attn", "F") == pytest.approx(1.0)  # the gather's extra second
    assert exposed_s(3.0, 1.0, paired, "mlp", "F") == pytest.approx(4.0)  # no GEMM to hide under: all of it


def test_overlapped_gemms_run_in_chunks_of_a_ranks_tokens():
    """Ring exchange: tp GEMMs, one per rank's tokens; the weight gradients run whole."""
    plain, chunked = (block_ops(llama405b(tp_comm=c), False) for c in ("exposed", "overlapped"))
    by_name = {(op.name, op.phase): op for op in plain}
    for op in chunked:
        whole = by_name[(op.name, op.phase)]
        assert op.flops == pytest.approx(whole.flops)
        if op.kind != "gemm":
            continue
        if op.phase == "backward_weight":
            assert (op.m, op.groups) == (whole.m, whole.groups)
        else:
            assert (op.m, op.groups) == (whole.m / 8, 8) and op.m == tokens_per_gpu(llama405b())


def test_overlap_hides_part_of_the_collectives_and_pays_for_the_chunks():
    """405B at FP8 on H100s: the QKV and o_proj GEMMs are shorter than their all-gather and reduce-scatter, so
    overlap hides most of TP's time but not all of it; overlapped lies between no TP collectives and exposed."""
    exposed, overlapped = (estimate(llama405b(tp_comm=c)).step_time_s for c in ("exposed", "overlapped"))
    run = llama405b(tp_comm="overlapped")
    rates = rates_for(None, run.node.gpu)
    paired = paired_gemm_s(block_ops(run, False), rates, 1.0, run.node.gpu.hbm_bw_bytes_per_s)
    parts = _RunParts(run, rates)
    assert parts.tp_exposed_s(False, "attn", "F") > 0  # the gather outlasts the QKV GEMM
    assert parts.tp_exposed_s(False, "mlp", "F") == 0  # the MLP's GEMMs outlast theirs
    assert parts.tp_gather_s > paired[("attn", "F", "all_gather")]
    assert overlapped < exposed


def test_a_moe_blocks_collectives_have_no_gemm_to_hide_under():
    """The MoE block's TP traffic is the token dispatcher's: userbuffers pairs none of it, shared experts included."""
    opts = {"model": "deepseek-v2-lite", "gpu": "h100", "gpus": 16, "tp": 2, "pp": 1, "ep": 8, "schedule": "1f1b",
            "tp_comm": "overlapped", "seq_len": 4096, "global_batch_tokens": 64 * 4096}  # fmt: skip
    run = build_run(opts)
    rates = rates_for(None, run.node.gpu)
    paired = paired_gemm_s(block_ops(run, True), rates, 1.0, run.node.gpu.hbm_bw_bytes_per_s)
    assert not any(part == "mlp" for part, _, _ in paired) and ("attn", "F", "all_gather") in paired
    parts = _RunParts(run, rates)
    assert parts.tp_exposed_s(True, "mlp", "F") == pytest.approx(parts.tp_gather_s + parts.tp_scatter_s)
    shared = [op for op in block_ops(run, True) if op.component == "shared_experts" and op.phase == "forward"]
    assert shared and all(op.groups == 1 for op in shared)  # not chunked: nothing streams in under them

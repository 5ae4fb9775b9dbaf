"""Serving engines (`workloads.engines`, workloads/data/engines.toml): the kernels TensorRT-LLM, SGLang and vLLM
fuse or run beside the main stream, applied to the operation list and priced.

Each departure is read from the engine's source (the file cites it); these tests check that each is applied
where the engine applies it and nowhere else, that it changes a step the way the physics says (a fused kernel
keeps its bytes and loses its launch, a kernel aside keeps its work), and that the default engine leaves the
operation list as the model defines it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from simulator.analytic.colocated import mixed_step
from simulator.analytic.pricing import op_s
from simulator.analytic.profile import rates_for
from simulator.analytic.serving import decode, layer_fusions, prefill, spec_layer_ops
from simulator.cli import main
from simulator.explore.servingvalidate import published_serving
from simulator.presets import deployment
from workloads.engines import NO_FUSIONS, Fusions, _engine, engine_names, load_engine
from workloads.registry import load_model
from workloads.servingops import launched, serving_layer_ops

V3 = load_model("deepseek-v3")
MIB = 1024 * 1024


def test_every_engine_is_sourced_and_none_changes_nothing():
    assert {"none", "trtllm", "sglang", "vllm", "vllm-0.12"} <= set(engine_names())
    for name in engine_names():
        assert load_engine(name).source
    none = load_engine("none")
    assert none.fusions("decode", True, "gh100", "h200", 8, 32, 1.0, False) == NO_FUSIONS


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"title": "t", "source": "s", "fused_qkv": True}, "unknown key 'fused_qkv'"),
        ({"title": "t", "source": "s", "allreduce_norm": "yes"}, "allreduce_norm = 'yes' must be a bool"),
        ({"title": "t", "source": "s", "shared_experts_aside": "always"}, "shared_experts_aside must be one of"),
        ({"title": "t", "source": "s", "allreduce_norm_max_mb": {"gh100": {"8": -1}}}, "positive MiB"),
        ({"title": "t"}, "needs a title and a source"),
    ],
)
def test_an_engine_table_is_checked_key_by_key(body, match):
    with pytest.raises(ValueError, match=match):
        _engine("x", body)


def test_unknown_engine_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="engine='tgi'; use one of none, trtllm"):
        deployment("deepseek-v3", "h200", tp=8, ep=8, redundant=0, engine="tgi")


def test_tensorrt_llm_fuses_under_tp_and_runs_shared_experts_aside_in_decode_only():
    e = load_engine("trtllm")
    assert e.fusions("decode", True, "gh100", "h200", 8, 32, MIB, False) == Fusions(True, True, True, "trtllm", True)
    prefill = e.fusions("prefill", True, "gh100", "h200", 8, 8192, 100 * MIB, False)
    assert prefill == Fusions(True, True, False, "trtllm", True)
    assert not e.fusions("decode", True, "gh100", "h200", 1, 32, MIB, True).allreduce_norm  # no TP, no all-reduce


def test_sglang_fuses_the_all_reduce_where_its_server_turns_it_on():
    e = load_engine("sglang")
    assert e.fusions("decode", True, "gb100", "b200", 8, 32, MIB, False).allreduce_norm
    assert not e.fusions("decode", True, "gh100", "h20", 8, 32, MIB, False).allreduce_norm  # not on H20
    assert not e.fusions("decode", False, "gh100", "h100", 2, 32, MIB, False).allreduce_norm  # a dense model
    assert not e.fusions("prefill", True, "gh100", "h200", 8, 4096, MIB, False).allreduce_norm  # over 2,048 tokens
    assert not e.fusions("decode", True, "cdna3", "mi300x", 8, 32, MIB, False).allreduce_norm  # not Hopper/Blackwell
    assert e.fusions("decode", True, "gh100", "h200", 8, 512, MIB, False).shared_aside
    assert not e.fusions("decode", True, "gh100", "h200", 1, 512, MIB, True).shared_aside  # behind DeepEP
    assert not e.fusions("prefill", True, "gh100", "h200", 8, 2048, MIB, False).shared_aside  # over 1,024 tokens


def test_vllm_fuses_messages_up_to_its_size_table_and_0_12_never():
    e = load_engine("vllm")
    assert e.fusions("decode", False, "gh100", "h100", 8, 32, 0.5 * MIB, False).allreduce_norm
    assert not e.fusions("decode", False, "gh100", "h100", 8, 64, 0.6 * MIB, False).allreduce_norm
    assert e.fusions("decode", False, "gh100", "h100", 2, 4096, 60 * MIB, False).allreduce_norm
    assert not load_engine("vllm-0.12").fusions("decode", False, "gh100", "h100", 2, 32, MIB, False).allreduce_norm


def _layer(fusions: Fusions, phase: str = "decode", tokens: float = 4.0) -> list:
    return serving_layer_ops(V3, True, tokens, tokens, 2048, phase, 8, 8, 0, "fp8", "fp8", fusions=fusions)


def test_fused_down_projections_are_one_gemm_of_the_same_work():
    apart, joint = _layer(NO_FUSIONS), _layer(Fusions(qkv_a=True))
    names = [op.name for op in joint]
    assert "qkv_a_proj" in names and "q_a_proj" not in names and "kv_a_proj_with_mqa" not in names
    assert len(joint) == len(apart) - 1
    down = [op for op in apart if op.name in ("q_a_proj", "kv_a_proj_with_mqa")]
    (qkv,) = [op for op in joint if op.name == "qkv_a_proj"]
    assert qkv.flops == pytest.approx(sum(op.flops for op in down))
    assert qkv.n == V3.q_lora_rank + V3.kv_lora_rank + V3.qk_rope_head_dim
    # the weights are read once either way; the input once instead of twice
    assert qkv.hbm_bytes < sum(op.hbm_bytes for op in down)


def test_a_fused_norm_costs_its_bytes_without_a_launch_and_aside_never_more_than_in_turn():
    s = deployment("deepseek-v3", "h200", tp=8, ep=8, redundant=0, engine="trtllm")
    rates, hbm = rates_for(None, s.node.gpu), s.node.gpu.hbm_bw_bytes_per_s
    ops = _layer(Fusions(True, True, True))
    fused = [op for op in ops if op.launch == "fused"]
    aside = [op for op in ops if op.launch == "aside"]
    assert {op.name for op in fused} == {"add_norm.attn", "add_norm.mlp"}
    assert {op.component for op in aside} == {"shared_experts"}
    for op in fused:
        own = op_s(replace(op, launch="own"), rates, hbm_bytes_per_s=hbm)
        assert 0 < op_s(op, rates, hbm_bytes_per_s=hbm) < own
    for op in aside:
        assert 0 < op_s(op, rates, hbm_bytes_per_s=hbm) < op_s(replace(op, launch="own"), rates, hbm_bytes_per_s=hbm)


def test_a_mixed_step_is_launched_again_as_the_step_it_is():
    ops = launched(_layer(Fusions(True, True, True)), Fusions(True, True, False))
    assert not [op for op in ops if op.launch == "aside"]  # a step with prompt tokens runs in turn
    assert {op.name for op in ops if op.launch == "fused"} == {"add_norm.attn", "add_norm.mlp"}


def test_an_engine_makes_a_small_tp_decode_step_faster_and_a_dep_prefill_differs_by_its_joint_gemm_alone():
    kw = {"tp": 8, "ep": 8, "redundant": 0, "batch_per_instance": 16, "context": 2048}
    none, trt = (deployment("deepseek-v3", "h200", **kw, engine=e) for e in ("none", "trtllm"))
    rates = replace(rates_for(None, none.node.gpu), gemm_tables={}, bmm_tables={})  # the fusions alone: the fits
    assert decode(trt, rates, 2).step_s < decode(none, rates, 2).step_s
    # DeepSeek's own layout (attention DP, EP) under TensorRT-LLM: the prefill runs in turn (no CUDA graphs), so
    # only the joint down projection differs; the default engine is the list as the model defines it
    dp = deployment("deepseek-v3", "h800", engine="trtllm").for_prefill()
    assert layer_fusions(dp, "prefill", 16384) == Fusions(True, False, False, "trtllm", True)
    base = deployment("deepseek-v3", "h800").for_prefill()
    plain = serving_layer_ops(V3, True, 1024, 1024, 2048, "prefill", 1, base.ep, base.redundant, base.weight_dtype,
                              base.kv_dtype)  # fmt: skip
    assert spec_layer_ops(base, True, 1024, 1024, 2048, "prefill") == tuple(plain)
    h800 = replace(rates_for(None, dp.node.gpu), gemm_tables={})
    assert prefill(dp, h800, 4096).step_s <= prefill(base, h800, 4096).step_s


def test_colocated_steps_take_the_engine():
    kw = {"tp": 8, "ep": 8, "redundant": 0, "colocated": True, "output_tokens": 1024, "context": 2048}
    none, trt = (deployment("deepseek-v3", "h200", **kw, engine=e) for e in ("none", "trtllm"))
    rates = rates_for(None, none.node.gpu)
    fits = replace(rates, gemm_tables={}, bmm_tables={})  # its fusions: faster with the GEMMs priced alike
    assert mixed_step(trt, fits, 2, 64).step_s < mixed_step(none, fits, 2, 64).step_s
    # its kernels: TensorRT-LLM's own block-FP8 Linear on Hopper, slower at a few tokens than DeepGEMM's rates
    assert mixed_step(trt, rates, 2, 64).step_s > mixed_step(trt, fits, 2, 64).step_s


def test_published_rows_name_the_engine_that_ran_them():
    rows = published_serving()
    engines = {r["id"]: r.get("engine") for r in rows}
    assert engines["aic-r1-gb200-trtllm-fp4-tp8-c1"] == "trtllm"
    assert engines["aic-r1-b200-sglang-tp8-c16"] == "sglang"
    assert engines["aic-qwen3-32b-h100-vllm-tp2-c32"] == "vllm-0.12"  # vLLM 0.12: no all-reduce fusion at O2
    assert engines["deepseek-day6-decode-node"] is None  # DeepSeek's own engine: nothing read of it
    assert all(e in engine_names() for e in engines.values() if e)


def test_cli_serve_and_ops_take_the_engine(capsys):
    argv = ["serve", "--gpu", "h200", "--tp", "8", "--ep", "8", "--redundant", "0", "--batch-per-instance", "16",
            "--phase", "decode", "--json"]  # fmt: skip
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert main([*argv, "--engine", "trtllm"]) == 0
    fused = capsys.readouterr().out
    # its fusions and its own kernels as timed (its Linear, its MLA decode BMMs: slower at 2 tokens a GPU) differ
    assert json.loads(fused)["tpot_s"] != json.loads(plain)["tpot_s"]
    assert main(["ops", "deepseek-v3", "--phase", "decode", "--gpu", "h200", "--tp", "8", "--engine", "trtllm"]) == 0
    out = capsys.readouterr().out
    assert "qkv_a_proj" in out and "add_norm.attn (fused)" in out and "(aside)" in out
    assert "kv_b_proj.uk" in out and "kv_b_proj.uv" in out and "cast.kv_latent" not in out
    assert main(["ops", "deepseek-v3", "--engine", "trtllm"]) == 2
    assert "--engine sets how a serving engine launches the list" in capsys.readouterr().err


def test_tensorrt_llms_attention_dp_gathers_the_tokens_and_scatters_the_outputs():
    """TensorRT-LLM's MoE under attention DP (fused_moe_cutlass.py, 2025 versions): no all-to-all unless
    the EP group shares a multi-node NVLink domain and is larger than top-k; the tokens (bf16 for block-scaled FP8,
    with an int32 slot and an fp32 weight per expert picked) are all-gathered and the bf16 outputs reduce-scattered,
    as NCCL's collectives were timed on the node's GPUs, whatever the routing."""
    from hwmodels.collectives import in_node_s
    from simulator.analytic.servingcomm import ep_comm_s, gathered_dtype, gathers_tokens
    from workloads.servingops import gathered_ep_ops

    kw = {"weight_dtype": "fp8", "tp": 1, "ep": 8, "redundant": 0, "batch": 128}
    trt, none = (deployment("deepseek-v3", "h200", **kw, engine=e) for e in ("trtllm", "none"))
    assert gathers_tokens(trt, 8) and not gathers_tokens(none, 8)
    gathered = 8 * 128 * (7168 * 2 + 8 * 8)
    expected = in_node_s("all_gather", 8, gathered, trt.node) + in_node_s("reduce_scatter", 8, 8 * 128 * 7168 * 2,
                                                                          trt.node)  # fmt: skip
    assert ep_comm_s(trt, 128, 8, False) == pytest.approx(expected)
    assert ep_comm_s(trt, 128, 8, False, imbalance=2.0) == ep_comm_s(trt, 128, 8, False)  # the same bytes
    assert ep_comm_s(trt, 128, 8, False, part="dispatch") == pytest.approx(
        in_node_s("all_gather", 8, gathered, trt.node)
    )
    assert ep_comm_s(none, 128, 8, False) != ep_comm_s(trt, 128, 8, False)  # DeepEP's low-latency kernels
    # NVFP4 experts gather packed FP4 with its scales, per-tensor FP8 its bytes, weight-only experts bf16
    b200 = deployment("deepseek-v3", "b200", **kw, engine="trtllm")

    def gathered_bytes_per_element(s):  # one token gathered from one other rank, its routing apart
        return (gathered_ep_ops(V3, 1, 2, "decode", gathered_dtype(s))[0].nvlink_bytes - 8 * 8) / 7168

    assert gathered_bytes_per_element(replace(b200, weight_dtype="fp4")) == 0.5 + 1 / 16
    assert gathered_bytes_per_element(replace(trt, fp8_recipe="tensor")) == 1.0
    assert gathered_bytes_per_element(replace(b200, weight_dtype="fp4", activation_dtype="bf16")) == 2.0
    # a GB200 rack: EP4 (not above top-8) gathers, EP16 runs the all-to-all across the trays' NVLink
    gb = {g: deployment("deepseek-v3", "gb200", **{**kw, "ep": g}, engine="trtllm") for g in (4, 16)}
    assert gathers_tokens(gb[4], 4) and not gathers_tokens(gb[16], 16)
    # an EP group across nodes runs the all-to-all (TensorRT-LLM's wide-EP MoE on DeepEP)
    wide = deployment("deepseek-v3", "h200", **{**kw, "ep": 16, "redundant": 32}, engine="trtllm")
    assert not gathers_tokens(wide, 16) and ep_comm_s(wide, 128, 16, False) > 0
    # attention TP: the experts sit on the TP group, nothing is exchanged
    tp8 = deployment("deepseek-v3", "h200", **{**kw, "tp": 8, "batch": None, "batch_per_instance": 16},
                     engine="trtllm")  # fmt: skip
    assert not gathers_tokens(tp8, 8) and ep_comm_s(tp8, 16, 8, False) == 0.0

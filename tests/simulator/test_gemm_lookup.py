"""Dense GEMMs priced as timed by shape (hwmodels.gemmtables), by the FP8 recipe, at the shapes a tensor-parallel
rank runs: training's, and serving's where the engine runs the library timed (TensorRT-LLM's Linear)."""

from __future__ import annotations

import json

import pytest

from hwmodels.registry import load_gpu
from simulator.analytic.pricing import gemm_op_s, op_s
from simulator.analytic.profile import rates_for
from simulator.analytic.report import estimate
from simulator.analytic.serving import head_s, layer_fusions, spec_layer_ops
from simulator.analytic.training import block_ops
from simulator.cli.main import main
from simulator.presets import deployment
from simulator.runspec import build_run
from workloads.gemms import attention_gemms, ffn_gemms, tp_shard
from workloads.ops import elementwise_ops
from workloads.registry import load_model
from workloads.servingops import serving_head_ops, serving_layer_ops


def llama(gpu: str = "h100", **kw):
    opts = {"model": "llama-3.1-70b", "gpu": gpu, "gpus": 64, "tp": 4, "pp": 2, "schedule": "1f1b",
            "seq_len": 8192, "global_batch_tokens": 64 * 8192, **kw}  # fmt: skip
    return build_run(opts)


def dense_gemms(run):
    return [op for op in block_ops(run, False) if op.kind == "gemm"]


def test_a_published_profile_prices_training_gemms_as_timed():
    run = llama(precision="bf16")
    rates = rates_for(None, run.node.gpu)
    table = rates.gemm_tables["bf16_us"]
    for op in dense_gemms(run):
        assert op_s(op, rates) == pytest.approx(table.time_s(op.m, op.n, op.k))


def test_a_measured_profile_keeps_its_own_gemms():
    """A trace-derived profile measured the GEMMs as they ran: no table overrides them."""
    run = llama(precision="bf16")
    rates = rates_for("trace-deepseek-v3-train", run.node.gpu)
    assert rates.gemm_tables == {} and all(gemm_op_s(op, rates) is None for op in dense_gemms(run))


@pytest.mark.parametrize(
    ("gpu", "recipe", "column"),
    [("h100", "tensor", "fp8_tensor_us"), ("b200", "block", "fp8_block_us"), ("b200", "mx", "fp8_block_us"),
     ("b200", "tensor", "fp8_tensor_us"), ("h100", "block", None)],
)  # fmt: skip
def test_the_fp8_recipe_picks_the_kernel_timed(gpu, recipe, column):
    """Per-tensor FP8 as cuBLAS's scaled GEMM; block-scaled as DeepGEMM where it was timed (Blackwell) and MXFP8
    alike; block-scaled on Hopper keeps the profile's DeepGEMM rates (its README's, V3's kernels)."""
    run = llama(gpu, precision="fp8", fp8_recipe=recipe)
    rates = rates_for(None, run.node.gpu)
    for op in dense_gemms(run):
        got = gemm_op_s(op, rates)
        if column is None:
            assert got is None
        else:
            assert op.scaling == recipe
            assert got == pytest.approx(rates.gemm_tables[column].time_s(op.m, op.n, op.k))


def test_mx_needs_block_scaled_tensor_cores(capsys):
    assert main(["train", "--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "8", "--fp8-recipe", "mx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fp8_recipe mx" in err[0] and "h100" in err[0]


def test_an_fp8_recipe_on_a_bf16_run_is_refused(capsys):
    assert main(["train", "--precision", "bf16", "--fp8-recipe", "tensor"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fp8_recipe=tensor" in err[0] and "precision fp8" in err[0]
    assert main(["train", "--precision", "bf16", "--fp8-recipe", "block", "--json"]) == 0  # the default: harmless


def test_per_tensor_scaling_reads_each_cast_input_for_its_amax():
    spec = load_model("llama-3.1-8b")
    for phase in ("forward", "backward_input"):
        plain = elementwise_ops(spec, False, True, 4096.0, phase)
        amax = elementwise_ops(spec, False, True, 4096.0, phase, amax=True)
        casts = {op.name: op.hbm_bytes for op in plain if op.component == "cast"}
        reads = {op.name.removeprefix("amax."): op.hbm_bytes for op in amax if op.name.startswith("amax.")}
        assert casts and reads.keys() == casts.keys()
        assert all(reads[n] == pytest.approx(casts[n] * 2 / 3) for n in casts)  # bf16 read of a bf16 -> fp8 cast
    run = llama(precision="fp8", fp8_recipe="tensor")
    assert any(op.name.startswith("amax.") for op in block_ops(run, False))
    assert not any(op.name.startswith("amax.") for op in block_ops(run.with_(fp8_recipe="block"), False))


def test_a_tensor_parallel_rank_runs_every_token_at_a_slice_of_the_width():
    spec = load_model("llama-3.1-70b")
    tokens, tp = 1024.0, 8
    for g in attention_gemms(spec, tokens) + ffn_gemms(spec, False, tokens):
        s = tp_shard(g, tp)
        assert s.flops == pytest.approx(g.flops) and s.m == tokens * tp
        if g.name in ("o_proj", "mlp.down"):
            assert (s.n, s.k) == (g.n, g.k / tp)  # row-parallel: the reduction split
        else:
            assert (s.n, s.k) == (g.n / tp, g.k)  # column-parallel: the output split
    moe = load_model("qwen3-30b-a3b")
    for g in ffn_gemms(moe, True, tokens, ep=8):
        if g.component in ("router", "routed_experts"):
            assert tp_shard(g, tp) == g


def test_serving_gemms_keep_the_profile_fits_outside_the_library_timed():
    """The tables time TensorRT-LLM's Linear: an engine that runs other kernels (or none named) keeps the fitted
    profile (SGLang's block FP8 on Hopper is DeepGEMM, the profile's own rates)."""
    spec = load_model("llama-3.1-70b")
    rates = rates_for("h200-trtllm", load_gpu("h200"))
    for engine in ("none", "sglang", "vllm"):
        s = deployment("llama-3.1-70b", gpu="h200", tp=2, engine=engine)
        ops = serving_layer_ops(spec, False, 64.0, 64.0, 2048.0, "decode", 2, 1, 0, "fp8", "bf16",
                                fusions=layer_fusions(s, "decode", 64.0))  # fmt: skip
        assert rates.gemm_tables and all(gemm_op_s(op, rates) is None for op in ops if op.kind == "gemm"), engine


@pytest.mark.parametrize(("gpu", "recipe", "column"),
                         [("h200", "block", "fp8_block_trtllm_us"), ("h200", "tensor", "fp8_tensor_us"),
                          ("b200", "block", "fp8_block_us")])  # fmt: skip
def test_tensorrt_llms_gemms_are_its_linear_as_timed_at_a_ranks_shape(gpu, recipe, column):
    """Under TensorRT-LLM every projection is its Linear, which the GPU's table times: block FP8 as its own kernel on
    Hopper (fp8_quantize_1x128 + fp8_block_scaling_gemm), DeepGEMM's on Blackwell, per-tensor FP8 as cuBLAS's
    scaled GEMM; each at the shape a TP rank runs (1/tp of the outputs, of o_proj's and down's inputs)."""
    s = deployment("deepseek-v3", gpu=gpu, tp=8, ep=8, redundant=0, engine="trtllm", fp8_recipe=recipe)
    rates = rates_for("h200-trtllm" if gpu == "h200" else "b200-trtllm", s.node.gpu)
    ops = {op.name: op for op in spec_layer_ops(s, True, 4.0, 4.0, 2048.0, "decode")}
    table = rates.gemm_tables[column]
    q_b, o_proj = ops["q_b_proj"], ops["o_proj"]
    assert (q_b.m, q_b.n, q_b.k) == (32, 128 * 192 / 8, 1536) and (o_proj.n, o_proj.k) == (7168, 128 * 128 / 8)
    for op in (q_b, o_proj, ops["qkv_a_proj"]):
        assert op.library == "trtllm" and op.scaling == recipe
        assert gemm_op_s(op, rates) == pytest.approx(table.time_s(op.m, op.n, op.k))
    # absorbed decode: two batched GEMMs over the rank's 16 heads, not a Linear: their own table (hwmodels.bmmtables)
    uk = ops["kv_b_proj.uk"]
    assert "kv_b_proj" not in ops and uk.groups == 16
    assert gemm_op_s(uk, rates) == pytest.approx(rates.bmm_tables["uk_fp8_us"].time_s(32, 16))


def test_tensorrt_llms_output_head_is_its_linear_as_timed_at_a_ranks_vocabulary():
    """The head is a Linear too (bf16): under TensorRT-LLM its rank's share of the vocabulary is looked up; other
    engines keep the fits."""
    s = deployment("llama-3.1-70b", gpu="h200", tp=2, engine="trtllm")
    rates = rates_for("h200-trtllm", s.node.gpu)
    (head,) = serving_head_ops(s.model, 64.0, "decode", 2, "trtllm")
    assert (head.m, head.n, head.k, head.library) == (128, 128256 / 2, 8192, "trtllm")
    assert head_s(s, rates, 64.0) == pytest.approx(rates.gemm_tables["bf16_us"].time_s(128, 128256 / 2, 8192))
    plain = deployment("llama-3.1-70b", gpu="h200", tp=2, engine="sglang")
    (fitted,) = serving_head_ops(plain.model, 64.0, "decode", 2)
    assert fitted.library == "" and head_s(plain, rates, 64.0) == pytest.approx(op_s(fitted, rates))


def test_the_fp8_recipe_changes_the_step_by_its_kernels():
    """The same run, per-tensor against block-scaled FP8 on an H100: cuBLAS's per-tensor GEMMs (timed) outrun
    DeepGEMM's published Hopper rates, so the step is shorter, though the recipe adds its amax reads."""
    block, tensor = (estimate(llama(precision="fp8", fp8_recipe=r)).step_time_s for r in ("block", "tensor"))
    assert tensor < block


def test_calibrate_show_lists_the_gemm_tables_a_published_profile_looks_up(capsys):
    assert main(["calibrate", "show", "published", "--json"]) == 0
    timed = json.loads(capsys.readouterr().out)["looked_up_gemms"]
    assert timed["h100"] == ["bf16_us", "fp8_tensor_us", "fp8_block_trtllm_us"] and "fp8_block_us" in timed["b200"]
    assert main(["calibrate", "show", "trace-deepseek-v3-train", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["looked_up_gemms"] == {} == shown["looked_up_bmms"]  # a measured profile's GEMMs are its own
    assert main(["calibrate", "show", "h200-trtllm", "--json"]) == 0
    bmms = json.loads(capsys.readouterr().out)["looked_up_bmms"]
    assert bmms["h200"] == ["uk_bf16_us", "uk_fp8_us", "uv_bf16_us", "uv_fp8_us"] and set(bmms) == {
        "b200", "gb200", "h100", "h200"}  # fmt: skip
    assert main(["calibrate", "show", "h200-trtllm"]) == 0
    assert "TensorRT-LLM's MLA decode BMMs by tokens and heads" in capsys.readouterr().out

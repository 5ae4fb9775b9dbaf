"""--dense-weight-dtype: a checkpoint that quantizes its MoE blocks alone keeps attention and the dense layers'
MLPs wider (NVIDIA's FP4 DeepSeek-R1: FP8; GPT-OSS's MXFP4: bf16). Those GEMMs run in that dtype, read its bytes
and hold its memory; the experts keep --weight-dtype."""

from __future__ import annotations

import json

import pytest

from simulator.analytic.serving import spec_layer_ops
from simulator.analytic.servingmemory import weight_bytes_per_gpu
from simulator.cli.main import main
from simulator.explore.servingvalidate import published_serving
from simulator.presets import deployment
from workloads.dtypes import dtype_bytes
from workloads.params import param_breakdown


def r1(**kw):
    return deployment("deepseek-v3", "b200", weight_dtype="fp4", tp=1, ep=4, redundant=0, **kw)


def test_attention_and_dense_mlps_take_the_dense_dtype_the_experts_keep_theirs():
    s = r1(dense_weight_dtype="fp8")
    for moe in (False, True):
        ops = spec_layer_ops(s, moe, 256.0, 256.0, 2048.0, "decode")
        gemms = {op.name: op for op in ops if op.kind in ("gemm", "grouped_gemm")}
        assert all(op.precision == "fp8" and not op.weights for op in gemms.values() if op.part == "attn")
        for op in gemms.values():
            if op.component in ("routed_experts", "shared_experts", "dense_ffn"):
                want = "fp4" if moe else "fp8"  # the dense layers' MLP: outside the MoE blocks
                assert op.precision == want and op.profile_class.endswith(f"_{want}"), op.name
    plain = {op.name: op for op in spec_layer_ops(r1(), True, 256.0, 256.0, 2048.0, "decode")}
    wide = {op.name: op for op in spec_layer_ops(s, True, 256.0, 256.0, 2048.0, "decode")}
    q = "q_a_proj"
    assert wide[q].hbm_bytes > plain[q].hbm_bytes  # the weights read at a byte, not 0.56
    assert wide["experts.gate_up"].hbm_bytes == plain["experts.gate_up"].hbm_bytes


def test_gpt_oss_attention_in_bf16_beside_w4a8_experts():
    s = deployment("gpt-oss-120b", "b200", weight_dtype="fp4", activation_dtype="fp8", dense_weight_dtype="bf16",
                   tp=1, ep=1, redundant=0)  # fmt: skip
    classes = {op.name: op.profile_class for op in spec_layer_ops(s, True, 64.0, 64.0, 1024.0, "decode")}
    assert classes["qkv_proj"] == "gemm_bf16" and classes["o_proj"] == "gemm_bf16"
    assert classes["experts.gate_up"] == "grouped_gemm_w4a8"


def test_the_memory_holds_the_wider_weights_outside_the_moe_blocks():
    spec = r1().model
    p = param_breakdown(spec, include_mtp=False)
    outside = p["attn_proj"] + p["dense_ffn"]
    extra = weight_bytes_per_gpu(r1(dense_weight_dtype="fp8"), 4, 0) - weight_bytes_per_gpu(r1(), 4, 0)
    assert extra == pytest.approx(outside * (dtype_bytes("fp8") - dtype_bytes("fp4")), rel=1e-9)


def test_serving_gets_slower_not_faster_with_wider_dense_weights(capsys):
    args = ["serve", "--model", "deepseek-v3", "--gpu", "b200", "--weight-dtype", "fp4", "--tp", "1", "--ep", "4",
            "--redundant", "0", "--phase", "decode", "--batch", "64", "--json"]  # fmt: skip
    assert main(args) == 0
    fp4 = json.loads(capsys.readouterr().out)
    assert main([*args, "--dense-weight-dtype", "fp8"]) == 0
    fp8 = json.loads(capsys.readouterr().out)
    assert fp8["tpot_s"] > fp4["tpot_s"]


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "llama-3.1-70b", "--weight-dtype", "fp4", "--dense-weight-dtype", "fp8"], "is dense"),
    (["--weight-dtype", "fp8", "--dense-weight-dtype", "fp4"], "narrower than the experts' fp8"),
])  # fmt: skip
def test_bad_dense_dtypes_are_one_line_errors(args, message, capsys):
    assert main(["serve", "--gpu", "b200", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_published_checkpoints_are_posed_as_they_quantize():
    rows = [r for r in published_serving() if r.get("weight_dtype") == "fp4"]
    for r in rows:
        if r["model"].startswith("gpt-oss"):
            assert r["dense_weight_dtype"] == "bf16", r["id"]
        elif r["model"] == "deepseek-v3":
            assert r["dense_weight_dtype"] == "fp8", r["id"]
        else:  # Qwen3's and Llama's FP4 checkpoints: no source says they keep anything wider
            assert "dense_weight_dtype" not in r, r["id"]


def test_a_cached_prefix_is_up_projected_at_the_attention_dtype():
    s = r1(dense_weight_dtype="fp8")
    ops = spec_layer_ops(s, True, 1024.0, 1024.0, 3072.0, "prefill", prefix=2048.0)
    (kv_b,) = [op for op in ops if op.name == "kv_b_proj" and op.flops and op.m == 2048.0]
    assert kv_b.precision == "fp8"

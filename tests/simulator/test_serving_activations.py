"""`--activation-dtype`: what the quantized weights' GEMMs take as activations and compute in (W4A8: MXFP8 x
MXFP4 at the FP8 rate, as TensorRT-LLM runs GPT-OSS's experts on Blackwell; weight-only W4A16 / W8A16 at the
bf16 rate), the weights keeping their own bytes."""

from __future__ import annotations

import json

import pytest

from simulator.analytic.profile import rates_for
from simulator.analytic.serving import prefill, serve
from simulator.analytic.servingmemory import weight_bytes_per_gpu
from simulator.cli import main
from simulator.presets import deployment
from workloads.dtypes import dtype_bytes
from workloads.gemms import Gemm
from workloads.ops import gemm_op


def test_a_w4a8_gemm_reads_fp4_weights_and_fp8_activations_and_computes_in_fp8():
    g = Gemm("mlp.up", "routed_experts", 512, 2880, 2880, groups=4)
    w4a4, w4a8, w4a16 = (gemm_op(g, "decode", "mlp", "fp4", act) for act in (None, "fp8", "bf16"))
    assert (w4a4.precision, w4a8.precision, w4a16.precision) == ("fp4", "fp8", "bf16")  # the kernel class
    out = 4 * 512 * 2880 * 2
    weights = 4 * 2880 * 2880 * dtype_bytes("fp4")
    for op, act in ((w4a8, 1), (w4a16, 2)):
        assert op.hbm_bytes == pytest.approx(4 * 512 * 2880 * act + weights + out)
        assert op.flops == w4a4.flops
    assert w4a4.hbm_bytes == pytest.approx((4 * 512 * 2880 + 4 * 2880 * 2880) * dtype_bytes("fp4") + out)
    assert gemm_op(g, "decode", "mlp", "fp8", "fp8") == gemm_op(g, "decode", "mlp", "fp8")  # W8A8 is the default
    bf16 = Gemm("embed", "embedding", 512, 2880, 2880)  # a bf16 GEMM stays bf16 whatever the activations
    assert gemm_op(bf16, "decode", "attn", "fp4", "fp8").precision == "bf16"


def test_wider_activations_slow_the_compute_bound_gemms_and_keep_the_weights():
    """Prefill (compute-bound) at W4A4, W4A8, W4A16 on a B200: each wider activation is slower; the weights per
    GPU are the same bytes; the default is W4A4."""
    specs = [deployment(gpu="b200", weight_dtype="fp4", activation_dtype=a) for a in (None, "fp8", "bf16")]
    rates = rates_for(None, specs[0].node.gpu)
    steps = [prefill(s, rates, 16384).step_s for s in specs]
    assert steps[0] < steps[1] < steps[2]
    same = deployment(gpu="b200", weight_dtype="fp4", activation_dtype="fp4")  # W4A4 said outright
    assert prefill(same, rates, 16384).step_s == steps[0]
    weights = {weight_bytes_per_gpu(s, s.ep, s.redundant) for s in specs}
    assert len(weights) == 1
    assert serve(specs[1])["weights_gb_per_gpu"] == serve(specs[0])["weights_gb_per_gpu"]


def test_fp4_weights_under_wider_activations_run_where_there_is_no_fp4_tensor_core():
    """W4A16 runs on a Hopper GPU (weight-only kernels): its GEMMs are bf16; W4A4 there is refused."""
    s = deployment(gpu="h200", weight_dtype="fp4", activation_dtype="bf16")
    assert s.gemm_dtype == "bf16" and serve(s)["output_tokens_per_s_per_gpu"] > 0
    with pytest.raises(ValueError, match="or --activation-dtype fp8 or bf16"):
        deployment(gpu="h200", weight_dtype="fp4")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--weight-dtype", "fp8", "--activation-dtype", "fp4", "--gpu", "b200"], "narrower than the fp8 weights"),
        (["--weight-dtype", "bf16", "--activation-dtype", "fp8"], "bf16 weights run bf16 GEMMs; drop --activation"),
        (["--weight-dtype", "fp4", "--activation-dtype", "fp8", "--gpu", "a100"], "no fp8 tensor cores"),
        (["--activation-dtype", "int8"], "invalid choice"),
    ],
)
def test_bad_activations_are_one_line_errors(capsys, argv, message):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_serve_and_serve_search_take_the_activations(capsys):
    args = ["--gpu", "b200", "--weight-dtype", "fp4", "--activation-dtype", "fp8"]
    assert main(["serve", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    want = serve(deployment(gpu="b200", weight_dtype="fp4", activation_dtype="fp8"))
    assert out["output_tokens_per_s_per_gpu"] == pytest.approx(want["output_tokens_per_s_per_gpu"])
    assert main(["serve-search", *args, "--tpot-ms", "50", "--top", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ranked"]


def test_weight_only_kernels_cast_no_activations():
    """W4A8 quantizes each GEMM's activations (the 1x128 casts run); weight-only W4A16 reads them in bf16 and
    casts none."""
    from workloads.registry import load_model
    from workloads.servingops import serving_layer_ops

    spec = load_model("gpt-oss-120b")

    def casts(act: str | None) -> int:
        ops = serving_layer_ops(spec, True, 256, 256, 1024, "decode", weight_dtype="fp4", activation_dtype=act)
        return sum(op.kind == "elementwise" and "cast" in op.component for op in ops)

    assert casts("fp8") == casts(None) > 0 and casts("bf16") == 0

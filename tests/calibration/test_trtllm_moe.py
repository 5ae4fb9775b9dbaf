"""The h200-trtllm profile: TensorRT-LLM's MoE GEMMs on Hopper from AIConfigurator's timings of its whole MoE op.

Each committed row (calibration/data/published/h200-trtllm.toml) is one MoE operator timed on an H200; `moe_sample`
turns it into one grouped-GEMM sample: the two grouped GEMMs v3sim's operation list gives the GPU, the op's time
less the element-wise kernels v3sim prices beside them.
"""

from __future__ import annotations

import json

import pytest

from calibration.fit import PUBLISHED_DIR, moe_sample, published_from_dict, published_profile
from hwmodels.kernels import elementwise_rates
from hwmodels.profile import MAX_FIT_RMSE
from hwmodels.registry import load_gpu
from simulator.analytic.pricing import op_s, priced_class
from simulator.analytic.profile import rates_for
from simulator.cli import main
from simulator.explore.servingvalidate import published_serving
from workloads.gemms import Gemm
from workloads.ops import gemm_op

TABLE = PUBLISHED_DIR / "h200-trtllm.toml"
QWEN3_30B = {"hidden": 2048, "inter": 768, "experts": 128, "topk": 8}


def test_a_timed_moe_op_becomes_its_two_grouped_gemms_less_the_elementwise_kernels():
    h200 = load_gpu("h200")
    row = QWEN3_30B | {"ep": 4, "tokens": 4096, "ms": 0.3}
    s = moe_sample(row, "fp8", "test", h200)
    pairs = 4096 / 4 * 8  # each GPU computes as many token-expert pairs as its own tokens send out
    assert s.kernel_class == "grouped_gemm_fp8"
    assert s.flops == pytest.approx(2 * pairs * (2 * 768 * 2048 + 768 * 2048))  # gate+up, then down
    # worked by hand: the permute reads and writes each fp8 copy; SwiGLU reads gate and up, writes its output;
    # the combine reads 8 outputs and writes one; the top-k reads and writes fp32 scores; two 1x128 casts (read
    # bf16, write fp8: 3 bytes an element), of the token and of the 8 SwiGLU outputs
    per_token = {"permute": 2 * 8 * 2048, "swiglu": 8 * 3 * 768 * 2, "combine": 9 * 2048 * 2, "copy": 2 * 128 * 4,
                 "cast": 0}  # fmt: skip
    table, hbm = elementwise_rates(), h200.hbm_bw_bytes_per_s
    side = sum(table.time_s(cls, 1024 * b, hbm, h200.die) for cls, b in per_token.items() if cls != "cast")
    side += sum(table.time_s("cast", 1024 * elems * 3, hbm, h200.die) for elems in (2048, 8 * 768))
    assert s.time_s == pytest.approx(0.3e-3 - side, rel=1e-6)
    assert 0 < s.time_s < 0.3e-3


def test_a_row_whose_elementwise_kernels_outlast_it_is_refused():
    table = {"name": "t", "device": "NVIDIA H200 SXM", "catalog_gpu": "h200", "series": [{
        "kernel": "grouped_gemm", "dtype": "fp8", "source": "test",
        "columns": ["hidden", "inter", "experts", "topk", "ep", "tokens", "ms"],
        "rows": [[2048, 768, 128, 8, 1, 16384, 0.001]]}]}  # fmt: skip
    with pytest.raises(ValueError, match="element-wise kernels alone outlast"):
        published_from_dict(table, "t")


def test_the_fits_pass_and_price_trtllm_moe_gemms_at_about_half_deepgemms_rate():
    profile = published_profile(TABLE)
    trtllm, deepgemm = profile.fits["grouped_gemm_fp8"], published_profile(PUBLISHED_DIR / "h800.toml").fits
    assert trtllm.rel_rmse <= MAX_FIT_RMSE and profile.fits["grouped_gemm_w4a16"].rel_rmse <= MAX_FIT_RMSE
    assert trtllm.samples == 228 and profile.fits["grouped_gemm_w4a16"].samples == 156
    # measured 506 TFLOPS against DeepGEMM's 1,226 (2026-12-06): a kernel-level finding, not a tuned factor
    assert 0.3 < trtllm.flop_per_s / deepgemm["grouped_gemm_fp8"].flop_per_s < 0.6
    # the weight-only MXFP4 kernels (TRITON) run below TensorRT-LLM's FP8 ones and the bf16 peak's 40%
    assert profile.fits["grouped_gemm_w4a16"].flop_per_s < 0.4 * load_gpu("h200").peak_flop_per_s("bf16")
    inherited, h800 = profile.fits["gemm_fp8"], deepgemm["gemm_fp8"]  # the rest: the H800 table's, on the H200
    assert inherited.flop_per_s == h800.flop_per_s
    assert inherited.bytes_per_s == pytest.approx(h800.bytes_per_s * 4.8 / 3.35)


def test_weight_only_gemms_are_a_class_of_their_own_with_bf16_standing_in():
    g = Gemm("experts.gate_up", "routed_experts", 256, 5760, 2880, 32)
    op = gemm_op(g, "forward", "mlp", "fp4", "bf16")
    assert op.profile_class == "grouped_gemm_w4a16" and op.weights == "fp4"
    w4a8 = gemm_op(g, "forward", "mlp", "fp4", "fp8")
    assert w4a8.profile_class == "grouped_gemm_w4a8"  # W4A8: a class of its own, the FP8 rate where none is measured
    h200 = load_gpu("h200")
    published, trtllm = rates_for(None, h200), rates_for("h200-trtllm", h200)
    assert priced_class(w4a8, published) == "grouped_gemm_fp8"
    assert priced_class(op, published) == "grouped_gemm_bf16"  # no weight-only kernels measured there
    assert priced_class(op, trtllm) == "grouped_gemm_w4a16"
    assert op_s(op, trtllm) > 1.5 * op_s(op, published)


def test_hopper_trtllm_rows_are_priced_from_the_profile():
    rows = [r for r in published_serving() if r.get("harness") == "trtllm-bench"]
    hopper = [r for r in rows if r["gpu"] in ("h100", "h200")]
    assert hopper and all(r.get("profile") == "h200-trtllm" for r in hopper)
    assert all(r.get("profile") == "b200-trtllm" for r in rows if r not in hopper)  # Blackwell: its own table


def test_serve_takes_the_profile_on_an_h100(capsys):
    args = ["serve", "--model", "qwen3-235b-a22b", "--gpu", "h100", "--tp", "1", "--ep", "8", "--phase", "prefill",
            "--json"]  # fmt: skip
    assert main(args) == 0
    default = capsys.readouterr().out
    assert main([*args, "--profile", "h200-trtllm"]) == 0
    a, b = json.loads(default), json.loads(capsys.readouterr().out)
    key = "input_tokens_per_s_per_gpu"
    assert b[key] < 0.9 * a[key]  # compute-bound prefill: TensorRT-LLM's CUTLASS MoE GEMMs are slower than DeepGEMM's


def test_every_grouped_dtype_is_an_moe_series_or_a_one_line_error():
    row = {"hidden": 2880, "inter": 2880, "experts": 32, "topk": 4, "ep": 1, "tokens": 4096, "ms": 0.5}
    b200 = load_gpu("b200")
    w4a8 = moe_sample(row, "w4a8", "t", b200)
    assert w4a8.kernel_class == "grouped_gemm_w4a8" and w4a8.flops == 2 * 3 * 4096 * 4 * 2880 * 2880
    assert moe_sample(row, "fp4", "t", b200).bytes < moe_sample(row, "fp8", "t", b200).bytes
    with pytest.raises(ValueError, match="MoE op timings in fp32: use one of"):
        moe_sample(row, "fp32", "t", b200)

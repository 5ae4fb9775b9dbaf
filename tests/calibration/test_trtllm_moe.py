"""The trtllm profiles' MoE GEMMs: TensorRT-LLM's whole MoE operator timed by AIConfigurator, on Hopper (h200-trtllm)
and Blackwell (b200-trtllm, NVFP4).

Each committed row (calibration/data/published/<gpu>-trtllm.toml, reduced from AIConfigurator's table by
calibration/aicmoe.py) is one MoE operator timed on one GPU; `moe_sample` turns it into one grouped-GEMM sample:
the two grouped GEMMs v3sim's operation list gives the GPU, the op's time less the element-wise kernels v3sim
prices beside them. Serving looks the timed shapes up (`simulator.analytic.moetables`) rather than pricing them
by the class's roofline.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.aicmoe import TABLES, series_rows
from calibration.fit import PUBLISHED_DIR, published_from_dict, published_profile
from calibration.moeops import moe_elementwise_s, moe_sample
from hwmodels.files import read_text
from hwmodels.kernels import elementwise_rates
from hwmodels.profile import MAX_FIT_RMSE, PROFILE_DIR, Sample, read_profile
from hwmodels.registry import load_gpu
from simulator.analytic.moetables import moe_op_s
from simulator.analytic.pricing import op_s, priced_class
from simulator.analytic.profile import rates_for
from simulator.cli import main
from simulator.explore.servingvalidate import published_serving
from workloads.gemms import Gemm, serving_moe_gemms
from workloads.ops import gemm_op
from workloads.registry import load_model

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


EXCERPT = PUBLISHED_DIR / "aic-moe-excerpt.csv"


def shipped_rows(name: str, dtype: str, measured_on: str | None = None) -> list[list[float]]:
    """A shipped table's grouped-GEMM rows of `dtype`, of its own GPU or of the series `measured_on` another."""
    table = tomllib.loads(read_text(PUBLISHED_DIR / f"{name}.toml", "t"))
    return [list(r) for s in table["series"] if s["kernel"] == "grouped_gemm" and s["dtype"] == dtype
            and s.get("measured_on") == measured_on for r in s["rows"]]  # fmt: skip


def test_the_reducer_keeps_the_rows_the_tables_hold_and_leaves_the_others_out():
    frame = pd.read_csv(EXCERPT, comment="#")
    kept = {
        ("b200-trtllm", "fp4"): series_rows(frame[frame["device"] == "NVIDIA B200"], "fp4", "b200-trtllm"),
        ("h200-trtllm", "fp8"): series_rows(frame[frame["device"] == "NVIDIA H200"], "fp8", "h200-trtllm"),
        ("h200-trtllm", "w4a16"): series_rows(frame[frame["device"] == "NVIDIA H200"], "w4a16", "h200-trtllm"),
    }
    # R1's shape on B200 at EP4 (balanced, no expert TP, CUTLASS) at 16-16,384 tokens (16: 0.5 pairs per expert,
    # half of them run, a decode step's few tokens) and Qwen3-30B-A3B's at EP1; Kimi K2's 384 experts, power-law
    # routing, EP16, expert TP 2, TRTLLM-gen and MXFP4 rows left out. On the H200 Qwen3's 64 tokens at EP8 (8
    # tokens a GPU) is kept since an element-wise kernel's fixed cost is the die's small-kernel timing (1.4 us,
    # not 4.6): its element-wise kernels, as v3sim prices them, now take under half of the op's 43 us
    assert [r[:6] for r in kept["b200-trtllm", "fp4"]] == [
        [2048, 768, 128, 8, 1, 64], [2048, 768, 128, 8, 1, 1024], [2048, 768, 128, 8, 1, 16384],
        [7168, 2048, 256, 8, 4, 16], [7168, 2048, 256, 8, 4, 256],
        [7168, 2048, 256, 8, 4, 1024], [7168, 2048, 256, 8, 4, 4096], [7168, 2048, 256, 8, 4, 16384],
    ]  # fmt: skip
    assert [r[:6] for r in kept["h200-trtllm", "w4a16"]] == [[2880, 2880, 32, 4, 1, 128], [2880, 2880, 32, 4, 1, 4096]]
    assert [r[:6] for r in kept["h200-trtllm", "fp8"]] == [
        [2048, 768, 128, 8, 1, 64], [2048, 768, 128, 8, 1, 1024], [2048, 768, 128, 8, 8, 64],
    ]  # fmt: skip
    gb200 = series_rows(frame[frame["device"] == "NVIDIA GB200"], "fp4", "b200-trtllm", "gb200")
    assert [r[5] for r in gb200] == [256, 1024, 4096]  # the GB200's own rows, a series measured_on it
    for (table, dtype), rows in kept.items():
        shipped = shipped_rows(table, dtype)
        assert rows and all(r in shipped for r in rows), (table, dtype)  # the same rows, the same milliseconds
    assert all(r in shipped_rows("b200-trtllm", "fp4", "gb200") for r in gb200)


def test_blackwell_takes_nvfp4_on_cutlass_and_fp8_on_deepgemm():
    # GPT-OSS's MXFP4 was timed with the TRTLLM-gen backend, the performance overview ran CUTLASS: not taken
    assert TABLES["b200-trtllm"][1] == {"fp4": ("nvfp4", "moe_torch_flow_cutlass")}
    assert TABLES["b200"][1] == {"fp8": ("fp8_block", "deepgemm")}  # DeepGEMM's, as the H800 table prices them
    trtllm = [s for s in published_profile(PUBLISHED_DIR / "b200-trtllm.toml").samples if s.op == "moe"]
    assert {s.kernel_class for s in trtllm} == {"grouped_gemm_fp4", "grouped_gemm_fp8"}  # fp8 inherited from b200
    default = published_profile(PUBLISHED_DIR / "b200.toml")
    grouped = default.fits["grouped_gemm_fp8"]
    assert not grouped.derived_from and grouped.samples == 228 and grouped.rel_rmse <= MAX_FIT_RMSE
    # DeepGEMM's grouped kernels run below the dense per-tensor GEMMs the class was derived from before
    assert grouped.flop_per_s < default.fits["gemm_fp8"].flop_per_s


def test_a_moe_sample_carries_its_shape():
    h200 = load_gpu("h200")
    s = moe_sample(QWEN3_30B | {"ep": 4, "tokens": 4096, "ms": 0.3}, "fp8", "t", h200)
    assert (s.op, s.m, s.k, s.n, s.groups) == ("moe", 4096 * 8 // 128, 2048, 768, 32)
    assert s.enters_fit
    # 4 tokens: 32 pairs over 128 experts, a quarter of them run one each (balanced routing) and only their
    # weights are read; such a timing prices serving's few-token steps and enters no fit
    few = moe_sample(QWEN3_30B | {"ep": 4, "tokens": 4, "ms": 0.03}, "fp8", "t", h200)
    assert few.m == 0.25 and not few.enters_fit
    weights = 3 * 768 * 2048  # one expert's gate, up and down in fp8
    every = moe_sample(QWEN3_30B | {"ep": 4, "tokens": 16, "ms": 0.03}, "fp8", "t", h200)  # one pair each
    assert every.bytes - few.bytes == pytest.approx(0.75 * 32 * weights, rel=0.01)
    with pytest.raises(ValueError, match="must be an integer"):
        Sample("grouped_gemm", "fp8", 1.0, 1.0, 1.0, m=0.5, n=1, k=1)  # fractional pairs: an MoE op's alone


def test_a_class_one_roofline_misses_is_priced_by_its_table_and_falls_back_elsewhere():
    profile = published_profile(PUBLISHED_DIR / "b200-trtllm.toml")
    assert "grouped_gemm_fp4" not in profile.fits  # one roofline misses NVFP4's shapes by more than 25%
    assert any("grouped_gemm_fp4: one roofline misses" in n for n in profile.notes)
    b200 = load_gpu("b200")
    rates = rates_for("b200-trtllm", b200)
    timed = rates.moe_tables[("grouped_gemm_fp4", 2048, 768, 128)]
    ops = moe_ops("qwen3-30b-a3b", 512, ep=1)  # 32 pairs per expert
    assert sum(op_s(o, rates) for o in ops) == pytest.approx(timed.time_s(32))
    # a shape not timed (Mixtral's eight experts) is priced by the FP8 class at the FP4/FP8 ratio, not refused
    other = moe_ops("mixtral-8x7b", 512, ep=1)
    assert priced_class(other[0], rates) == "grouped_gemm_fp4" and all(op_s(o, rates) > 0 for o in other)


def moe_ops(model: str, tokens: int, ep: int, weights: str = "fp4") -> list:
    """The routed experts' two grouped GEMMs of one decode layer on a GPU of `ep`, `tokens` a GPU."""
    spec = load_model(model)
    gemms = [g for g in serving_moe_gemms(spec, tokens, ep, 0) if g.component == "routed_experts"]
    return [gemm_op(g, "decode", "mlp", weights) for g in gemms]


def test_a_timed_shape_is_priced_as_timed_between_its_points():
    rates = rates_for("h200-trtllm", load_gpu("h200"))
    table = rates.moe_tables[("grouped_gemm_fp8", 2048, 768, 128)]
    shipped = {r[5] * 8 / 128: r for r in shipped_rows("h200-trtllm", "fp8") if r[:5] == [2048, 768, 128, 8, 1]}
    h200 = load_gpu("h200")
    assert min(shipped) == 1 / 16  # one token: 8 of the 128 experts run
    for pairs, row in shipped.items():  # each point: the op's time less its element-wise kernels
        columns = ["hidden", "inter", "experts", "topk", "ep", "tokens", "ms"]
        side = moe_elementwise_s(dict(zip(columns, row, strict=True)), "fp8", h200)
        assert table.time_s(pairs) == pytest.approx(row[6] * 1e-3 - side)  # rising timings: each as timed
    low, high = table.pairs[0], table.pairs[-1]
    assert table.time_s(low / 4) == table.time_s(low)  # fewer pairs: the weights are read all the same
    assert table.time_s(2 * high) == pytest.approx(2 * table.time_s(high))  # beyond: in proportion to the work
    assert table.time_s(high, sm_share=0.5) > table.time_s(high)  # a share of the SMs stretches its FLOPs
    probe = rates.scaled(2.0).moe_tables[("grouped_gemm_fp8", 2048, 768, 128)]  # the sensitivity probe's rates
    assert probe.time_s(high) == pytest.approx(table.time_s(high) / 2)


def test_an_h800_takes_the_h200_timings_by_the_datasheet_term_that_binds():
    h200, h800 = load_gpu("h200"), load_gpu("h800")
    a = rates_for("h200-trtllm", h200).moe_tables[("grouped_gemm_fp8", 2048, 768, 128)]
    b = rates_for("h200-trtllm", h800).moe_tables[("grouped_gemm_fp8", 2048, 768, 128)]
    # few pairs: the weights' bytes bind, at the H800's 3.35 TB/s against the H200's 4.8 (same FLOP peaks)
    assert b.time_s(a.pairs[0]) == pytest.approx(a.time_s(a.pairs[0]) * 4.8 / 3.35, rel=1e-9)
    assert b.time_s(a.pairs[-1]) == pytest.approx(a.time_s(a.pairs[-1]), rel=1e-9)  # many: FLOPs bind, the same


def test_an_h100_takes_its_own_timings():
    """The H100's rows (a series measured_on it) price H100 runs as timed: TensorRT-LLM's Triton W4A16 MoE runs
    GPT-OSS 20B's experts as fast on an H100 as on an H200 (within 5%), where carrying the H200's over by the HBM
    datasheets would make the H100 1.43x slower."""
    key = ("grouped_gemm_w4a16", 2880, 2880, 32)
    h200 = rates_for("h200-trtllm", load_gpu("h200")).moe_tables[key]
    h100 = rates_for("h200-trtllm", load_gpu("h100")).moe_tables[key]
    for pairs in (8, 64, 512):
        assert h100.time_s(pairs) == pytest.approx(h200.time_s(pairs), rel=0.08)
    profile = published_profile(PUBLISHED_DIR / "h200-trtllm.toml")
    assert {s.timed_on for s in profile.samples if s.op == "moe"} == {"", "h100"}
    assert profile.fits["grouped_gemm_fp8"].samples == 228  # the H200's rows alone fit the class


def test_training_phases_and_other_expert_counts_are_not_looked_up():
    rates = rates_for("h200-trtllm", load_gpu("h200"))
    decode = moe_ops("qwen3-30b-a3b", 512, ep=1, weights="fp8")
    forward = [replace(o, phase="forward") for o in decode]
    assert moe_op_s(decode[0], decode[0].profile_class, rates.moe_tables) is not None
    assert moe_op_s(forward[0], forward[0].profile_class, rates.moe_tables) is None  # timed as inference runs it
    sixteen = moe_ops("qwen3-30b-a3b", 512, ep=16, weights="fp8")  # 8 experts a GPU: not a timed shape
    assert moe_op_s(sixteen[0], sixteen[0].profile_class, rates.moe_tables) is None


def test_a_few_decode_tokens_pay_the_op_as_timed_with_as_many_experts_running():
    """Qwen3-30B-A3B on one H200, 4 tokens: top-8 of 128 experts reach 1 - (1 - 8/128)^4 = 23% of them. A grouped
    GEMM issues no tiles for an empty expert, but the operator's fixed costs (its quantize, permute and launch
    tails under a CUDA graph) do not shrink with the experts: the step pays the op as AIConfigurator timed it
    with that share of the experts running a pair each (its rows of 1-16 tokens), 4.3x that share of every
    expert's timing."""
    rates = rates_for("h200-trtllm", load_gpu("h200"))
    table = rates.moe_tables[("grouped_gemm_fp8", 2048, 768, 128)]
    ops = moe_ops("qwen3-30b-a3b", 4, ep=1, weights="fp8")
    share = 1 - (1 - 8 / 128) ** 4
    timed, every = 0.0, 0.0
    for op in ops:
        assert op.active == pytest.approx(share)
        timed += moe_op_s(op, op.profile_class, rates.moe_tables)
        every += moe_op_s(replace(op, active=1.0), op.profile_class, rates.moe_tables)
    assert timed == pytest.approx(table.time_s(share))  # between the rows of 2 and 4 tokens (1/8 and 1/4 pair)
    assert timed > 4 * share * every
    many = moe_ops("qwen3-30b-a3b", 512, ep=1, weights="fp8")  # 32 pairs per expert: every expert, as timed
    assert sum(moe_op_s(o, o.profile_class, rates.moe_tables) for o in many) == pytest.approx(table.time_s(32))


def test_timings_that_fall_with_more_pairs_become_the_nearest_rising_table():
    """TensorRT-LLM's NVFP4 MoE on a B200, R1's experts at EP8: 48 tokens (1.5 pairs per expert) timed slower than
    64-128 (a tactic's switch). The table is the least-squares non-decreasing fit through the timings (in logs):
    it never falls with more pairs, and pools the points that would, between their slowest and fastest."""
    table = rates_for("b200-trtllm", load_gpu("b200")).moe_tables[("grouped_gemm_fp4", 7168, 2048, 32)]
    assert all(a <= b for a, b in zip(table.seconds, table.seconds[1:], strict=False))
    rows = {r[5]: r[6] for r in shipped_rows("b200-trtllm", "fp4") if r[:5] == [7168, 2048, 256, 8, 8]}
    assert rows[48] > rows[64]  # as timed: fewer tokens slower
    pooled = [table.time_s(t * 8 / 256) for t in (48, 64, 128)]
    assert pooled[0] == pytest.approx(pooled[1]) and rows[128] * 1e-3 > pooled[0] > 0.8 * rows[64] * 1e-3


@given(st.integers(1, 20_000), st.integers(1, 20_000))
def test_more_tokens_never_cost_less(a, b):
    rates = RATES_H200
    lo, hi = sorted((a, b))
    cost = [sum(op_s(o, rates) for o in moe_ops("qwen3-235b-a22b", n, ep=4, weights="fp8")) for n in (lo, hi)]
    assert cost[0] <= cost[1] * (1 + 1e-12)


RATES_H200 = rates_for("h200-trtllm", load_gpu("h200"))


def test_the_shipped_profile_keeps_its_moe_samples_and_refuses_a_malformed_one():
    shipped = read_profile(PROFILE_DIR / "b200-trtllm.json")
    moe = [s for s in shipped.samples if s.op == "moe"]
    assert moe and all(s.m and s.k and s.n for s in moe)
    assert shipped.samples == published_profile(PUBLISHED_DIR / "b200-trtllm.toml").samples
    with pytest.raises(ValueError, match="sample op 'dense': use one of"):
        Sample("grouped_gemm", "fp4", 1.0, 1.0, 1.0, op="dense")
    with pytest.raises(ValueError, match="a sample of op 'moe' needs its shape"):
        Sample("grouped_gemm", "fp4", 1.0, 1.0, 1.0, op="moe")
    with pytest.raises(ValueError, match="a decode sample is a decode-attention kernel's"):
        Sample("grouped_gemm", "fp4", 1.0, 1.0, 1.0, m=1, n=1, k=1, op="decode")


def test_a_gpus_own_timings_price_its_runs_and_fit_nothing():
    """The B200 table's GB200 rows (`measured_on = "gb200"`) price GB200 runs' shapes as the GB200 timed them; the
    B200's own rows price the B200's, and the class's fit sees the B200's alone."""
    profile = published_profile(PUBLISHED_DIR / "b200-trtllm.toml")
    gb200_samples = [s for s in profile.samples if s.timed_on == "gb200"]
    assert gb200_samples and all(s.op == "moe" and s.kernel_class == "grouped_gemm_fp4" for s in gb200_samples)
    assert any("misses its 228 MoE-operator timings" in n for n in profile.notes)  # the B200's rows alone
    key = ("grouped_gemm_fp4", 7168, 2048, 64)  # R1's experts at EP4
    b200, gb200 = (rates_for("b200-trtllm", load_gpu(g)).moe_tables[key] for g in ("b200", "gb200"))
    rows = {r[5]: r for r in shipped_rows("b200-trtllm", "fp4", "gb200") if r[:5] == [7168, 2048, 256, 8, 4]}
    row = rows[1024]  # 32 pairs per expert
    side = moe_elementwise_s(dict(zip(["hidden", "inter", "experts", "topk", "ep", "tokens", "ms"], row, strict=True)),
                             "fp4", load_gpu("gb200"))  # fmt: skip
    assert gb200.time_s(32) == pytest.approx(row[6] * 1e-3 - side)  # as the GB200 timed it, not scaled
    assert gb200.time_s(32) < 0.75 * b200.time_s(32)  # the GB200's collection runs 40% faster at this shape
    with pytest.raises(ValueError, match="only an MoE operator's sample may name another GPU"):
        Sample("gemm", "fp8", 1.0, 1.0, 1.0, timed_on="gb200")
    shipped = read_profile(PROFILE_DIR / "b200-trtllm.json")
    assert [s for s in shipped.samples if s.timed_on == "gb200"] == gb200_samples  # kept through the JSON


def test_calibrate_show_lists_the_shapes_looked_up(capsys):
    assert main(["calibrate", "show", "b200-trtllm", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["looked_up"]
    r1 = [r for r in rows if (r["hidden"], r["inter"], r["experts_per_gpu"]) == (7168, 2048, 64)]
    assert {(r["class"], r["gpu"]) for r in r1} == {("grouped_gemm_fp4", "b200"), ("grouped_gemm_fp4", "gb200"),
                                                   ("grouped_gemm_fp8", "b200")}  # fmt: skip
    assert all(r["timings"] > 10 and r["pairs_per_expert"][0] <= 1 / 8 for r in r1)  # from a few tokens
    assert main(["calibrate", "show", "b200-trtllm"]) == 0
    assert "looked up (MoE operators timed on the gb200" in capsys.readouterr().out
    assert main(["calibrate", "show", "h800-published", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["looked_up"] == []  # DeepGEMM's README gives rates: fitted alone

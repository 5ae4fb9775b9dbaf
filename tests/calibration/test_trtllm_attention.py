"""The b200-trtllm profile: TensorRT-LLM's attention kernels on Blackwell from AIConfigurator's timings of its ops.

Each committed row (calibration/data/published/b200-trtllm.toml) is one attention op timed on a B200: decode
rows become `decode_sample`s counted as the operation list counts `decode_attention_op`, context rows timed
attention samples whose items are their scores. The fits carry a cost per piece of work (`KernelFit.item_s`)
beside the roofline; these tests hold the counts to the ops, the fit to a cost it must recover, and the findings
the table's header states (a roofline of FLOPs and bytes alone cannot follow these kernels).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from calibration.fit import PUBLISHED_DIR, decode_sample, fit_kernel, published_from_dict, published_profile
from hwmodels.files import loads_toml, read_text
from hwmodels.profile import MAX_FIT_RMSE, KernelFit, RateCaps, Sample, class_dtype, profile_from_dict
from hwmodels.registry import load_gpu
from simulator.analytic.pricing import op_s, priced_class
from simulator.analytic.profile import rates_for
from simulator.cli.main import main
from simulator.explore.servingvalidate import published_serving
from workloads.ops import attention_ops
from workloads.registry import load_model
from workloads.servingops import decode_attention_op, serving_layer_ops

TABLE = PUBLISHED_DIR / "b200-trtllm.toml"


@pytest.fixture(scope="module")
def profile():
    return published_profile(TABLE)


def test_a_decode_row_counted_by_hand():
    # GPT-OSS's shape: 64 heads over 8 KV heads of 64, two sequences of 1,024 cached tokens, an FP8 cache
    row = {"batch": 2, "heads": 64, "kv_heads": 8, "qk_dim": 64, "v_dim": 64, "kv_len": 1024, "kv_bytes": 1, "ms": 0.02}
    s = decode_sample(row, "attention_decode", "fp8", "hand")
    assert s.flops == 2 * 2 * 64 * 1024 * (64 + 64)  # scores and values, every head
    assert s.bytes == 2 * 1024 * 8 * (64 + 64) * 1  # K and V of every KV head, read once
    assert s.items == 2 * 8 and s.time_s == pytest.approx(2e-5)
    mla = {"batch": 2, "heads": 128, "qk_dim": 576, "v_dim": 512, "kv_len": 1024, "kv_bytes": 1, "ms": 0.02}
    s = decode_sample(mla, "attention_decode_mla", "fp8", "hand")
    assert s.bytes == 2 * 1024 * 576 and s.items == 2  # one latent per token, values inside it; one per sequence


@pytest.mark.parametrize(("model", "kernel", "heads", "kv_heads", "qk", "v"), [
    ("gpt-oss-20b", "attention_decode", 64, 8, 64, 64),
    ("deepseek-v3", "attention_decode_mla", 128, 1, 576, 512),
])  # fmt: skip
def test_the_samples_are_counted_as_the_op_is(model, kernel, heads, kv_heads, qk, v):
    spec = load_model(model)
    op = decode_attention_op(spec, 96.0, 3000.0, 1, "fp8")
    row = {"batch": 96, "heads": heads, "kv_heads": kv_heads, "qk_dim": qk, "v_dim": v, "kv_len": 3000, "kv_bytes": 1,
           "ms": 1.0}  # fmt: skip
    s = decode_sample(row, kernel, "fp8", "op")
    assert (op.flops, op.hbm_bytes, op.items) == pytest.approx((s.flops, s.bytes, s.items))
    assert op.profile_class == f"{kernel}_fp8"  # an FP8 cache computes in FP8
    assert decode_attention_op(spec, 96.0, 3000.0, 1, "bf16").profile_class == f"{kernel}_bf16"


def test_decode_items_follow_the_kv_heads_on_each_gpu():
    spec = load_model("llama-3.1-70b")  # 8 KV heads
    for tp, per_gpu in ((1, 8), (2, 4), (8, 1)):
        ops = serving_layer_ops(spec, False, 10.0, 10.0, 500.0, "decode", tp, 1, 0, "fp8", "fp8")
        (att,) = [o for o in ops if o.kind == "attention"]
        assert att.items == pytest.approx(10 * tp * per_gpu)  # every sequence of the group, this GPU's KV heads


def test_training_and_prefill_attention_count_their_scores():
    spec = load_model("qwen3-30b-a3b")
    (fwd,) = attention_ops(spec, 4096.0, 2048.0, "forward")
    assert fwd.items == pytest.approx(4096 * spec.num_attention_heads * 2048)
    assert fwd.flops == pytest.approx(fwd.items * 2 * (spec.qk_head_dim + spec.v_dim))
    (bwd,) = attention_ops(spec, 4096.0, 2048.0, "backward_input")
    assert bwd.items == fwd.items  # the backward recomputes each score once
    ops = serving_layer_ops(spec, True, 1000.0, 1000.0, 700.0, "prefill", 1, 1, 0, "fp8", "fp8")
    (pre,) = [o for o in ops if o.kind == "attention"]
    assert pre.items == pytest.approx(1000 * spec.num_attention_heads * 700)


def test_the_fit_recovers_a_known_cost_per_item():
    flop_per_s, bytes_per_s, item_s, overhead_s = 300e12, 6e12, 9e-9, 8e-6
    samples = []
    for batch in (1, 8, 64, 512, 2048):
        for keys in (16, 256, 4096, 32768):
            for heads in (1, 64):  # queries per KV head: the cache read once, memory-bound at 1, compute at 64
                flops, nbytes, items = 4096.0 * heads * batch * keys, 256.0 * batch * keys, 8.0 * batch
                t = max(flops / flop_per_s, nbytes / bytes_per_s) + items * item_s + overhead_s
                samples.append(Sample("attention_decode", "bf16", flops, nbytes, t, items=items))
    fit = fit_kernel(samples, RateCaps(flop_per_s=2e15, bytes_per_s=8e12))
    assert fit.item_s == pytest.approx(item_s, rel=1e-3) and fit.rel_rmse < 1e-3
    assert fit.bytes_per_s == pytest.approx(bytes_per_s, rel=1e-3)
    assert fit.flop_per_s == pytest.approx(flop_per_s, rel=1e-3)
    assert fit.overhead_s == pytest.approx(overhead_s, rel=1e-2)
    plain = fit_kernel([replace(s, items=0.0) for s in samples], RateCaps(flop_per_s=2e15, bytes_per_s=8e12))
    assert plain.item_s == 0 and plain.rel_rmse > 0.1  # without the items the roofline cannot follow them


def test_every_class_the_table_gives_passes_and_prices_its_items(profile):
    own = {s.kernel_class for s in profile.samples if s.source.startswith("ai-dynamo/aiconfigurator") and s.op != "moe"}
    assert own == {"attention_decode_fp8", "attention_decode_bf16", "attention_decode_mla_fp8",
                   "attention_decode_mla_bf16", "attention_fwd_bf16", "attention_fwd_window_bf16",
                   "attention_fwd_mla_bf16"}  # fmt: skip
    for cls in own:
        assert profile.fits[cls].passes, cls
        assert profile.fits[cls].rel_rmse <= MAX_FIT_RMSE
    for cls in ("attention_decode_fp8", "attention_decode_bf16", "attention_decode_mla_fp8"):
        assert profile.fits[cls].item_s > 0, cls  # a fixed cost per (sequence, KV head): the table's finding
    b200 = load_gpu("b200")
    for cls in own:  # no rate above the datasheet
        fit = profile.fits[cls]
        assert fit.flop_per_s <= b200.peak_flop_per_s(class_dtype(cls)) * (1 + 1e-9)
        assert fit.bytes_per_s <= b200.hbm_bw_bytes_per_s * (1 + 1e-9)


def test_the_items_are_what_a_roofline_misses(profile):
    caps = RateCaps.of(load_gpu("b200"), "attention_decode_fp8")
    for cls in ("attention_decode_fp8", "attention_fwd_bf16"):
        samples = [s for s in profile.samples if s.kernel_class == cls]
        without_items = [replace(s, items=0.0, op="") for s in samples]  # plain kernel samples, no pairs
        with_items, without = fit_kernel(samples, caps), fit_kernel(without_items, caps)
        assert with_items.rel_rmse < 0.15 < 0.2 < without.rel_rmse, cls


def test_fp8_mla_decode_runs_above_the_bf16_peak(profile):
    # why an FP8 cache is a class of its own: its kernels compute in FP8
    fp8 = [s.flop_per_s for s in profile.samples if s.kernel_class == "attention_decode_mla_fp8"]
    assert max(fp8) > load_gpu("b200").peak_flop_per_s("bf16")


def test_classes_a_profile_lacks_fall_back_on_bf16_decode():
    spec = load_model("deepseek-v3")
    op = decode_attention_op(spec, 64.0, 4000.0, 1, "fp8")
    b200 = load_gpu("b200")
    assert priced_class(op, rates_for("b200-trtllm", b200)) == "attention_decode_mla_fp8"
    published = rates_for(None, b200)
    assert priced_class(op, published) == "attention_decode_bf16"  # FlashMLA's series, as before
    assert op_s(op, published) == op_s(replace(op, precision="bf16", k=0.0, n=0.0, items=0.0), published)


def test_a_cost_per_item_adds_to_the_op():
    spec = load_model("gpt-oss-20b")
    rates = rates_for("b200-trtllm", load_gpu("b200"))
    op = decode_attention_op(spec, 512.0, 2000.0, 1, "fp8")
    fit = rates.fits["attention_decode_fp8"]
    fitted = replace(rates, decode_tables={})  # GPT-OSS's head shape is timed: the fit alone, as for an untimed one
    assert op_s(op, fitted) - op_s(replace(op, items=0.0), fitted) == pytest.approx(op.items * fit.item_s)
    assert op_s(op, fitted, sm_share=0.5) > op_s(op, fitted)
    assert op_s(op, rates) != op_s(op, fitted)  # looked up where timed (simulator.analytic.decodetables)


def test_items_round_trip_and_older_files_read_as_none(profile):
    back = profile_from_dict(profile.to_dict(), "round trip")
    assert back.fits == profile.fits and back.samples == profile.samples
    assert "item_s" not in profile.to_dict()["fits"]["gemm_fp8"]  # classes without items keep their files
    assert KernelFit(1e12).time_s(1e12, 0.0, 1e9) == 1.0  # no cost per item: items change nothing


def test_a_timed_attention_series_gives_a_time_not_also_a_rate():
    data = loads_toml(read_text(TABLE, "table"), "table")
    series = next(s for s in data["series"] if s["kernel"] == "attention_fwd")
    both = {**series, "columns": [*series["columns"], "tflops"], "rows": [[*r, 1.0] for r in series["rows"][:2]]}
    with pytest.raises(ValueError, match=re.escape("a rate (tflops) or a time (ms), not both")):
        published_from_dict({**data, "series": [both]}, "bad table")
    decode = next(s for s in data["series"] if s["kernel"] == "attention_decode")
    cols = [c for c in decode["columns"] if c != "kv_heads"]
    short = {**decode, "columns": cols, "rows": [r[:2] + r[3:] for r in decode["rows"][:2]]}
    with pytest.raises(ValueError, match=r"columns must name each of .*kv_heads"):
        published_from_dict({**data, "series": [short]}, "bad table")


def test_blackwell_trtllm_rows_are_priced_from_the_profile():
    rows = [r for r in published_serving() if r.get("harness") == "trtllm-bench"]
    blackwell = [r for r in rows if r["gpu"] in ("b200", "gb200")]
    assert len(blackwell) == 38 and all(r.get("profile") == "b200-trtllm" for r in blackwell)
    assert all("--profile b200-trtllm" in r["notes"] for r in blackwell)


def test_calibrate_show_prints_the_cost_per_item(capsys):
    assert main(["calibrate", "show", "b200-trtllm"]) == 0
    out = capsys.readouterr().out
    assert "ns per item" in out
    line = next(x for x in out.splitlines() if x.startswith("attention_decode_fp8 "))
    assert not math.isnan(float(line.split()[4]))  # the column holds the fitted cost
    assert main(["calibrate", "show", "h800-published"]) == 0
    assert "ns per item" not in capsys.readouterr().out  # a profile with none keeps its table


def test_hoppers_table_gives_the_same_attention_classes():
    hopper = published_profile(PUBLISHED_DIR / "h200-trtllm.toml")
    attention = {s.kernel_class for s in hopper.samples if s.kernel.startswith("attention")
                 and s.source.startswith("ai-dynamo/aiconfigurator")}  # fmt: skip
    assert attention == {"attention_decode_fp8", "attention_decode_bf16", "attention_decode_mla_fp8",
                         "attention_decode_mla_bf16", "attention_fwd_bf16", "attention_fwd_window_bf16",
                         "attention_fwd_mla_bf16"}  # fmt: skip
    assert all(hopper.fits[c].passes for c in attention)
    # a cost per score, except the window's: its one head shape keeps scores and FLOPs in one ratio, so the
    # per-score cost is folded into its FLOP rate (any split prices its rows alike)
    assert all(hopper.fits[c].item_s > 0 for c in attention - {"attention_fwd_window_bf16"})
    assert hopper.fits["attention_fwd_window_bf16"].item_s == 0
    assert hopper.fits["grouped_gemm_fp8"].samples == 228  # its MoE series kept


def test_a_decode_row_must_name_the_dtype_its_cache_computes_in():
    row = {"batch": 2, "heads": 64, "kv_heads": 8, "qk_dim": 64, "v_dim": 64, "kv_len": 1024, "kv_bytes": 1, "ms": 0.02}
    with pytest.raises(ValueError, match="a fp8 cache's decode computes in fp8: use dtype fp8"):
        decode_sample(row, "attention_decode", "bf16", "t")
    with pytest.raises(ValueError, match="kv_bytes must be 1"):
        decode_sample({**row, "kv_bytes": 4}, "attention_decode", "fp8", "t")
    with pytest.raises(ValueError, match="GQA needs qk_dim = v_dim"):
        decode_sample({**row, "v_dim": 128}, "attention_decode", "fp8", "t")

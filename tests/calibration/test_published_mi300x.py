"""The MI300X's own kernel table: GEMMs at AMD's published Max-Achievable FLOPs, the classes with no MI300X source
inherited from the H800 table as measured on the GPUs it was timed on.

Source: AMD ROCm blogs, "Measuring Max-Achievable FLOPs - Part 2" (2025), table 1 and footnote 4: one MI300X
at 750 W, hipBLASLt db8e93b4fd6, ROCm 6.3.0: bf16 708 TFLOPS at m 4096, n 4864, k 32896; fp8 1,223.6 TFLOPS
at m 4096, n 3648, k 32896. Before the table the MI300X was priced from the H800's as fractions of its peaks
(bf16 GEMMs at ~1,017 TFLOPS, above AMD's own maximum).
"""

from __future__ import annotations

import pytest

from calibration.fit import PUBLISHED_DIR, published_from_dict
from hwmodels.files import loads_toml, read_text
from hwmodels.registry import load_gpu
from simulator.analytic.profile import apply_profile, load_profile, rates_for

TERA = 1e12


@pytest.fixture(scope="module")
def mi300x():
    return rates_for(None, load_gpu("mi300x"))


def test_mi300x_gemms_run_at_amds_max_achievable_flops_never_above(mi300x):
    assert mi300x.name == "mi300x-published"
    fits = mi300x.fits
    assert fits["gemm_bf16"].flop_per_s == pytest.approx(708 * TERA)
    assert fits["gemm_fp8"].flop_per_s == pytest.approx(1223.6 * TERA)
    # the weight-gradient and bf16 grouped classes are derived from the table's own GEMMs, not DeepGEMM's H800
    # rows; the FP8 grouped class is AITER's fused MoE as timed on the die (tests/calibration/test_aiter_moe.py)
    assert fits["grouped_gemm_fp8"].flop_per_s < 1223.6 * TERA
    assert "timed on mi325x" in fits["grouped_gemm_fp8"].derived_from
    assert fits["gemm_wgrad_fp8"].flop_per_s == pytest.approx(1223.6 * TERA)
    assert fits["grouped_gemm_bf16"].flop_per_s == pytest.approx(708 * TERA)
    # the route it replaces: the H800 table as fractions of the MI300X's peaks, 44% above AMD's maximum
    old = apply_profile(load_profile("h800-published"), load_gpu("mi300x")).fits["gemm_bf16"].flop_per_s
    assert old > 1.4 * fits["gemm_bf16"].flop_per_s


def test_inherited_series_keep_the_flop_rate_they_were_timed_at_and_scale_bytes_by_hbm(mi300x):
    h800 = rates_for(None, load_gpu("h800")).fits
    ratio = load_gpu("mi300x").hbm_bw_bytes_per_s / load_gpu("h800").hbm_bw_bytes_per_s
    for cls in ("attention_fwd_fp8", "attention_decode_bf16"):  # no MI300X source for these
        assert mi300x.fits[cls].flop_per_s == pytest.approx(h800[cls].flop_per_s), cls
        assert "timed on h800" in mi300x.fits[cls].derived_from
    assert mi300x.fits["memory"].bytes_per_s == pytest.approx(ratio * h800["memory"].bytes_per_s)
    # the MLA and window series the H800 table took from an H200 are left out: those classes derive from the
    # MI300X's own attention timings (tests/calibration/test_mi300x_attention.py)
    for cls in ("attention_fwd_mla_bf16", "attention_bwd_mla_bf16", "attention_fwd_window_bf16"):
        assert "timed on" not in mi300x.fits[cls].derived_from, cls


@pytest.mark.parametrize("bad", [["grouped"], [3], "gemm_wgrad", None])
def test_not_inherited_lists_kernels_or_is_refused_in_one_line(bad):
    table = loads_toml(read_text(PUBLISHED_DIR / "mi300x.toml", "published table"), "mi300x.toml")
    table = table | {"not_inherited": bad} if bad is not None else {k: v for k, v in table.items() if k != "inherits"}
    with pytest.raises(ValueError) as err:
        published_from_dict(table, "mi300x.toml")
    assert "not_inherited" in str(err.value) and "\n" not in str(err.value)


def test_a_table_inheriting_its_own_gpus_table_marks_nothing_moved():
    """h800-v3-cutlass inherits the H800's own table: its attention is the H800's, with no carried note."""
    cutlass = load_profile("h800-v3-cutlass").fits
    assert "timed on" not in cutlass["attention_fwd_bf16"].derived_from

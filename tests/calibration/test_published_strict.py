"""Published kernel tables (calibration/data/published/*.toml) are data, read with their types: a rate of 0
(once a ZeroDivisionError), a string, a bool or a float shape, unknown keys and columns, special files and
empty names are one-line errors naming the series and the field; a hypothesis fuzz mutates the shipped
tables."""

from __future__ import annotations

import copy
import math
import os
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.fit import MAX_SHAPE, PUBLISHED_DIR, published_from_dict, published_profile
from tests.hang import answer_or_one_line_error, no_hang

SHIPPED = {p.stem: tomllib.loads(p.read_text()) for p in sorted(PUBLISHED_DIR.glob("*.toml"))}
BASE = SHIPPED["h800"]


def changed(path: tuple, value) -> dict:
    data = copy.deepcopy(BASE)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def test_the_shipped_tables_read_as_before():
    for name, data in SHIPPED.items():
        assert published_from_dict(data, name) == published_profile(PUBLISHED_DIR / f"{name}.toml")


ROW = ("series", 0, "rows", 0)  # a gemm series: m, n, k, tflops


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ((*ROW, 3), 0, "series 0: row 0: tflops=0 must be a finite number > 0"),
        ((*ROW, 3), -5, "tflops=-5 must be a finite number > 0"),
        ((*ROW, 3), "206", "tflops='206' must be a finite number > 0"),
        ((*ROW, 3), True, "tflops=True must be a finite number > 0"),
        ((*ROW, 3), math.inf, "tflops=inf must be a finite number > 0"),
        ((*ROW, 3), 10**400, "must be a finite number > 0"),
        ((*ROW, 0), 64.0, "m=64.0 must be an integer from 1"),
        ((*ROW, 0), 0, "m=0 must be an integer from 1"),
        ((*ROW, 0), MAX_SHAPE + 1, f"must be an integer from 1 to {MAX_SHAPE:,}"),
        ((*ROW, 0), [64], "m=[64] must be an integer"),
        (ROW, [64, 2112, 7168], "row 0 must be a list of 4 numbers"),
        (("series", 0, "rows", 1), 64, "row 1 must be a list of 4 numbers"),
        (("series", 0, "columns"), ["m", "n", "tflops", "tflops"], "columns must name each of k, m, n, tflops once"),
        (("series", 0, "columns"), ["m", "n", "k", "speed"], "columns must name each of"),
        (("series", 0, "columns"), ["m", "n", "k", "tflops", "warp"], "unknown columns warp"),
        (("series", 0, "columns"), [["m"], "n", "k", "tflops"], "columns must name each of"),
        (("series", 0, "kernel"), "conv", "kernel/dtype 'conv'/'fp8'"),
        (("series", 0, "dtype"), "fp6", "kernel/dtype 'gemm'/'fp6'"),
        (("series", 0, "colour"), "red", "series 0: unknown field 'colour'"),
        (("series", 0), [1, 2], "series 0 must be an object of named fields"),
        (("series",), "all", "series='all' must be a list"),
        (("notes",), [1], "notes must be a list of strings"),
        (("name",), 7, "name=7 must be a string"),
        (("catalog_gpu",), "h900", "unknown GPU 'h900'"),
        (("catalog_gpu",), "/dev/zero", "not a regular file"),
        (("speed",), 1, "unknown field 'speed'"),
    ],
)
def test_wrong_types_are_refused_by_field(path, value, message):
    with no_hang(), pytest.raises(ValueError, match=re.escape(message)) as err:
        published_from_dict(changed(path, value), "t.toml")
    assert "\n" not in str(err.value) and str(err.value).startswith("t.toml")


def test_causal_is_zero_or_one():
    attention = next(i for i, s in enumerate(BASE["series"]) if s["kernel"] == "attention_fwd")
    data = copy.deepcopy(BASE)
    data["series"][attention]["columns"].append("causal")
    for row in data["series"][attention]["rows"]:
        row.append(2)
    with pytest.raises(ValueError, match="causal=2 must be 0 or 1"):
        published_from_dict(data, "t.toml")


def test_a_missing_field_is_named():
    data = copy.deepcopy(BASE)
    del data["series"]
    with pytest.raises(ValueError, match="missing field 'series'"):
        published_from_dict(data, "t.toml")


def test_special_files_bad_toml_and_empty_names_are_refused(tmp_path):
    fifo = tmp_path / "t.toml"
    os.mkfifo(fifo)
    bad_date = tmp_path / "date.toml"
    bad_date.write_text("created = 2026-02-30\n")
    cases = (
        (fifo, "not a regular file"),
        ("/dev/zero", "not a regular file"),
        (bad_date, "is not valid TOML"),
        ("", "is empty"),
        ("x\0y.toml", "holds a NUL"),
        ("a" * 5000 + ".toml", "File name too long"),
    )
    for path, message in cases:
        with no_hang(), pytest.raises(ValueError, match=message) as err:
            published_profile(path)
        assert "\n" not in str(err.value) and len(str(err.value)) < 500


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, 10**400, MAX_SHAPE + 1]),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzz_mutated_tables(data):
    """A shipped table with a key dropped or set to any value (at the top, in a series, in a row): a profile
    with positive rates, or a one-line ValueError; never another exception, never a hang."""
    table = copy.deepcopy(SHIPPED[data.draw(st.sampled_from(sorted(SHIPPED)))])
    series = table["series"][data.draw(st.integers(0, len(table["series"]) - 1))]
    target = data.draw(st.sampled_from([table, series, series["rows"][0]]))
    if isinstance(target, list):
        target[data.draw(st.integers(0, len(target) - 1))] = data.draw(VALUES)
    elif data.draw(st.booleans()):
        target.pop(data.draw(st.sampled_from(sorted(target))), None)
    else:
        target[data.draw(st.sampled_from([*sorted(target), "extra"]))] = data.draw(VALUES)
    profile = answer_or_one_line_error(published_from_dict, table, "t.toml")
    if profile is None:
        return
    for fit in profile.fits.values():
        assert fit.flop_per_s > 0 and fit.bytes_per_s > 0 and math.isfinite(fit.overhead_s)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_as_a_table(tmp_path_factory, raw):
    path = Path(tmp_path_factory.mktemp("table")) / "t.toml"
    path.write_bytes(raw)
    answer_or_one_line_error(published_profile, path)


def test_a_speedup_column_prices_the_kernel_it_was_measured_against():
    """DeepGEMM publishes its rate and its speedup over the CUTLASS kernels V3 ran: a row with `speedup` s is
    that kernel at rate / s (the CUTLASS table's wgrad rows are DeepGEMM's at 1.2x: 1.2x the time)."""
    plain = published_profile(PUBLISHED_DIR / "h800.toml")
    cutlass = published_profile(PUBLISHED_DIR / "h800-v3-cutlass.toml")
    wgrad = [[s for s in p.samples if s.kernel_class == "gemm_wgrad_fp8"] for p in (plain, cutlass)]
    assert len(wgrad[0]) == len(wgrad[1]) == 9
    for ours, theirs in zip(*wgrad, strict=True):
        assert theirs.flops == ours.flops and theirs.time_s == pytest.approx(1.2 * ours.time_s, rel=1e-12)
    for cls in ("gemm_fp8", "grouped_gemm_fp8", "gemm_wgrad_fp8"):  # every re-priced class is slower
        assert cutlass.fits[cls].flop_per_s < plain.fits[cls].flop_per_s
    for cls in ("gemm_bf16", "attention_fwd_bf16", "attention_bwd_bf16", "memory", "attention_decode_bf16"):
        assert cutlass.fits[cls] == plain.fits[cls]  # inherited from the H800 table as they are


@pytest.mark.parametrize(
    ("inherits", "message"),
    [
        (
            "h900",
            "inherits 'h900' is not a shipped table; use one of b200, b200-trtllm, h200-sglang, h200-trtllm, h800",
        ),
        ("../h800", "inherits '../h800' is not a shipped table"),
        ("h800-v3-cutlass", "inherits h800-v3-cutlass, which inherits in turn"),
    ],
)
def test_inherits_names_a_shipped_table_one_level_deep(inherits, message):
    data = copy.deepcopy(SHIPPED["h800-v3-cutlass"]) | {"inherits": inherits}
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        published_from_dict(data, "t")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", [0, -1.2, math.inf, "1.2", True])
def test_a_speedup_is_a_finite_number_above_zero(value):
    data = copy.deepcopy(SHIPPED["h800-v3-cutlass"])
    data["series"][0]["rows"][0][4] = value
    with pytest.raises(ValueError, match=r"speedup=.* must be a finite number > 0"):
        published_from_dict(data, "t")

"""Profile JSON is data, read field by field with its type: `true` is not a version, a string is not a rate,
unknown fields and non-finite numbers are refused; profiles are written whole; a hypothesis fuzz mutates the
shipped profiles."""

from __future__ import annotations

import copy
import json
import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.profile import PROFILE_DIR, profile_from_dict, read_profile, write_profile
from tests.hang import answer_or_one_line_error, no_hang

SHIPPED = {p.stem: json.loads(p.read_text()) for p in sorted(PROFILE_DIR.glob("*.json"))}
BASE = SHIPPED["h800-published"]


def changed(path: tuple, value) -> dict:
    data = copy.deepcopy(BASE)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


FIT = next(iter(BASE["fits"]))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("version",), True, "version=True must be an integer"),
        (("version",), 1.0, "version=1.0 must be an integer"),
        (("name",), 7, "name=7 must be a string"),
        (("fits", FIT, "flop_per_s"), "1e15", "flop_per_s='1e15' must be a number or null"),
        (("fits", FIT, "flop_per_s"), True, "flop_per_s=True must be a number or null"),
        (("fits", FIT, "overhead_s"), math.inf, "overhead_s=inf must be a finite number"),
        (("fits", FIT, "samples"), "3", "samples='3' must be an integer"),
        (("fits", FIT, "warp"), 1, "unknown field 'warp'"),
        (("fits", "gemm_fp6"), {"flop_per_s": 1e15}, "unknown kernel class 'gemm_fp6'"),
        (("samples", 0, "time_s"), "0.1", "time_s='0.1' must be a finite number"),
        (("samples", 0, "m"), 1.5, "m=1.5 must be an integer"),
        (("colour",), "red", "unknown field 'colour'"),
        (("notes",), [1], "notes must be a list of strings"),
        (("kind",), "guessed", "kind 'guessed'"),
        (("fits", FIT, "flop_per_s"), 10**400, "must be a number or null"),
        (("fits", FIT, "samples"), -1, "samples=-1 and rel_rmse"),
        (("fits", FIT, "rel_rmse"), -0.5, "rel_rmse=-0.5 must be >= 0"),
        (("fits", "gemm_\x1b[31mfp8"), {"flop_per_s": 1e15}, "unknown kernel class 'gemm_[31mfp8'"),
        (("samples", 0, "m"), -64, "sample m=-64 must be an integer >= 0"),
        (("samples", 0, "groups"), 0, "sample groups=0 must be an integer >= 1"),
        (("samples", 0, "kernel"), "conv", "sample kernel 'conv'"),
        (("version",), 2, "profile version 2, this v3sim reads version 1"),
    ],
)
def test_wrong_types_are_refused_by_field(path, value, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        profile_from_dict(changed(path, value), "p.json")
    assert "\n" not in str(err.value) and str(err.value).startswith("p.json")


def test_a_missing_field_is_named():
    data = copy.deepcopy(BASE)
    del data["fits"]
    with pytest.raises(ValueError, match="missing field 'fits'"):
        profile_from_dict(data, "p.json")


@pytest.mark.parametrize("text", ['{"version": NaN}', '{"a": Infinity}'])
def test_non_json_numbers_are_refused(tmp_path, text):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="is not a number JSON allows"):
        read_profile(path)


def test_special_files_are_refused(tmp_path):
    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        with no_hang(), pytest.raises(ValueError, match="not a regular file"):
            read_profile(path)


@pytest.mark.parametrize(
    ("path", "message"),
    [("", "is empty"), ("  ", "is empty"), ("p\0.json", "holds a NUL"), ("a" * 5000, "File name too long")],
)
def test_empty_and_impossible_names_are_refused(path, message):
    """`read_profile("")` used to read the current folder; a 5,000-character name was an OSError."""
    with pytest.raises(ValueError, match=message) as err:
        read_profile(path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


def test_names_and_catalog_gpu_lose_control_characters():
    data = changed(("name",), "a\x1b[2Jb")
    data["catalog_gpu"] = "h8\x0700"
    profile = profile_from_dict(data, "p.json")
    assert profile.name == "a[2Jb" and profile.catalog_gpu == "h800"


def test_every_shipped_profile_round_trips(tmp_path):
    for name, data in SHIPPED.items():
        profile = profile_from_dict(data, name)
        out = write_profile(profile, tmp_path / f"{name}.json")
        assert read_profile(out) == profile
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.json" for n in SHIPPED)  # no temp files


def test_a_failed_write_leaves_the_old_profile(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    path.write_text("old")
    profile = profile_from_dict(BASE, "base")
    monkeypatch.setattr("pathlib.Path.write_text", lambda self, text: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(OSError):
        write_profile(profile, path)
    with open(path) as f:  # (Path.read_text is left alone; write_text is the one that fails)
        assert f.read() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.just(10**400),  # beyond a float: math.isfinite once raised OverflowError on it
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzz_mutated_profiles(data):
    """A shipped profile with one field (top level, in a fit, in a sample) set to any JSON value or dropped:
    a profile with finite, positive rates, or a one-line ValueError; never another exception."""
    profile = copy.deepcopy(SHIPPED[data.draw(st.sampled_from(sorted(SHIPPED)))])
    where = data.draw(st.sampled_from(["top", "fit", "sample"]))
    target = profile
    if where == "fit":
        target = profile["fits"][data.draw(st.sampled_from(sorted(profile["fits"])))]
    elif where == "sample" and profile.get("samples"):
        target = profile["samples"][data.draw(st.integers(0, len(profile["samples"]) - 1))]
    key = data.draw(st.sampled_from([*sorted(target), "extra"]))
    if data.draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = data.draw(JSON_VALUES)
    result = answer_or_one_line_error(profile_from_dict, profile, "p.json")
    if result is None:
        return
    for fit in result.fits.values():
        assert fit.flop_per_s > 0 and fit.bytes_per_s > 0 and math.isfinite(fit.overhead_s)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_as_a_profile_file(tmp_path_factory, raw):
    path = Path(tmp_path_factory.mktemp("profile")) / "p.json"
    path.write_bytes(raw)
    answer_or_one_line_error(read_profile, path)

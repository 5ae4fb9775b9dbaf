"""Hardware TOML is data: non-finite numbers, counts beyond reason, special files and empty names are one-line
errors naming the key; a hypothesis fuzz mutates the shipped catalog entries."""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.registry import DATA_DIR, catalog, load_gpu, load_nic, load_node, load_switch
from hwmodels.specs import gpu_from_dict, nic_from_dict, node_from_dict, switch_from_dict
from tests.hang import answer_or_one_line_error, no_hang

SHIPPED = {
    kind: {n: tomllib.loads((DATA_DIR / kind / f"{n}.toml").read_text()) for n in catalog(kind)}
    for kind in ("gpus", "nics", "nodes", "switches")
}
LOADERS = {"gpus": load_gpu, "nics": load_nic, "nodes": load_node, "switches": load_switch}


def toml_file(tmp_path, name: str, data: dict) -> str:
    lines = []
    for key, value in data.items():
        if isinstance(value, str):
            lines.append(f"{key} = {json.dumps(value)}")
        elif isinstance(value, float) and math.isnan(value):
            lines.append(f"{key} = nan")
        elif isinstance(value, float) and math.isinf(value):
            lines.append(f"{key} = {'inf' if value > 0 else '-inf'}")
        else:
            lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("kind", "key", "value", "message"),
    [
        ("gpus", "bf16_dense_tflops", math.nan, "bf16_dense_tflops=nan must be a finite number"),
        ("gpus", "hbm_gb", math.inf, "hbm_gb=inf must be a finite number"),
        ("gpus", "sms", 10**9, "sms=1,000,000,000 must be from 1 to 100,000"),
        ("gpus", "sms", True, "sms=True must be an integer"),
        ("nics", "effective_gb_per_s", "40", "effective_gb_per_s='40' must be a number"),
        ("nodes", "gpus_per_node", 10**6, "gpus_per_node=1,000,000 must be from 1 to 1,024"),
        ("nodes", "scaleup_efficiency", -math.inf, "must be a finite number"),
        ("switches", "ports", 1 << 20, "ports=1,048,576 must be from 1 to 1,024"),
        ("switches", "price_usd", math.nan, "price_usd=nan must be a finite number"),
        ("gpus", "fp32_tflops", 1e300, "peak_fp32_flop_per_s=inf must be a finite number"),  # overflows x 1e12
        ("nodes", "pcie_gb_per_s", 1e305, "pcie_bw_bytes_per_s=inf must be a finite number"),
        ("switches", "port_gbit_per_s", 1e300, "port_rate_bits_per_s=inf must be a finite number"),
        ("nics", "latency_us", 10**400, "0… must be a finite number"),  # beyond a float: once an OverflowError
        ("gpus", "sms", 10**400, "… must be from 1 to 100,000"),
        ("gpus", "scaleup", "x" * 5000, "xx…; use one of nvlink, infinity-fabric"),
    ],
)
def test_bad_values_in_a_hardware_file_name_the_key(tmp_path, kind, key, value, message):
    name = sorted(SHIPPED[kind])[0]
    path = toml_file(tmp_path, f"my-{kind}", {**SHIPPED[kind][name], key: value})
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        LOADERS[kind](path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_special_files_and_empty_names_are_refused(tmp_path, kind):
    fifo = tmp_path / "hw.toml"
    os.mkfifo(fifo)
    for path, message in ((str(fifo), "not a regular file"), ("/dev/zero", "not a regular file"), ("", "named")):
        with no_hang(), pytest.raises(ValueError, match=message):
            LOADERS[kind](path)


@pytest.mark.parametrize("kind", sorted(LOADERS))
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 5000, "unknown"),  # once an OSError (File name too long) from the catalog lookup
        ("a" * 5000 + ".toml", "File name too long"),
        ("x\0y", "unknown"),
        ("../gpus/h800", "unknown"),  # a catalog name is looked up, never joined onto the data folder
    ],
)
def test_impossible_names_are_one_line_errors(kind, name, message):
    with pytest.raises(ValueError, match=message) as err:
        LOADERS[kind](name)
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


@pytest.mark.parametrize(
    ("text", "message"),
    [("source = 2026-02-30", "is not valid TOML: Invalid date"), ("x = " + "[" * 5000 + "]" * 5000, "nested")],
)
def test_toml_that_python_cannot_hold_is_refused(tmp_path, text, message):
    path = tmp_path / "gpu.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_gpu(str(path))
    assert "\n" not in str(err.value)


def test_texts_lose_control_characters(tmp_path):
    data = {**SHIPPED["gpus"]["h800"], "vendor": "NV\x1b[31mIDIA", "source": "datasheet\u202e"}
    gpu = load_gpu(toml_file(tmp_path, "my\x07gpu", data))
    assert (gpu.name, gpu.vendor, gpu.source) == ("mygpu", "NV[31mIDIA", "datasheet")


def test_a_node_naming_a_special_file_as_its_gpu_is_refused(tmp_path):
    data = {**SHIPPED["nodes"]["h800-ib"], "gpu": "/dev/zero"}
    with no_hang(), pytest.raises(ValueError, match="not a regular file"):
        load_node(toml_file(tmp_path, "node", data))


SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 10**400, 1e300]),  # beyond a float; a figure that overflows in a unit conversion
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
)
FROM_DICT = {
    "gpus": gpu_from_dict,
    "nics": nic_from_dict,
    "switches": switch_from_dict,
    "nodes": lambda name, d: node_from_dict(name, d, "", load_gpu, load_nic),
}


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(FROM_DICT)), data=st.data())
def test_fuzz_mutated_catalog_entries(kind, data):
    """A shipped entry with one key dropped, added or set to any value TOML can hold (nan and inf too): a
    spec with finite, positive figures, or a one-line ValueError; never another exception."""
    name = data.draw(st.sampled_from(sorted(SHIPPED[kind])))
    entry = dict(SHIPPED[kind][name])
    key = data.draw(st.sampled_from([*sorted(entry), "extra"]))
    if data.draw(st.booleans()):
        entry.pop(key, None)
    else:
        entry[key] = data.draw(SCALARS)
    spec = answer_or_one_line_error(FROM_DICT[kind], name, entry)
    if spec is None:
        return
    for field in spec.__slots__:
        value = getattr(spec, field)
        if isinstance(value, float | int) and not isinstance(value, bool):
            assert math.isfinite(value) and value >= 0, (field, value)


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(sorted(LOADERS)), raw=st.binary(max_size=200))
def test_fuzz_random_bytes_as_a_hardware_file(tmp_path_factory, kind, raw):
    path = Path(tmp_path_factory.mktemp("hw")) / "hw.toml"
    path.write_bytes(raw)
    LOADERS[kind].cache_clear()
    answer_or_one_line_error(LOADERS[kind], str(path))

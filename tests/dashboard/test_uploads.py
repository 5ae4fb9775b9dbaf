"""Uploaded config.json files (Training cost page): parsed in memory, never written to disk; too large, not
JSON, NaN, the wrong type or a model the simulator refuses is one st.error that names the fix."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from dashboard.files import MAX_UPLOAD_BYTES, model_from_upload
from simulator.analytic.report import estimate
from simulator.runspec import build_run
from tests.dashboard.apptest import metrics, open_view
from workloads.hf import ADAPTERS, spec_from_hf_config
from workloads.spec import ModelSpec

MODELS = Path(__file__).parents[2] / "workloads" / "data" / "models"
LLAMA = (MODELS / "llama-3.1-8b.json").read_bytes()
# A view in which a dense 8B model fits and runs (the defaults are V3's, which a dense model rejects: ep=64).
SMALL_RUN = {"gpus": "64", "pp": "2", "ep": "1", "schedule": "1f1b", "precision": "bf16"}

_writes: list[str] | None = None  # files opened for writing while a test records them


def _audit(event: str, args: tuple) -> None:
    if _writes is None or event != "open":
        return
    path, mode, flags = args
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    if (isinstance(mode, str) and set(mode) & set("wax+")) or (isinstance(flags, int) and flags & writing):
        _writes.append(str(path))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one does nothing unless _writes is a list


def old_temp_name(folder: Path, data: bytes) -> Path:
    """Where the dashboard used to write an upload (and which file of that name it trusted)."""
    return folder / f"v3sim-config-{hashlib.sha256(data).hexdigest()[:16]}.json"


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="upload").set_value((name, data, "application/json"))
    return at.run()


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """A private temporary folder for the test: tempfile and $TMPDIR point at it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_an_uploaded_config_is_the_model_and_nothing_is_written(temp_dir):
    global _writes
    at = open_view("training.py", **SMALL_RUN)
    _writes = []
    try:
        upload(at, "my-llama.json", LLAMA)
    finally:
        written, _writes = _writes, None
    assert not at.exception and not at.error
    spec = spec_from_hf_config(json.loads(LLAMA), name="my-llama.json")
    run = {"gpus": 64, "pp": 2, "ep": 1, "schedule": "1f1b", "precision": "bf16"}
    r = estimate(build_run({"model": spec, **run}), "published")
    assert metrics(at)["Step time"] == f"{r.step_time_s:.2f} s"
    assert metrics(at)["GPU-hours"] == f"{r.gpu_hours / 1e3:,.0f}K"
    inputs = at.dataframe[-1].value
    assert inputs[inputs["input"] == "Model"]["value"].iloc[0] == "my-llama.json"
    assert any("my-llama.json (uploaded)" in c.value for c in at.sidebar.caption)
    assert not any(s.key == "model" for s in at.selectbox)  # no stale catalog selector beside the upload
    (read,) = [e for e in at.expander if e.label.startswith("What was read from my-llama.json")]
    summary = dict(zip(read.dataframe[0].value["read"], read.dataframe[0].value["value"], strict=True))
    assert summary["parameters"] == "8.0B" and summary["longest context"] == "131,072"
    assert summary["attention"] == "GQA, 32 heads, 8 KV heads" and summary["experts"] == "none (dense)"
    # no file opened for writing anywhere while the page ran, but the fabric-factor cache (numbers keyed by a
    # hash of the run: a new model's sensitivity routes new cases; nothing of the upload's bytes or name)
    cache = os.environ["V3SIM_CACHE_DIR"]
    assert [w for w in written if not w.startswith(cache)] == []
    assert list(temp_dir.iterdir()) == []


def test_a_planted_file_at_the_old_temp_name_is_never_read_or_followed(temp_dir):
    precious = temp_dir.parent / "precious.txt"
    precious.write_text("not yours")
    link = old_temp_name(temp_dir, LLAMA)
    link.symlink_to(precious)
    at = upload(open_view("training.py", **SMALL_RUN), "my-llama.json", LLAMA)
    assert not at.exception and not at.error
    assert precious.read_text() == "not yours" and os.readlink(link) == str(precious)
    shown = metrics(at)["Step time"]
    # a planted config under another upload's old name (a 2-layer model) is not what that upload shows
    other = LLAMA + b"\n"
    old_temp_name(temp_dir, other).write_bytes(LLAMA.replace(b'"num_hidden_layers": 32', b'"num_hidden_layers": 2'))
    at = upload(at, "my-llama.json", other)
    assert not at.exception and not at.error
    assert metrics(at)["Step time"] == shown


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("big.json", b'{"pad": "' + b"x" * MAX_UPLOAD_BYTES + b'"}', "the limit is 1 MiB"),
        ("notes.json", b"these are not JSON", "not valid JSON"),
        ("nan.json", LLAMA.replace(b'"hidden_size": 4096', b'"hidden_size": NaN'), "write a finite number"),
        ("inf.json", LLAMA.replace(b'"hidden_size": 4096', b'"hidden_size": -Infinity'), "write a finite number"),
        ("text.json", LLAMA.replace(b'"num_hidden_layers": 32', b'"num_hidden_layers": "32"'), "num\\_hidden\\_layers"),
        (
            "float.json",
            LLAMA.replace(b'"num_hidden_layers": 32', b'"num_hidden_layers": 32.5'),
            "num\\_hidden\\_layers",
        ),
        ("list.json", b"[1, 2, 3]", "not an object"),
        ("latin1.json", b'{"name": "caf\xe9"}', "not UTF-8"),
        ("gpt.json", b'{"architectures": ["GPT2LMHeadModel"]}', "supported: "),
        ("empty.json", b"{}", "architectures"),
    ],
)
def test_a_bad_upload_is_one_error_that_names_the_fix(name, data, says):
    at = upload(open_view("training.py"), name, data)
    assert not at.exception
    assert len(at.error) == 1 and says in at.error[0].value
    assert not at.metric


def test_a_huge_layer_count_is_an_error_not_a_hung_page():
    config = json.loads(LLAMA) | {"num_hidden_layers": 10**9}
    # Fail fast, not by hanging the test run (the page would build a billion-layer list), while the bound is missing.
    with pytest.raises(ValueError, match="num_hidden_layers"):
        spec_from_hf_config(config, name="deep.json")
    at = AppTest.from_file(str(Path(__file__).parents[2] / "dashboard" / "views" / "training.py"), default_timeout=30)
    for key, value in SMALL_RUN.items():
        at.query_params[key] = value
    at.run()
    upload(at, "deep.json", json.dumps(config).encode())  # AppTest raises if the run takes over 30 s
    assert not at.exception
    assert len(at.error) == 1 and "num\\_hidden\\_layers" in at.error[0].value


def test_the_upload_name_is_cleaned():
    spec = model_from_upload(LLAMA, "\x1b[31mred\u202e.json")
    assert spec.name == "[31mred.json"
    assert model_from_upload(LLAMA, "\x00\x07").name == "uploaded config.json"
    assert len(model_from_upload(LLAMA, "n" * 500 + ".json").name) <= 80


def test_the_size_limit_is_checked_before_parsing():
    with pytest.raises(ValueError, match=r"1,048,577 bytes; the limit is 1 MiB"):
        model_from_upload(b" " * (MAX_UPLOAD_BYTES + 1), "x.json")
    assert isinstance(model_from_upload(LLAMA + b" " * (MAX_UPLOAD_BYTES - len(LLAMA)), "x.json"), ModelSpec)


def _outcome(data: bytes) -> ModelSpec | None:
    """A ModelSpec, or None for a ValueError of one line; any other exception fails the test."""
    try:
        return model_from_upload(data, "fuzz.json")
    except ValueError as exc:
        assert "\n" not in str(exc), str(exc)
        return None


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_a_model_or_a_one_line_error(data):
    _outcome(data)


REAL_CONFIGS = [json.loads(p.read_bytes()) for p in sorted(MODELS.glob("*.json"))]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, -1, 2**31, 2**63, 10**9, 10**30])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(list(ADAPTERS)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
KEYS = sorted({k for c in REAL_CONFIGS for k in c})


KEEP = object()  # leave the base config's architectures as they are


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(REAL_CONFIGS),
    changes=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), JSON_VALUES, max_size=4),
    dropped=st.lists(st.sampled_from(KEYS), max_size=3),
    architectures=st.just(KEEP) | JSON_VALUES | st.lists(JSON_VALUES, min_size=1, max_size=2),
)
def test_random_configs_are_a_model_or_a_one_line_error(base, changes, dropped, architectures):
    config = {k: v for k, v in base.items() if k not in dropped} | changes
    if architectures is not KEEP:
        config["architectures"] = architectures
    _outcome(json.dumps(config).encode())

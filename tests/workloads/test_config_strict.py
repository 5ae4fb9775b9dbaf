"""config.json is data, read with its types: wrong types, unknown enumerations, huge sizes, special files and
empty names are one-line errors naming the key; a hypothesis fuzz mutates real presets."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hang import no_hang
from workloads.hf import spec_from_hf_config
from workloads.registry import MODELS_DIR, load_model, model_slugs

PRESETS = {slug: json.loads((MODELS_DIR / f"{slug}.json").read_text()) for slug in model_slugs()}


def config(slug: str, **changes) -> dict:
    return {**PRESETS[slug], **changes}


@pytest.mark.parametrize(
    ("slug", "changes", "message"),
    [
        ("llama-3.1-8b", {"tie_word_embeddings": "false"}, "tie_word_embeddings='false' must be true or false"),
        ("llama-3.1-8b", {"attention_bias": 1}, "attention_bias=1 must be true or false"),
        ("llama-3.1-8b", {"num_hidden_layers": 32.0}, "num_hidden_layers=32.0 must be an integer"),
        ("llama-3.1-8b", {"num_hidden_layers": True}, "num_hidden_layers=True must be an integer"),
        ("llama-3.1-8b", {"hidden_size": "4096"}, "hidden_size='4096' must be an integer"),
        ("llama-3.1-8b", {"num_hidden_layers": 10**9}, "num_hidden_layers=1,000,000,000 is beyond the limit of 1,024"),
        ("llama-3.1-8b", {"vocab_size": 10**12}, "is beyond the limit"),
        ("llama-3.1-8b", {"architectures": "LlamaForCausalLM"}, "must be a list of names"),
        ("llama-3.1-8b", {"architectures": [1]}, "must be a list of names"),
        ("llama-3.1-8b", {"architectures": [["LlamaForCausalLM"]]}, "must be a list of names"),
        ("llama-3.1-8b", {"_name_or_path": 7}, "_name_or_path=7 must be a string"),
        ("deepseek-v3", {"scoring_func": "nonsense"}, "scoring_func='nonsense'; use one of softmax, sigmoid"),
        ("deepseek-v3", {"scoring_func": 1}, "scoring_func=1 must be a string"),
        ("deepseek-v3", {"n_routed_experts": -256}, "must be a non-negative integer"),
        ("qwen3-30b-a3b", {"mlp_only_layers": "none"}, "mlp_only_layers='none' must be a list"),
    ],
)
def test_wrong_types_and_values_are_refused_by_key(slug, changes, message):
    with no_hang(), pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        spec_from_hf_config(config(slug, **changes))
    assert "\n" not in str(err.value)


def test_the_presets_still_load_as_before():
    """JSON false/true stay bools, integers stay ints: the shipped presets keep their exact specs."""
    spec = load_model("llama-3.1-8b")
    assert spec.tie_word_embeddings is False and spec.num_hidden_layers == 32
    assert load_model("deepseek-v3").scoring_func == "sigmoid"


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}'])
def test_non_finite_numbers_are_not_json(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="is not a number JSON allows"):
        load_model(str(path))


def test_special_files_and_huge_files_are_refused(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    big.write_text('{"x": "' + "a" * (2 << 20) + '"}')
    for path, message in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"), (big, "the limit is")):
        with no_hang(), pytest.raises(ValueError, match=message):
            load_model(str(path))


@pytest.mark.parametrize("name", ["", " ", "\t"])
def test_an_empty_name_is_not_the_config_in_this_folder(tmp_path, monkeypatch, name):
    """`load_model("")` used to read ./config.json."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(PRESETS["llama-3.1-8b"]))
    with pytest.raises(ValueError, match="no model named"):
        load_model(name)


def test_names_lose_control_characters():
    spec = spec_from_hf_config(config("llama-3.1-8b", _name_or_path="a\x1b[31mb\u202ec", _source="s\x07"))
    assert spec.name == "a[31mbc" and spec.source == "s"


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.lists(st.integers(0, 10), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(slug=st.sampled_from(sorted(PRESETS)), data=st.data())
def test_fuzz_mutated_presets(slug, data):
    """A real config with a key dropped or set to any JSON value: a valid spec (finite, positive sizes) or a
    one-line ValueError; never another exception or a hang."""
    cfg = dict(PRESETS[slug])
    key = data.draw(st.sampled_from([*sorted(cfg), "num_hidden_layers", "extra"]))
    if data.draw(st.booleans()):
        cfg.pop(key, None)
    else:
        cfg[key] = data.draw(JSON_VALUES)
    with no_hang():
        try:
            spec = spec_from_hf_config(cfg)
        except ValueError as err:
            assert "\n" not in str(err)
            return
    for field in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size"):
        value = getattr(spec, field)
        assert isinstance(value, int) and value > 0 and math.isfinite(value)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_as_a_config_file(tmp_path_factory, raw):
    path = Path(tmp_path_factory.mktemp("cfg")) / "config.json"
    path.write_bytes(raw)
    load_model.cache_clear()
    with no_hang():
        try:
            load_model(str(path))
        except ValueError as err:
            assert "\n" not in str(err)

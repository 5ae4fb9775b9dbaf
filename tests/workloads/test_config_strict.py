"""config.json is data, read with its types: wrong types, unknown enumerations, huge sizes, special files and
empty names are one-line errors naming the key; a hypothesis fuzz mutates real presets."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hang import answer_or_one_line_error, no_hang
from workloads.hf import spec_from_hf_config
from workloads.registry import MODELS_DIR, load_model, model_slugs
from workloads.spec import MAX_SIZES

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
        ("llama-3.1-8b", {"architectures": ""}, "architectures='' must be a list of names"),  # not "missing"
        ("llama-3.1-8b", {"architectures": False}, "architectures=False must be a list of names"),
        ("llama-3.1-8b", {"architectures": []}, "has no 'architectures' entry"),
        ("llama-3.1-8b", {"architectures": ["Gpt\x1b[2J"]}, "unknown architecture 'Gpt[2J'"),
        ("llama-3.1-8b", {"hidden_size": "9" * 5000}, "hidden_size='99999"),  # shown cut short
        ("llama-3.1-8b", {"num_hidden_layers": 10**400}, "is beyond the limit of 1,024"),
        ("llama-3.1-8b", {"num_hidden_layers": math.nan}, "num_hidden_layers=nan must be an integer"),
        ("deepseek-v3", {"num_experts_per_tok": 300}, "num_experts_per_tok=300 exceeds n_routed_experts=256"),
        ("deepseek-v3", {"topk_group": 9}, "topk_group=9 exceeds n_group=8"),
    ],
)
def test_wrong_types_and_values_are_refused_by_key(slug, changes, message):
    with no_hang(), pytest.raises(ValueError, match=re.escape(message)) as err:
        spec_from_hf_config(config(slug, **changes))
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


@pytest.mark.parametrize(("field", "limit"), sorted(MAX_SIZES.items()))
def test_every_size_has_a_named_limit(field, limit):
    """10^9 layers once made `v3sim train` and the dashboard loop for hours; each size now has a bound."""
    spec = load_model("deepseek-v3")
    with pytest.raises(ValueError, match=re.escape(f"{field}={limit + 1:,} is beyond the limit of {limit:,}")):
        dataclasses.replace(spec, **{field: limit + 1})


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
    with pytest.raises(ValueError, match="is empty"):
        spec_from_hf_config(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 5000, "unknown model"),  # once an OSError (File name too long) from the preset lookup
        ("a" * 5000 + ".json", "File name too long"),
        ("x\0y.json", "holds a NUL"),
        ("../models/deepseek-v3", "unknown model"),  # a slug is looked up, never joined onto the folder
    ],
)
def test_impossible_names_are_one_line_errors(name, message):
    with pytest.raises(ValueError, match=message) as err:
        load_model(name)
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


def test_names_lose_control_characters():
    spec = spec_from_hf_config(config("llama-3.1-8b", _name_or_path="a\x1b[31mb\u202ec", _source="s\x07"))
    assert spec.name == "a[31mbc" and spec.source == "s"


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, -1, 10**400, 2**31]),
    st.floats(),  # NaN and infinities too: a dict from Python is not held to JSON's numbers
    st.text(max_size=10),
    st.lists(st.integers(0, 10), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(slug=st.sampled_from(sorted(PRESETS)), data=st.data())
def test_fuzz_mutated_presets(slug, data):
    """A real config with one to three keys dropped or set to any JSON value: a valid spec (every size an
    integer within its limit) or a one-line ValueError; never another exception or a hang."""
    cfg = dict(PRESETS[slug])
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from([*sorted(cfg), "num_hidden_layers", "extra"]))
        if data.draw(st.booleans()):
            cfg.pop(key, None)
        else:
            cfg[key] = data.draw(JSON_VALUES)
    spec = answer_or_one_line_error(spec_from_hf_config, cfg)
    if spec is None:
        return
    for field, limit in MAX_SIZES.items():
        value = getattr(spec, field)
        assert isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit, (field, value)
    assert spec.num_hidden_layers > 0 and spec.hidden_size > 0


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_as_a_config_file(tmp_path_factory, raw):
    path = Path(tmp_path_factory.mktemp("cfg")) / "config.json"
    path.write_bytes(raw)
    load_model.cache_clear()
    answer_or_one_line_error(load_model, str(path))

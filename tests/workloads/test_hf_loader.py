"""The HF config.json loader: every supported architecture, and clear errors for the rest."""

from __future__ import annotations

import json

import pytest

from workloads.hf import ADAPTERS, ConfigError, spec_from_hf_config
from workloads.registry import MODELS_DIR, load_model, model_slugs

REQUIRED_PRESETS = {
    "deepseek-v3",
    "deepseek-v2",
    "deepseek-v2-lite",
    "llama-3.1-405b",
    "llama-3.1-70b",
    "llama-3.1-8b",
    "qwen2.5-72b",
    "mixtral-8x7b",
}


def test_every_required_preset_exists_with_a_source():
    assert set(model_slugs()) >= REQUIRED_PRESETS
    for slug in model_slugs():
        spec = load_model(slug)
        assert spec.name == slug
        assert "arXiv" in spec.source or "config.json" in spec.source


def test_presets_cover_every_adapter():
    archs = {json.loads(p.read_text())["architectures"][0] for p in MODELS_DIR.glob("*.json")}
    assert archs >= set(ADAPTERS) - {"MistralForCausalLM", "Gemma3ForCausalLM"}  # read as Llama's, Gemma 3's


def test_loads_from_a_path_and_a_dict_alike(tmp_path):
    config = json.loads((MODELS_DIR / "llama-3.1-8b.json").read_text())
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    from_path = spec_from_hf_config(path, name="x")
    from_dict = spec_from_hf_config(config, name="x")
    assert from_path == from_dict
    assert load_model(str(path)).num_hidden_layers == 32
    assert load_model(str(tmp_path)) == load_model(str(path))  # a checkpoint folder holding config.json


def test_architecture_specific_fields():
    v2_lite, mixtral, qwen2 = load_model("deepseek-v2-lite"), load_model("mixtral-8x7b"), load_model("qwen2.5-72b")
    assert v2_lite.attention == "mla" and v2_lite.q_lora_rank == 0
    assert mixtral.n_routed_experts == 8 and mixtral.moe_intermediate_size == 14336 and mixtral.num_dense_layers == 0
    assert qwen2.attention_bias and qwen2.attention == "gqa"
    assert load_model("qwen3-30b-a3b").qk_norm
    assert load_model("deepseek-v3").router_bias and not load_model("deepseek-v2").router_bias
    glm, qwen15 = load_model("glm-4.5"), load_model("qwen1.5-moe-a2.7b")
    assert glm.attention == "gqa" and glm.attention_bias and glm.router_bias and glm.scoring_func == "sigmoid"
    assert glm.num_dense_layers == 3 and glm.num_nextn_predict_layers == 1 and not glm.qk_norm
    assert qwen15.shared_intermediate_size == 5632 and qwen15.num_dense_layers == 0 and qwen15.attention_bias
    assert load_model("qwen3-32b").qk_norm and not load_model("qwen3-32b").is_moe


@pytest.mark.parametrize(
    ("slug", "total", "active"),
    [
        ("qwen3-32b", 32.8e9, None),  # Qwen3-32B model card: "Number of Parameters: 32.8B"
        ("glm-4.5", 355e9, 32e9),  # GLM-4.5 model card: "355 billion total parameters and 32 billion active"
        ("qwen1.5-moe-a2.7b", 14.3e9, None),  # Qwen1.5-MoE blog: "14.3B parameters in total"
        ("qwen3-235b-a22b", 235e9, 22e9),  # Qwen3-235B-A22B model card: "235B in total and 22B activated"
    ],
)
def test_the_later_architectures_count_their_published_parameters(slug, total, active):
    """Qwen3 dense, GLM-4.5 (GQA with q/k/v bias, DeepSeek-V3's MoE and MTP) and Qwen1.5-MoE (a shared expert of
    its own width) from their config.json, against the totals their model cards publish (the MTP layer apart,
    as V3's 671B is counted; Qwen counts the embedding in its 2.7B active, so that one is not compared)."""
    from workloads.params import params_active, params_total

    spec = load_model(slug)
    assert params_total(spec) == pytest.approx(total, rel=0.01)
    if active is not None:
        assert params_active(spec) == pytest.approx(active, rel=0.03)


def test_missing_field_is_named():
    config = json.loads((MODELS_DIR / "deepseek-v3.json").read_text())
    del config["kv_lora_rank"]
    with pytest.raises(ConfigError, match=r"DeepseekV3ForCausalLM.*missing 'kv_lora_rank'"):
        spec_from_hf_config(config)


def test_unknown_architecture_is_named():
    with pytest.raises(ConfigError, match=r"unknown architecture 'GPT2LMHeadModel'; supported: DeepseekV3"):
        spec_from_hf_config({"architectures": ["GPT2LMHeadModel"]})
    with pytest.raises(ConfigError, match="no 'architectures'"):
        spec_from_hf_config({"hidden_size": 8})


def test_bad_files(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        spec_from_hf_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        spec_from_hf_config(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        load_model("nope")


def test_bad_values_are_named():
    config = json.loads((MODELS_DIR / "llama-3.1-8b.json").read_text())
    with pytest.raises(ValueError, match=r"hidden_size=-4096 must be a positive integer"):
        spec_from_hf_config({**config, "hidden_size": -4096})
    with pytest.raises(ValueError, match="num_key_value_heads=5 does not divide"):
        spec_from_hf_config({**config, "num_key_value_heads": 5})
    with pytest.raises(ValueError, match="num_experts_per_tok=9 exceeds"):
        spec_from_hf_config({**json.loads((MODELS_DIR / "mixtral-8x7b.json").read_text()), "num_experts_per_tok": 9})


def test_a_config_file_is_named_by_its_own_name_then_its_file_then_its_folder(tmp_path):
    """issue 27: a config saved as kimi-k2.json is `kimi-k2`, not the folder it sits in; a checkpoint's
    config.json is its folder's name; `_name_or_path` wins over both."""
    data = json.loads((MODELS_DIR / "llama-3.1-8b.json").read_text())
    data.pop("_name_or_path", None)
    (tmp_path / "my-llama.json").write_text(json.dumps(data))
    assert spec_from_hf_config(tmp_path / "my-llama.json").name == "my-llama"
    folder = tmp_path / "Llama-3.1-8B-Instruct"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(data))
    assert spec_from_hf_config(folder / "config.json").name == "Llama-3.1-8B-Instruct"
    (tmp_path / "named.json").write_text(json.dumps({**data, "_name_or_path": "meta-llama/Llama-3.1-8B"}))
    assert spec_from_hf_config(tmp_path / "named.json").name == "meta-llama/Llama-3.1-8B"

"""Build a ModelSpec from a Hugging Face `config.json` (a path or a dict).

One adapter per architecture maps the config's keys to ModelSpec fields. A key
the architecture needs and the config lacks is an error that names it; so is
an architecture not in the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hwmodels.files import clean_text, loads_json, read_text
from workloads.spec import ModelSpec


class ConfigError(ValueError):
    """A config.json that cannot be turned into a ModelSpec."""


KINDS = {int: "an integer", bool: "true or false", str: "a string", list: "a list"}


class _Keys:
    """Reads keys of one config with their types, naming the config and key on a miss or a wrong type.

    Types are JSON's: `"false"` is not false, `1` is not true, `true` is not 1, and `4096.0` is not an
    integer (refused, never rounded: a size written as a float is a config written by hand, and a typo).
    A key set to null reads as absent (HF writes `"q_lora_rank": null` for "not used")."""

    def __init__(self, config: Mapping[str, Any], where: str) -> None:
        self.config, self.where = config, where

    def need(self, key: str, kind: type = int) -> Any:
        if self.config.get(key) is None:
            raise ConfigError(f"{self.where} is missing {key!r}")
        return self._typed(key, self.config[key], kind)

    def get(self, key: str, default: Any) -> Any:
        value = self.config.get(key)
        return default if value is None else self._typed(key, value, type(default))

    def _typed(self, key: str, value: Any, kind: type) -> Any:
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            shown = clean_text(repr(value), 80)
            raise ConfigError(f"{self.where}: {key}={shown} must be {KINDS.get(kind, kind.__name__)}")
        return value


def _common(c: _Keys) -> dict[str, Any]:
    return dict(
        num_hidden_layers=c.need("num_hidden_layers"),
        hidden_size=c.need("hidden_size"),
        num_attention_heads=c.need("num_attention_heads"),
        vocab_size=c.need("vocab_size"),
        tie_word_embeddings=c.get("tie_word_embeddings", False),
        max_position_embeddings=c.get("max_position_embeddings", 0),
    )


def _gqa(c: _Keys) -> dict[str, Any]:
    heads = c.need("num_attention_heads")
    kv_heads = c.get("num_key_value_heads", heads)
    return dict(
        attention="mha" if kv_heads == heads else "gqa",
        num_key_value_heads=kv_heads,
        head_dim=c.get("head_dim", 0),
    )


SLIDING, FULL = "sliding_attention", "full_attention"  # config.json's layer_types, as transformers writes them


def _windows(c: _Keys, default: list[str] | None) -> dict[str, Any]:
    """Sliding-window attention: the layers `layer_types` names "sliding_attention" (GPT-OSS, recent Qwen and
    Mistral configs), else `default` (the architecture's own pattern; None: none), attend the last
    `sliding_window` tokens; a window of null is none."""
    layers = c.need("num_hidden_layers")
    types = c.get("layer_types", [])
    if types:
        if len(types) != layers or any(t not in (SLIDING, FULL) for t in types):
            raise ConfigError(f"{c.where}: layer_types must list {layers} entries, each {SLIDING!r} or {FULL!r}")
    else:
        types = default or []
    windowed = types.count(SLIDING)
    window = c.need("sliding_window") if windowed and c.config.get("sliding_window") is not None else 0
    return {"sliding_window": window, "sliding_window_layers": windowed if window else 0}


def _qwen_windows(c: _Keys) -> dict[str, Any]:
    """Qwen2/Qwen3: a window only with use_sliding_window, on the layers from max_window_layers on
    (configuration_qwen2.py); their released configs set it false."""
    if not c.get("use_sliding_window", False):
        return {}
    layers, first = c.need("num_hidden_layers"), c.get("max_window_layers", c.need("num_hidden_layers"))
    return _windows(c, [SLIDING if i >= first else FULL for i in range(layers)])


def _every_layer(c: _Keys) -> list[str]:
    """Mistral and Mixtral: `sliding_window` (when not null) applies to every layer (Mistral 7B v0.1: 4,096)."""
    return [SLIDING] * c.need("num_hidden_layers")


def _llama(c: _Keys) -> dict[str, Any]:
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": c.need("intermediate_size"),
        "attention_bias": c.get("attention_bias", False),
    }


def _mistral(c: _Keys) -> dict[str, Any]:
    return {**_llama(c), **_windows(c, _every_layer(c))}


def _qwen2(c: _Keys) -> dict[str, Any]:
    # Qwen2 always has a bias on q, k and v (not on o): modeling_qwen2.py.
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": c.need("intermediate_size"),
        "attention_bias": True,
        **_qwen_windows(c),
    }


def _qwen3(c: _Keys) -> dict[str, Any]:
    # Qwen3 dense: RMSNorm over q and k per head, no q/k/v bias by default (modeling_qwen3.py).
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": c.need("intermediate_size"),
        "qk_norm": True,
        "attention_bias": c.get("attention_bias", False),
        **_qwen_windows(c),
    }


def _qwen2_moe(c: _Keys) -> dict[str, Any]:
    # Qwen1.5-MoE / Qwen2-MoE: every layer MoE, one shared expert of its own width (its scalar sigmoid gate,
    # hidden_size weights a layer, is left out), q/k/v bias as Qwen2 (modeling_qwen2_moe.py).
    if c.get("decoder_sparse_step", 1) != 1 or c.get("mlp_only_layers", []):
        raise ConfigError(f"{c.where}: decoder_sparse_step != 1 or mlp_only_layers is not supported")
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": 0,
        "attention_bias": c.get("qkv_bias", True),
        "n_routed_experts": c.need("num_experts"),
        "num_experts_per_tok": c.need("num_experts_per_tok"),
        "moe_intermediate_size": c.need("moe_intermediate_size"),
        "shared_expert_intermediate_size": c.get("shared_expert_intermediate_size", 0),
        **_qwen_windows(c),
    }


def _glm4_moe(c: _Keys) -> dict[str, Any]:
    # GLM-4.5 / 4.6 / 4.7: GQA attention with q/k/v bias, DeepSeek-V3's MoE (shared experts, the first k
    # layers dense, sigmoid scores with the balancing bias) and its MTP layers (modeling_glm4_moe.py).
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": c.need("intermediate_size"),
        "attention_bias": c.get("attention_bias", False),
        "qk_norm": c.get("use_qk_norm", False),
        **_deepseek_moe(c),
        "scoring_func": "sigmoid",
        "router_bias": True,
    }


def _qwen3_moe(c: _Keys) -> dict[str, Any]:
    if c.get("decoder_sparse_step", 1) != 1 or c.get("mlp_only_layers", []):
        raise ConfigError(f"{c.where}: decoder_sparse_step != 1 or mlp_only_layers is not supported")
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": c.get("intermediate_size", 0),
        "qk_norm": True,
        "attention_bias": c.get("attention_bias", False),
        "n_routed_experts": c.need("num_experts"),
        "num_experts_per_tok": c.need("num_experts_per_tok"),
        "moe_intermediate_size": c.need("moe_intermediate_size"),
        **_qwen_windows(c),
    }


def _gpt_oss(c: _Keys) -> dict[str, Any]:
    # GPT-OSS (configuration_gpt_oss.py, modeling_gpt_oss.py): GQA with biased projections and a learned sink
    # per head (one more softmax term: no FLOPs of note); every layer MoE, `num_local_experts` experts of
    # `intermediate_size` behind a router with a bias (their own biases, 3 x hidden per expert, are left out:
    # 0.03% of the weights); layers alternate a 128-token window with full attention, from the first.
    layers = c.need("num_hidden_layers")
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": 0,
        "attention_bias": c.get("attention_bias", True),
        "n_routed_experts": c.need("num_local_experts"),
        "num_experts_per_tok": c.need("num_experts_per_tok"),
        "moe_intermediate_size": c.need("intermediate_size"),
        "router_bias": True,
        **_windows(c, [SLIDING if i % 2 == 0 else FULL for i in range(layers)]),
    }


# Gemma3TextConfig's defaults for the keys the released configs leave out (configuration_gemma3.py)
GEMMA3_DEFAULTS = {"vocab_size": 262208, "tie_word_embeddings": True, "max_position_embeddings": 131072}


def _gemma3(c: _Keys) -> dict[str, Any]:
    # Gemma 3 (configuration_gemma3.py, Gemma3TextConfig): GQA with RMSNorm over q and k, a GeGLU MLP (three
    # matrices, as SwiGLU), tied embeddings; five of every six layers attend a local window (layer_types, else
    # sliding_window_pattern, 6 by default). The multimodal checkpoints nest the text model in text_config
    # (its SigLIP vision tower, 417M in the 27B, is left out). Keys the released configs omit take
    # Gemma3TextConfig's defaults.
    text = c.config.get("text_config")
    config, where = (text, f"{c.where} text_config") if isinstance(text, Mapping) else (c.config, c.where)
    c = _Keys({**GEMMA3_DEFAULTS, **config}, where)
    layers, pattern = c.need("num_hidden_layers"), c.get("sliding_window_pattern", 6)
    if pattern < 1:
        raise ConfigError(f"{c.where}: sliding_window_pattern={pattern} must be a positive integer")
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": c.need("intermediate_size"),
        "qk_norm": True,
        "attention_bias": c.get("attention_bias", False),
        **_windows(c, [FULL if (i + 1) % pattern == 0 else SLIDING for i in range(layers)]),
    }


def _mixtral(c: _Keys) -> dict[str, Any]:
    # Mixtral's intermediate_size is the width of each expert; every layer is MoE.
    return {
        **_common(c),
        **_gqa(c),
        "intermediate_size": 0,
        "n_routed_experts": c.need("num_local_experts"),
        "num_experts_per_tok": c.need("num_experts_per_tok"),
        "moe_intermediate_size": c.need("intermediate_size"),
        **_windows(c, _every_layer(c)),
    }


def _deepseek(c: _Keys) -> dict[str, Any]:
    heads = c.need("num_attention_heads")
    return {
        **_common(c),
        "attention": "mla",
        "num_key_value_heads": heads,
        "intermediate_size": c.need("intermediate_size"),
        "q_lora_rank": c.get("q_lora_rank", 0),
        "kv_lora_rank": c.need("kv_lora_rank"),
        "qk_nope_head_dim": c.need("qk_nope_head_dim"),
        "qk_rope_head_dim": c.need("qk_rope_head_dim"),
        "v_head_dim": c.need("v_head_dim"),
        **_deepseek_moe(c),
        "moe_layer_freq": c.get("moe_layer_freq", 1),
        "scoring_func": c.get("scoring_func", "softmax"),
    }


def _deepseek_moe(c: _Keys) -> dict[str, Any]:
    """DeepSeekMoE's keys, as DeepSeek-V2/V3 and GLM-4.5 name them: routed and shared experts, group-limited
    routing, the first k layers dense, the MTP depths."""
    return {
        "n_routed_experts": c.need("n_routed_experts"),
        "n_shared_experts": c.get("n_shared_experts", 0),
        "num_experts_per_tok": c.need("num_experts_per_tok"),
        "moe_intermediate_size": c.need("moe_intermediate_size"),
        "n_group": c.get("n_group", 1),
        "topk_group": c.get("topk_group", 1),
        "first_k_dense_replace": c.get("first_k_dense_replace", 0),
        "num_nextn_predict_layers": c.get("num_nextn_predict_layers", 0),
    }


def _deepseek_v3(c: _Keys) -> dict[str, Any]:
    # V3 adds the bias of auxiliary-loss-free balancing (e_score_correction_bias) to its gate.
    return {**_deepseek(c), "router_bias": True}


ADAPTERS: dict[str, Callable[[_Keys], dict[str, Any]]] = {
    "DeepseekV3ForCausalLM": _deepseek_v3,
    "DeepseekV2ForCausalLM": _deepseek,
    "LlamaForCausalLM": _llama,
    "MistralForCausalLM": _mistral,
    "GptOssForCausalLM": _gpt_oss,
    "Gemma3ForCausalLM": _gemma3,
    "Gemma3ForConditionalGeneration": _gemma3,
    "Qwen2ForCausalLM": _qwen2,
    "Qwen3ForCausalLM": _qwen3,
    "Qwen3MoeForCausalLM": _qwen3_moe,
    "Qwen2MoeForCausalLM": _qwen2_moe,
    "Glm4MoeForCausalLM": _glm4_moe,
    "MixtralForCausalLM": _mixtral,
}


def spec_from_hf_config(config: Mapping[str, Any] | str | Path, name: str | None = None) -> ModelSpec:
    """Return the ModelSpec of a HF config (a dict, or the path of a config.json)."""
    where = "config.json"
    if not isinstance(config, Mapping):
        where = clean_text(config)
        config = _read_json(config, where)
    arch = _architecture(config, where)
    keys = _Keys(config, f"{where} ({arch})")
    fields = ADAPTERS[arch](keys)
    # its own name, else the file's (kimi-k2.json), else its folder's (a checkpoint's config.json), else the class
    file = Path(where)
    named_file = file.stem if file.name != "config.json" and file.suffix == ".json" else ""
    label = name or keys.get("_name_or_path", "") or named_file or file.parent.name or arch
    try:
        return ModelSpec(name=label, source=keys.get("_source", where), **fields)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _architecture(config: Mapping[str, Any], where: str) -> str:
    """The first entry of `architectures` (a list of names), one the adapter table knows."""
    archs = config.get("architectures")
    if archs is None or archs == []:
        raise ConfigError(f"{where} has no 'architectures' entry; supported: {', '.join(ADAPTERS)}")
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise ConfigError(f"{where}: architectures={clean_text(repr(archs), 80)} must be a list of names")
    if archs[0] not in ADAPTERS:
        shown = clean_text(archs[0], 80)
        raise ConfigError(f"{where}: unknown architecture {shown!r}; supported: {', '.join(ADAPTERS)}")
    return archs[0]


def _read_json(path: str | Path, where: str) -> dict[str, Any]:
    """The JSON object in `path`: a regular file of at most MAX_CONFIG_BYTES, strict JSON (no NaN)."""
    try:
        data = loads_json(read_text(path, "config"), where)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a JSON object")
    return data

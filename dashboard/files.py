"""Files a user uploads, parsed in memory: nothing is written to disk, so no shared temporary name can be
planted, raced or trusted. The page caches the parse on the file's bytes (`st.cache_data`)."""

from __future__ import annotations

import pandas as pd

from hwmodels.files import MAX_CONFIG_BYTES, clean_text, loads_json
from workloads.hf import spec_from_hf_config
from workloads.params import params_active, params_total
from workloads.spec import ModelSpec

MAX_UPLOAD_BYTES = MAX_CONFIG_BYTES  # 1 MiB: a model's config.json is a few KiB
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES >> 20  # the same limit for st.file_uploader, which counts whole MiB
MAX_NAME_CHARS = 80  # an uploaded file's name, as the model's name
JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "true/false", type(None): "null"}


def upload_name(filename: str) -> str:
    """An uploaded file's name as shown and as the model's name: no control characters, at most 80."""
    return clean_text(filename, MAX_NAME_CHARS).strip() or "uploaded config.json"


def model_from_upload(data: bytes, filename: str) -> ModelSpec:
    """The ModelSpec of an uploaded Hugging Face config.json (its bytes), named after the file; a ValueError
    (one line, naming the fix) for a file that is too large, not UTF-8, not strict JSON, not a JSON object,
    or not a model `spec_from_hf_config` accepts."""
    name = upload_name(filename)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(
            f"{name} is {len(data):,} bytes; the limit is {MAX_UPLOAD_MB} MiB: upload a model's config.json "
            "(a few KiB), not its weights"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not UTF-8 text (byte {exc.start}): upload a model's config.json") from None
    try:
        config = loads_json(text, name)
    except ValueError as exc:
        fix = "" if "finite number" in str(exc) else ": upload a model's config.json as Hugging Face ships it"
        raise ValueError(f"{exc}{fix}") from None
    if not isinstance(config, dict):
        kind = JSON_KINDS.get(type(config), "value")
        raise ValueError(f"{name} holds a JSON {kind}, not an object: upload a model's config.json")
    return spec_from_hf_config(config, name=name)


def model_summary_frame(spec: ModelSpec) -> pd.DataFrame:
    """What was read from a config.json, as a two-column table a person can check against the model card."""
    experts = (
        f"{spec.n_routed_experts} routed ({spec.num_experts_per_tok} per token), {spec.n_shared_experts} shared"
        if spec.is_moe
        else "none (dense)"
    )
    rows = {
        "name": spec.name,
        "parameters": f"{params_total(spec) / 1e9:,.1f}B",
        "active per token": f"{params_active(spec) / 1e9:,.1f}B",
        "layers": f"{spec.num_hidden_layers} ({spec.num_moe_layers} MoE)"
        if spec.is_moe
        else str(spec.num_hidden_layers),
        "hidden size": f"{spec.hidden_size:,}",
        "attention": f"{spec.attention.upper()}, {spec.num_attention_heads} heads, {spec.kv_heads} KV heads",
        "experts": experts,
        "vocabulary": f"{spec.vocab_size:,}",
        "multi-token prediction": f"{spec.num_nextn_predict_layers} module(s)"
        if spec.num_nextn_predict_layers
        else "no",
        "longest context": f"{spec.max_position_embeddings:,}" if spec.max_position_embeddings else "not stated",
    }
    return pd.DataFrame({"read": list(rows), "value": list(rows.values())})

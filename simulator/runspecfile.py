"""Run-spec files: one training run's options as TOML, the options `simulator.runspec.build_run` takes.

A run spec is a flat TOML table: `model` (a preset slug or a config.json path), `gpu` or `node`, and any of
`RUN_FIELDS` (`tp = 8`, `tokens = 15e12`, `schedule = "1f1b"`); a key left out keeps v3sim's default, as
on the command line. `v3sim train --spec FILE` runs one, `--save-spec FILE` writes one, and the dashboard
exports and imports scenarios through the same four functions. Read as data (tomllib), every key and type
checked where it enters (`check_run_options`, which run plans use for their `[run]` and phase options);
the values themselves are checked by RunSpec when the run is built. Free of argparse and streamlit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwmodels.files import MAX_CONFIG_BYTES, clean_text, is_finite_number, loads_toml, read_text
from simulator import limits
from simulator.runspec import RUN_FIELDS

MAX_TEXT_CHARS = 4096  # a catalog name, a preset slug or a file path
NO_LIMIT = "none"  # node_limit = "none": no limit on the nodes a token's experts span (TOML has no null)
# every key a run spec may hold -> its kind; a test holds this to ("model", "gpu", "node", *RUN_FIELDS)
KEY_KINDS: dict[str, str] = {
    "model": "text", "gpu": "text", "node": "text",
    "gpus": "int", "topology": "text", "radix": "int", "oversubscription": "number", "ecmp": "text",
    "tp": "int", "pp": "int", "ep": "int", "cp": "int", "cp_comm": "text", "zero_stage": "int", "virtual_stages": "int",
    "stage_layers": "ints", "micro_batch": "int", "global_batch_tokens": "int", "seq_len": "int",
    "precision": "text", "schedule": "text", "recompute": "text", "node_limit": "int or none", "comm_sms": "int",
    "tp_comm": "text", "ep_comm": "text", "ep_dispatcher": "text", "cuda_graphs": "text", "fp8_recipe": "text",
    "expert_imbalance": "number", "mtp_layers": "int", "tokens": "number", "price_per_gpu_hour": "number",
}  # fmt: skip
SPEC_KEYS = tuple(k for k in ("model", "gpu", "node", *RUN_FIELDS) if k in KEY_KINDS)
_KIND_WORDS = {
    "text": "a non-empty text",
    "int": "an integer",
    "int or none": f'an integer or "{NO_LIMIT}"',
    "number": "a finite number",
    "ints": "a list of integers",
}
HEADER = """\
# v3sim run spec: one training run's options (model, gpu or node, and the run's fields).
# Keys left out keep v3sim's defaults (DeepSeek-V3's published pre-training set-up).
# Run it:  v3sim train --spec THIS_FILE.toml   (options given beside --spec override the file's)
"""


def check_run_options(data: object, where: str) -> dict[str, Any]:
    """`data` as build_run options: known keys only, each of its kind (lists become tuples, node_limit
    "none" becomes None); a one-line ValueError naming `where` and the key otherwise."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: must be a table of run options")
    unknown = sorted(str(k) for k in data if k not in KEY_KINDS)
    if unknown:
        raise ValueError(f"{where}: unknown run option {clean_text(unknown[0], 80)!r}; known: {', '.join(SPEC_KEYS)}")
    return {key: _checked(key, value, where) for key, value in data.items()}


def _checked(key: str, value: object, where: str) -> Any:
    kind = KEY_KINDS[key]
    if kind == "int or none" and value == NO_LIMIT:
        return None
    if _OF_KIND[kind](value):
        return tuple(value) if isinstance(value, list) else value
    shown = clean_text(repr(value), 60)
    raise ValueError(f"{where}: {key} = {shown} must be {_KIND_WORDS[kind]}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: object) -> bool:
    """A non-empty text a file can hold: no NUL, no lone surrogate (not UTF-8), at most MAX_TEXT_CHARS."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT_CHARS:
        return False
    return "\0" not in value and not any("\ud800" <= c <= "\udfff" for c in value)


def _is_ints(value: object) -> bool:
    if not isinstance(value, list | tuple) or not 0 < len(value) <= limits.MAX_DEGREE:
        return False
    return all(_is_int(v) for v in value)


_OF_KIND = {"text": _is_text, "int": _is_int, "int or none": _is_int, "number": is_finite_number, "ints": _is_ints}


def spec_from_data(data: Mapping[str, object], name: str) -> dict[str, object]:
    """The build_run options a run spec's parsed TOML holds, every key and type checked (one-line ValueError
    naming the file `name` and the key)."""
    where = f"run spec {clean_text(name, 80)}"
    options = check_run_options(data, where)
    if "gpu" in options and "node" in options:
        raise ValueError(f"{where}: give gpu or node, not both")
    return options


def load_spec_text(text: str, name: str) -> dict[str, object]:
    """The build_run options of a run spec's TOML `text` (`name` is what errors call it)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ValueError(f"run spec {clean_text(name, 80)} is over the limit of {MAX_CONFIG_BYTES:,} bytes")
    return spec_from_data(loads_toml(text, f"run spec {clean_text(name, 80)}"), name)


def load_spec(path: str | Path) -> dict[str, object]:
    """The build_run options of a run-spec file (a regular UTF-8 file of at most 1 MiB). A relative model or
    node path is taken from the spec's folder when the file is there, so a spec travels with its config."""
    path = Path(path)
    options = load_spec_text(read_text(path, "run spec"), path.name)
    for key in ("model", "node"):
        value = options.get(key)
        if isinstance(value, str) and looks_like_path(value) and not Path(value).is_absolute():
            beside = path.parent / value
            if beside.exists():
                options[key] = str(beside)
    return options


def looks_like_path(value: str) -> bool:
    """A file name rather than a catalog slug: it has a folder or a .json / .toml suffix."""
    return "/" in value or "\\" in value or value.endswith((".json", ".toml"))


def spec_toml(options: Mapping[str, object]) -> str:
    """A run spec's TOML text for build_run `options` (None: the default, left out; node_limit None:
    "none"), keys in a fixed order, behind a comment header naming v3sim and how to run it. Refuses what a
    file cannot hold (a ModelSpec object rather than a slug or a path, an unknown key, a wrong type)."""
    model = options.get("model")
    if model is not None and not isinstance(model, str):
        raise ValueError("run spec: the model must be a preset slug or a config.json path to be written to a file")
    given = {k: v for k, v in options.items() if v is not None}
    if "node_limit" in options and options["node_limit"] is None:
        given["node_limit"] = NO_LIMIT
    checked = spec_from_data(given, "to write")
    lines = [f"{key} = {_toml_value(checked[key])}" for key in SPEC_KEYS if key in checked]
    return HEADER + "\n" + "\n".join(lines) + ("\n" if lines else "")


def _toml_value(value: object) -> str:
    """One TOML value: a basic string (JSON's escapes, which TOML shares, and DEL escaped), an integer, a
    float that reads back to the same float, or an array of integers."""
    if value is None:  # node_limit: no limit
        return f'"{NO_LIMIT}"'
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)  # finite (checked): 14800000000000.0, 1.5, 1e+20
    return str(value)

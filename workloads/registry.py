"""Model presets: one HF config.json per model in data/models/, loaded by slug or path.

Nothing is read at import; `load_model` reads and caches on first use.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hwmodels.files import clean_text, path_is
from workloads.hf import ConfigError, spec_from_hf_config
from workloads.spec import ModelSpec

MODELS_DIR = Path(__file__).parent / "data" / "models"


def model_slugs() -> list[str]:
    """The preset slugs, sorted."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


@cache
def load_model(slug_or_path: str) -> ModelSpec:
    """Return the ModelSpec of a preset slug (`deepseek-v3`), a config.json path, or a folder holding one.

    A slug is looked up in the list of presets, never joined onto a folder (`../x` is a path, not a preset);
    an empty name is refused rather than read as the current folder."""
    if not isinstance(slug_or_path, str) or not slug_or_path.strip():
        raise ConfigError(f"no model named ({slug_or_path!r}); use a preset ({', '.join(model_slugs())}) or a path")
    if slug_or_path in model_slugs():
        return spec_from_hf_config(MODELS_DIR / f"{slug_or_path}.json", name=slug_or_path)
    path = Path(slug_or_path)
    if path_is(path, Path.is_dir):
        path = path / "config.json"
    if path.suffix == ".json" or path_is(path, Path.exists):
        return spec_from_hf_config(path)
    raise ConfigError(
        f"unknown model {clean_text(slug_or_path, 80)!r}; use a config.json path or one of: {', '.join(model_slugs())}"
    )

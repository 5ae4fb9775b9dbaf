"""The generated tables in README.md, docs/validation.md and docs/serving.md are what `v3sim validate` and
`v3sim serve` say today (`make docs` rewrites them; this fails when a change to the model moves a number and
the docs were not)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
spec = importlib.util.spec_from_file_location("docs_refresh", ROOT / "docs" / "refresh.py")
refresh = importlib.util.module_from_spec(spec)
spec.loader.exec_module(refresh)


@pytest.mark.parametrize(("rel", "name"), sorted(refresh.BLOCKS))
def test_generated_block_is_current(rel, name):
    text = (ROOT / rel).read_text(encoding="utf-8")
    table = refresh.BLOCKS[(rel, name)]()
    assert refresh.refreshed(text, name, table) == text, f"run `make docs` ({rel}: {name})"


def test_headline_rows_exist():
    table = refresh.validation_markdown(headline=True)
    assert len(table.splitlines()) == 2 + len(refresh.HEADLINE)  # header, rule, one line per headline figure
    assert "V3 pre-training H800 GPU-hours" in table

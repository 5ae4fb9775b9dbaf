"""The validation tables in README.md and docs/validation.md are what `v3sim validate` says today
(`make docs` rewrites them; this fails when a change to the model moves a number and the docs were not)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
spec = importlib.util.spec_from_file_location("docs_refresh", ROOT / "docs" / "refresh.py")
refresh = importlib.util.module_from_spec(spec)
spec.loader.exec_module(refresh)


@pytest.mark.parametrize("rel", sorted(refresh.BLOCKS))
def test_generated_block_is_current(rel):
    name, headline = refresh.BLOCKS[rel]
    text = (ROOT / rel).read_text(encoding="utf-8")
    assert refresh.refreshed(text, name, refresh.validation_markdown(headline)) == text, f"run `make docs` ({rel})"


def test_headline_rows_exist():
    table = refresh.validation_markdown(headline=True)
    assert len(table.splitlines()) == 2 + len(refresh.HEADLINE)  # header, rule, one line per headline figure
    assert "V3 pre-training H800 GPU-hours" in table

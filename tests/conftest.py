"""Shared fixtures: the published figures and the model presets."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from workloads.registry import load_model

FIGURES_PATH = Path(__file__).parent / "golden" / "figures.toml"


@pytest.fixture(scope="session")
def figures() -> dict:
    """Published figures (a copy of ../shared/reference/figures.toml; test_figures_copy keeps it in sync)."""
    return tomllib.loads(FIGURES_PATH.read_text())


@pytest.fixture(scope="session")
def v3():
    return load_model("deepseek-v3")

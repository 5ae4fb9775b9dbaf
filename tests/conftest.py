"""Shared fixtures: the published figures and the model presets."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import settings

from workloads.registry import load_model

# CI must be reproducible: the same examples every run. HYPOTHESIS_PROFILE=explore searches afresh.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Fabric factors kept between commands (simulator.analytic.fabric.FactorCache): a fresh folder per session, so
# tests compute them as a first command would and never read or write the user's cache.
os.environ.setdefault("V3SIM_CACHE_DIR", tempfile.mkdtemp(prefix="v3sim-test-cache-"))

FIGURES_PATH = Path(__file__).parents[1] / "simulator" / "data" / "figures.toml"


@pytest.fixture(scope="session")
def figures() -> dict:
    """Published figures (a copy of ../shared/reference/figures.toml; test_figures_copy keeps it in sync)."""
    return tomllib.loads(FIGURES_PATH.read_text())


@pytest.fixture(scope="session")
def v3():
    return load_model("deepseek-v3")

"""The repository's copy of the team's published-figures table must match the shared one."""

from pathlib import Path

import pytest

from tests.conftest import FIGURES_PATH

SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "figures.toml"


@pytest.mark.skipif(not SHARED.is_file(), reason="no ../shared checkout beside this repository")
def test_copy_matches_shared_reference():
    assert FIGURES_PATH.read_text() == SHARED.read_text(), "refresh simulator/data/figures.toml from ../shared"

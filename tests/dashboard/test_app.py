"""The dashboard's entry point: st.navigation over every page; the default page is Training cost."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import PAGES

ROOT = Path(__file__).parents[2]
APP = str(ROOT / "dashboard" / "app.py")


def test_every_page_file_exists_and_the_default_is_training_cost():
    assert all((ROOT / "dashboard" / "views" / file).is_file() for file, *_ in PAGES)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Training cost"
    assert {m.label for m in at.metric} >= {"GPU-hours", "Cost", "Days", "Step time"}


@pytest.mark.parametrize(("file", "title"), [(f, t) for f, t, *_ in PAGES[1:]])
def test_navigating_to_each_page_renders_it(file, title):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(f"views/{file}").run()
    assert not at.exception
    assert any(title in t.value for t in at.title)

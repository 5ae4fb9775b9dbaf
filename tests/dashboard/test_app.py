"""The dashboard's entry point: st.navigation over every page; the default page is Training cost. It serves
loopback only, however it is started: any other server.address shows only how to fix that, unless the user
opts in with V3SIM_DASHBOARD_PUBLIC=1."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from dashboard import PAGES, PUBLIC_ENV, is_local_address

ROOT = Path(__file__).parents[2]
APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture
def address(monkeypatch):
    """Set Streamlit's server.address for one test (restored after); loopback unless the test changes it."""
    monkeypatch.delenv(PUBLIC_ENV, raising=False)
    before = config.get_option("server.address")

    def set_address(value: str | None) -> None:
        config.set_option("server.address", value)

    set_address("127.0.0.1")  # as .streamlit/config.toml and `make run` set it
    yield set_address
    set_address(before)


def test_every_page_file_exists_and_the_default_is_training_cost(address):
    assert all((ROOT / "dashboard" / "views" / file).is_file() for file, *_ in PAGES)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Training cost"
    assert {m.label for m in at.metric} >= {"GPU-hours", "Cost", "Days", "Step time"}


@pytest.mark.parametrize(("file", "title"), [(f, t) for f, t, *_ in PAGES[1:]])
def test_navigating_to_each_page_renders_it(address, file, title):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(f"views/{file}").run()
    assert not at.exception
    assert any(title in t.value for t in at.title)


@pytest.mark.parametrize(
    ("value", "local"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("unix:///tmp/v3sim.sock", True),
        (None, False),  # not set: Streamlit listens on every interface
        ("", False),
        ("  ", False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.7", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("127.0.0.1.nip.io", False),
    ],
)
def test_is_local_address(value, local):
    assert is_local_address(value) is local


@pytest.mark.parametrize("value", ["0.0.0.0", "", None, "192.168.1.7", "::", "my-host"])
def test_a_non_loopback_address_shows_only_the_fix(address, value):
    address(value)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert len(at.error) == 1
    assert "--server.address 127.0.0.1" in at.error[0].value and "make run" in at.error[0].value
    assert PUBLIC_ENV in at.error[0].value
    assert not at.title and not at.metric  # no page ran


@pytest.mark.parametrize("opt_in", ["0", "true", "yes", ""])
def test_only_the_value_1_opts_in(address, monkeypatch, opt_in):
    address("0.0.0.0")
    monkeypatch.setenv(PUBLIC_ENV, opt_in)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert len(at.error) == 1 and not at.title


def test_the_opt_in_serves_and_says_where(address, monkeypatch):
    address("0.0.0.0")
    monkeypatch.setenv(PUBLIC_ENV, "1")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Training cost"
    assert any("0.0.0.0" in c.value and PUBLIC_ENV in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("value", ["127.0.0.1", "::1", "localhost"])
def test_loopback_serves_without_a_note(address, value):
    address(value)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Training cost"
    assert not any(PUBLIC_ENV in c.value for c in at.sidebar.caption)

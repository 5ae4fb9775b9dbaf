"""The dashboard in a real browser: served on loopback, headless Chromium (Debian's `chromium`, driven by
Playwright) loads every page, finds its key numbers, records no console errors, and saves a screenshot.

Needs /usr/bin/chromium and the playwright package: `make test` installs Debian's chromium when run as root
(as CI does); elsewhere `apt-get install chromium`. `V3SIM_SCREENSHOTS=1` also copies the screenshots to
docs/screenshots/ (what the README shows).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from dashboard import PAGES

ROOT = Path(__file__).parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# What each page must show once it has run, at its defaults (DeepSeek-V3 on H800; the model's predictions).
KEY_TEXT = {
    "training": ["GPU-hours", "2,354K", "17.59 s", "largest overhead", "Where the step time goes", "Memory per GPU",
                 "What moves the GPU-hours", "Scenarios"],
    "memory": ["KV per token, deepseek-v3", "70,272 B", "MLA saving", "Sequences per GPU, deepseek-v3",
               "one H800 holds 19 sequences", "one node (8 GPUs) 152"],
    "topology": ["Cheapest network ($ per endpoint)", "$2,350", "Fastest V3 step time", "17.587 s", "V3's own network"],
    "codesign": ["Co-design", "FLOP/s", "buys most", "Step time", "17.6 s", "Network cost per GPU",
                 "One part at a time"],
    "timeline": ["Event step", "17.30 s", "Analytic step", "17.59 s", "published GPU-hours imply",
                 "Download Chrome trace"],
    "serving": ["TPOT", "68.2 ms", "Output tokens/s per GPU", "DeepSeek published 14.8K per H800 node"],
    "calibration": ["fp8 GEMM achieved (TFLOPS)", "56.9%", "Fits per kernel class"],
}  # fmt: skip

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
if not CHROMIUM.exists():
    pytest.skip(
        "no /usr/bin/chromium: run `make test` as root (it installs Debian's chromium) or `apt-get install chromium`",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.headless=true"]
    cmd += [f"--server.port={port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stderr.read()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.mark.parametrize(("title", "path"), [(t, p) for _, t, p in PAGES])
def test_every_page_loads_with_its_numbers_and_no_console_errors(server, browser, title, path, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)  # the default page; the others as a person reaches them, from the navigation
    page.get_by_role("heading", name="Training cost").first.wait_for(timeout=60_000)
    if path != "training":
        page.get_by_role("link", name=title).first.click()
        page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    for text in KEY_TEXT[path]:
        page.wait_for_function("t => document.body.innerText.includes(t)", arg=text, timeout=120_000)
    assert urllib.parse.urlparse(page.url).path.strip("/") in (path, "")  # the page's own address (default: /)
    assert urllib.parse.urlparse(page.url).query  # the view is in the address: a shareable link
    assert not page.query_selector_all('[data-testid="stException"]')
    assert "Traceback" not in page.inner_text("body")
    shot = tmp_path / f"{path}.png"
    page.wait_for_timeout(1500)  # let plotly finish drawing before the picture
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("V3SIM_SCREENSHOTS"):
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)
    page.close()
    assert not errors, f"{title}: console errors {errors}"


def test_a_hostile_url_is_text_with_a_note_and_the_defaults(server, browser):
    """URL values that are links, images or junk: each a visible note, none a link or an image, the default numbers."""
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    query = {
        "model": "[x](http://evil.example)",
        "gpu": "![p](https://evil.example/p.png)",
        "context": "www.evil.example",
        "batch": "nan",
        "mtp": "me@evil.example",
    }
    page.goto(f"{server}/serving?{urllib.parse.urlencode(query)}")
    for text in [
        "Ignored ?model=",
        "Ignored ?gpu=",
        "Ignored ?context=",
        "Ignored ?batch=nan",
        "Ignored ?mtp=",
        "68.2 ms",
    ]:
        page.wait_for_function("t => document.body.innerText.includes(t)", arg=text, timeout=120_000)
    assert not page.query_selector_all('a[href*="evil"]') and not page.query_selector_all('img[src*="evil"]')
    assert not page.query_selector_all('[data-testid="stException"]')
    page.close()
    assert not errors


def test_the_training_pages_whole_run_and_expected_run_in_a_browser(server, browser):
    """The plan table (a data editor), its bill and the expected run with async checkpoints and hot spares, as a
    person opens them from a shared link: the numbers, no exception, no console error."""
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    query = {"plan": "true", "checkpointing": "async", "pool": "true", "spares": "2"}
    page.goto(f"{server}/?{urllib.parse.urlencode(query)}")
    for text in ["Whole-run GPU-hours", "2,470K", "context extension -16.7%", "2 hot spare nodes", "written in"]:
        page.wait_for_function("t => document.body.innerText.includes(t)", arg=text, timeout=120_000)
    page.wait_for_selector('[data-testid="stDataFrame"] >> visible=true', timeout=60_000)  # the plan's table
    assert not page.query_selector_all('[data-testid="stException"]')
    page.close()
    assert not errors, errors


def test_a_person_walks_the_three_tasks_and_compares_two_scenarios(server, browser):
    """The three questions v3sim is opened for, as a person asks them in a browser: what a run costs (a model
    other than V3 on H100, at the defaults), how much memory MLA saves over GQA, and which network; then a
    scenario comparison: pin the run, change the pipeline depth with the widget, read the deltas."""
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def shows(*texts: str) -> None:
        for text in texts:
            page.wait_for_function("t => document.body.innerText.includes(t)", arg=text, timeout=120_000)

    page.goto(f"{server}/?model=llama-3.1-70b&node=h100-ib")  # cost of another model: answers, no error
    shows("llama-3.1-70b", "GPU-hours", "The engine chose", "largest overhead", "What moves the GPU-hours")
    assert not page.query_selector_all('[data-testid="stException"]')
    assert not page.query_selector_all('[data-testid="stAlertContentError"]')
    page.get_by_role("button", name="Pin this run").click()  # the baseline
    shows("Against the pinned baseline")
    pp = page.get_by_label("PP (pipeline stages)")
    pp.fill("8")
    pp.press("Enter")
    shows("Scenario A", "this run", "PP 16 → 8")
    assert "pp=8" in page.url  # the changed run is in the link; the pins are this session's
    delta = page.locator('[data-testid="stMetricDelta"]').first.inner_text()
    assert delta.strip().startswith(("+", "-", "−")) and delta.strip().endswith("%")

    page.goto(f"{server}/memory")  # MLA vs GQA
    shows("MLA saving", "4.7x less", "one H800 holds 19 sequences")
    page.goto(f"{server}/topology")  # which network
    shows("Fastest V3 step time", "V3's own network")
    assert not page.query_selector_all('[data-testid="stException"]')
    page.close()
    assert not errors, errors

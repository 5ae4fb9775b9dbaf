"""Running a dashboard view under Streamlit's AppTest, for the page tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

VIEWS = Path(__file__).parents[2] / "dashboard" / "views"


def open_view(file: str, **query: object) -> AppTest:
    """Run `dashboard/views/<file>` once, with `query` as the URL's query string."""
    at = AppTest.from_file(str(VIEWS / file), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = str(value)
    return at.run()


def metrics(at: AppTest) -> dict[str, str]:
    """The page's st.metric values by label."""
    return {m.label: m.value for m in at.metric}

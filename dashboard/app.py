"""The v3sim dashboard: `streamlit run dashboard/app.py` (or `make run`), served on 127.0.0.1.

Every page only formats and plots what the simulator returns; each view's inputs live in the URL.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import PAGES

HERE = Path(__file__).parent

st.set_page_config(page_title="v3sim", layout="wide")  # no remote favicon: it works offline
pages = [
    st.Page(HERE / "views" / file, title=title, url_path=path, default=i == 0)
    for i, (file, title, path) in enumerate(PAGES)
]
st.navigation(pages).run()

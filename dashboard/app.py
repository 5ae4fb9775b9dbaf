"""The v3sim dashboard: `streamlit run dashboard/app.py` (or `make run`), served on 127.0.0.1.

Every page only formats and plots what the simulator returns; each view's inputs live in the URL. The
dashboard runs models on whatever a visitor types, so it serves loopback only, however it is started: on
any other `server.address` (empty: every interface) it shows only how to fix that, unless the user sets
V3SIM_DASHBOARD_PUBLIC=1 and takes on who can reach it.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from dashboard import PAGES, PUBLIC_ENV, is_local_address
from dashboard.state import plain

HERE = Path(__file__).parent

st.set_page_config(page_title="v3sim", layout="wide")  # no remote favicon: it works offline
address = st.get_option("server.address")
if not is_local_address(address):
    where = plain(address) if (address or "").strip() else "every interface"
    if os.environ.get(PUBLIC_ENV) != "1":
        st.error(
            f"This dashboard is served on {where}, not loopback: start it with `--server.address 127.0.0.1`, "
            f"or `make run` (or set {PUBLIC_ENV}=1 to serve it to your network, at your own risk)."
        )
        st.stop()
    st.sidebar.caption(f"Served on {where} ({PUBLIC_ENV}=1): anyone who can reach it can use it.")
pages = [
    st.Page(HERE / "views" / file, title=title, url_path=path, default=i == 0)
    for i, (file, title, path) in enumerate(PAGES)
]
st.navigation(pages).run()

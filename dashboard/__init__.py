"""The Streamlit dashboard (`dashboard/app.py`); this package imports nothing from Streamlit."""

from __future__ import annotations

import ipaddress

# The pages, in the order of the navigation: (file under views/, title, URL path). No icons: a page's
# icon becomes the favicon, which Streamlit fetches from Google's font servers (unreachable offline).
PAGES = [
    ("training.py", "Training cost", "training"),
    ("memory.py", "Attention memory", "memory"),
    ("topology.py", "Topology explorer", "topology"),
    ("codesign.py", "Co-design", "codesign"),
    ("timeline.py", "Pipeline timeline", "timeline"),
    ("serving.py", "Serving", "serving"),
    ("kernel_profiles.py", "Calibration", "calibration"),
]

# Set to 1 to serve the dashboard on an address other than loopback; who can then reach it is the user's business.
PUBLIC_ENV = "V3SIM_DASHBOARD_PUBLIC"


def is_local_address(address: str | None) -> bool:
    """Whether Streamlit's `server.address` keeps the dashboard on this machine: a loopback address
    (127.0.0.0/8, ::1, localhost) or a unix socket. None or empty means every interface: not local."""
    text = (address or "").strip()
    if text.startswith("unix://"):
        return True
    if text.lower().rstrip(".") == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False  # empty (all interfaces), or a host name that may resolve anywhere
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)

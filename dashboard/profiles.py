"""Kernel profiles as the dashboard's caches see them."""

from __future__ import annotations

from hwmodels.registry import load_node
from simulator.analytic.profile import measured_path


def profile_version(profile: str, node: str) -> str:
    """What `profile` names now, for the caches' keys: "measured" is the newest file `v3sim calibrate run` wrote
    for the node's GPU (its path and time), so a new calibration shows without a restart."""
    if profile != "measured":
        return profile
    try:
        path = measured_path(load_node(node).gpu)
        return f"{path}:{path.stat().st_mtime_ns}"
    except (ValueError, OSError):
        return profile  # the estimate says why there is none

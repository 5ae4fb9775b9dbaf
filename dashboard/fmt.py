"""Numbers and labels as people read them: one unit vocabulary for the whole dashboard.

Bytes are decimal GB/TB (1e9, 1e12: the units GPU datasheets sell HBM in, so "80 GB" reads as the H800's
label does); times step up from ms to s, min, h and days; column names come from the simulator in
snake_case and are shown as words.
"""

from __future__ import annotations

import math

from hwmodels.units import SECONDS_PER_DAY, SECONDS_PER_HOUR

GB = 1e9
SECONDS_PER_MINUTE = 60.0
# Words that keep their capitals when a snake_case name becomes a label.
_UPPER = {
    "gpu", "gpus", "hbm", "kv", "mla", "gqa", "mha", "ep", "tp", "pp", "dp", "cp", "mfu", "usd", "tpot", "ttft",
    "nic", "ib", "nvlink", "fp8", "bf16", "fp4", "moe", "mtp", "pcie", "zero", "id",
}  # fmt: skip
_SPELLED = {"gpus": "GPUs", "zero": "ZeRO", "nvlink": "NVLink"}
_UNITS = {"s": "(s)", "gb": "(GB)", "ms": "(ms)", "usd": "($)"}  # spelled so only as a name's last word


def gb(value_bytes: float, digits: int = 1) -> str:
    """Bytes as decimal GB ("13.8 GB"), or TB past 10,000 GB."""
    if not math.isfinite(value_bytes):
        return "-"
    if abs(value_bytes) >= 1e4 * GB:
        return f"{value_bytes / 1e12:,.{digits}f} TB"
    return f"{value_bytes / GB:,.{digits}f} GB"


def duration(seconds: float) -> str:
    """A time in the unit that keeps it between 1 and 1,000: "850 ms", "17.2 s", "12 min", "3.4 h", "54 days"."""
    if not math.isfinite(seconds):
        return "-"
    s = abs(seconds)
    if s < 1:
        return f"{seconds * 1e3:,.3g} ms"
    if s < 2 * SECONDS_PER_MINUTE:
        return f"{seconds:,.3g} s" if s < 100 else f"{seconds:,.0f} s"
    if s < 2 * SECONDS_PER_HOUR:
        return f"{seconds / SECONDS_PER_MINUTE:,.1f} min"
    if s < 2 * SECONDS_PER_DAY:
        return f"{seconds / SECONDS_PER_HOUR:,.1f} h"
    return f"{seconds / SECONDS_PER_DAY:,.1f} days"


def usd(value: float) -> str:
    """Dollars: "$5.61M", "$48.2K", "$2.00"."""
    if not math.isfinite(value):
        return "-"
    if abs(value) >= 1e6:
        return f"${value / 1e6:,.2f}M"
    if abs(value) >= 1e4:
        return f"${value / 1e3:,.1f}K"
    return f"${value:,.2f}"


def label(name: str) -> str:
    """A snake_case column or key as words: "gpu_hours" -> "GPU hours", "step_time_s" -> "Step time (s)"."""
    words = [w for w in name.split("_") if w]
    out = []
    for i, w in enumerate(words):
        if w in _UNITS and i == len(words) - 1 and i > 0:
            out.append(_UNITS[w])
        elif w in _SPELLED:
            out.append(_SPELLED[w])
        elif w in _UPPER:
            out.append(w.upper())
        else:
            out.append(w.capitalize() if i == 0 else w)
    return " ".join(out)


def signed_percent(fraction: float) -> str:
    """+4.2% / -13.5%: a change or an error against a reference."""
    return "-" if not math.isfinite(fraction) else f"{fraction:+.1%}"

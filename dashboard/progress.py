"""A progress bar with the time left, fed by a simulator's `progress(done, total, what)` callback, and a small
cache for results computed under one (st.cache_data cannot hold a function that draws outside itself).

The time left is the rate so far carried to the end: elapsed × (total − done) / done, for the work named by
`what` (each kind of work has its own rate: a network solve and a SimPy op do not take the same time).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import streamlit as st

from dashboard.fmt import duration

T = TypeVar("T")
MIN_ELAPSED_S = 0.2  # no estimate before this much of a kind of work has run: too few samples of the rate


def remaining_s(done: int, total: int, elapsed_s: float) -> float | None:
    """Seconds left if the rest runs at the rate so far; None before there is a rate to carry."""
    if done <= 0 or total <= 0 or elapsed_s < MIN_ELAPSED_S:
        return None
    return elapsed_s * max(total - done, 0) / done


def progress_text(label: str, done: int, total: int, elapsed_s: float) -> str:
    """ "Simulating the pipeline's ops: 4,000 of 10,098, about 1.2 s left"."""
    text = f"{label}: {done:,} of {total:,}"
    left = remaining_s(done, total, elapsed_s)
    return text if left is None or done >= total else f"{text}, about {duration(left)} left"


class Bar:
    """An st.progress bar as a `progress(done, total, what)` callback; `labels` names each `what` for people."""

    def __init__(self, labels: dict[str, str], start: str = "Starting…") -> None:
        self.labels = labels
        self.bar = st.progress(0.0, text=start)
        self.what: str | None = None
        self.since = time.monotonic()

    def __call__(self, done: int, total: int, what: str) -> None:
        if what != self.what:  # a new kind of work: its own rate from now
            self.what, self.since = what, time.monotonic()
        label = self.labels.get(what, what)
        self.bar.progress(min(max(done / total, 0.0), 1.0) if total else 1.0,
                          text=progress_text(label, done, total, time.monotonic() - self.since))  # fmt: skip

    def clear(self) -> None:
        self.bar.empty()


@st.cache_resource
def _store() -> tuple[OrderedDict[Hashable, Any], threading.Lock]:
    return OrderedDict(), threading.Lock()


def remembered(key: Hashable, compute: Callable[[], T], max_entries: int = 32) -> T:
    """`compute()`'s result, kept for later runs and sessions under `key` (the least recently used goes past
    `max_entries`). Callers must not mutate what it returns: it is shared."""
    results, lock = _store()
    with lock:
        if key in results:
            results.move_to_end(key)
            return results[key]
    value = compute()  # outside the lock: a long simulation must not hold other sessions up
    with lock:
        results[key] = value
        while len(results) > max_entries:
            results.popitem(last=False)
    return value

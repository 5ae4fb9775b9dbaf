"""A hang detector for the fuzz and bad-input tests: a case that gets no answer in time fails.

Not a speed check (tests never assert on speed): the limits are many times the slowest case's time, and a
hang (a NaN that never finishes, a FIFO read forever) is the only way to reach them.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_hang(seconds: int = 60) -> Iterator[None]:
    """Fail the test with AssertionError if the body has not returned within `seconds` (SIGALRM)."""

    def fail(*_):
        raise AssertionError(f"no answer within {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)

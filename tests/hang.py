"""A hang detector for the fuzz and bad-input tests: a case that gets no answer in time fails; and the
fuzzes' contract, an answer or a one-line ValueError.

Not a speed check (tests never assert on speed): the limits are many times the slowest case's time, and a
hang (a NaN that never finishes, a FIFO read forever) is the only way to reach them.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


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


def answer_or_one_line_error(call: Callable[..., T], *args: object, seconds: int = 60) -> T | None:
    """`call(*args)` within `seconds`, or None when it refused its input with a one-line ValueError: the
    contract every fuzz of a parser checks (an answer or one clear line; no other exception, no hang)."""
    with no_hang(seconds):
        try:
            return call(*args)
        except ValueError as err:
            assert "\n" not in str(err), str(err)
            return None

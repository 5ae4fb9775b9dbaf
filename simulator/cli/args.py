"""argparse types for the `v3sim` options: every number finite and in range, every name non-empty.

A value refused here never reaches the models: argparse prints one line naming the option and exits 2.
"""

from __future__ import annotations

import argparse
import math

from simulator import limits

SUFFIXES = {"k": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
MAX_NAME_CHARS = 4096  # a catalog name, a preset slug or a file path


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def number(text: str) -> float:
    """A finite number."""
    return _float(text)


def nonnegative(text: str) -> float:
    """A finite number >= 0."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def positive_number(text: str) -> float:
    """A finite number > 0."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def fraction(text: str) -> float:
    """A share in [0, 1]."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def fractions(text: str) -> tuple[float, ...]:
    """One share in [0, 1], or several separated by commas ("0.85,0.7")."""
    values = tuple(fraction(part.strip()) for part in text.split(","))
    if not values or len(values) > 16:
        raise argparse.ArgumentTypeError(f"{text}: give 1 to 16 shares separated by commas")
    return values


def positive(text: str) -> int:
    """A positive integer."""
    value = integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def positive_up_to(limit: int, what: str = ""):
    """A positive integer of at most `limit` (`what`, if given, says why the limit is there)."""

    def parse(text: str) -> int:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{value:,} is over the limit of {limit:,}{what}")
        return value

    parse.__name__ = f"positive integer <= {limit}"
    return parse


def integer(text: str) -> int:
    """An integer (no more than 18 digits: larger is never a size or a seed anyone means)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if abs(value) >= 10**18:
        raise argparse.ArgumentTypeError(f"{text} is too large")
    return value


def count(text: str) -> float:
    """A positive count with an optional suffix: 14.8T, 469B, 63M, 4k."""
    scale = SUFFIXES.get(text[-1:], 1.0)
    try:
        value = _float(text[:-1] if text[-1:] in SUFFIXES else text) * scale
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number (suffixes k, M, B/G, T)") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite count")
    return value


def whole_count(text: str) -> int:
    """A positive whole count with an optional suffix (63M)."""
    value = count(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text} is not a whole number")
    return int(value)


def name(text: str) -> str:
    """A catalog name, preset slug or path: not empty (an empty name never means 'the default')."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name; leave the option out for its default")
    if len(text) > MAX_NAME_CHARS or "\0" in text:
        raise argparse.ArgumentTypeError(f"not a name or a path ({len(text):,} characters)")
    return text


gpu_count = positive_up_to(limits.MAX_GPUS, " GPUs")
degree = positive_up_to(limits.MAX_DEGREE, " (a parallel degree)")
seq_tokens = positive_up_to(limits.MAX_SEQ_TOKENS, " tokens per sequence")
sequences = positive_up_to(limits.MAX_SEQUENCES, " sequences")
radix = positive_up_to(limits.MAX_RADIX, " switch ports")
planes = positive_up_to(limits.MAX_PLANES, " planes")
endpoints = positive_up_to(limits.MAX_ENDPOINTS, " endpoints")

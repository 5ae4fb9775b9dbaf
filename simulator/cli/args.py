"""argparse types for the `v3sim` options: every number finite and in range, every name non-empty.

Every numeric option reads numbers through one parser, `quantity`: plain (4096, 0.85, 2.5e12) or with a
suffix, decimal (k or K = 1e3, M = 1e6, G or B = 1e9, T = 1e12: `15T`, `14.8T`, `128k`) or binary (Ki, Mi,
Gi, Ti = 2**10 ... 2**40: `64Ki`, `1Mi`). An integer option refuses a value that is not whole once the
suffix is applied. A value refused here never reaches the models: argparse prints one line naming the
option and exits 2.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from simulator import limits

DECIMAL_SUFFIXES = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9, "T": 10**12}
BINARY_SUFFIXES = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
SUFFIXES = {**BINARY_SUFFIXES, **DECIMAL_SUFFIXES}
FORMS = "e.g. 4096, 2.5e12, 128k, 14.8T, 64Ki (k/K M G/B T decimal; Ki Mi Gi Ti binary)"
INTEGER_FORMS = "a whole number, e.g. 4096, 128k (128,000), 64Ki (65,536) or 1M"
MAX_NAME_CHARS = 4096  # a catalog name, a preset slug or a file path
MAX_NUMBER_CHARS = 64  # longer is never a number anyone typed
MAX_INTEGER = 10**18  # larger is never a size or a seed anyone means
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")  # ASCII digits only


def quantity(text: str) -> Decimal:
    """`text` as an exact finite number, its suffix applied ('14.8T' -> 14800000000000, '64Ki' -> 65536):
    exact, so that '1.1k' is the whole number 1100 and not 1100.0000000000002."""
    body = text.strip()
    suffix = next((s for s in SUFFIXES if body.endswith(s) and len(body) > len(s)), "")
    digits = body[: len(body) - len(suffix)].rstrip()
    if body.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if len(body) > MAX_NUMBER_CHARS or not _NUMBER.fullmatch(digits):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number ({FORMS})")
    try:
        return Decimal(digits) * SUFFIXES.get(suffix, 1)
    except InvalidOperation:  # the pattern lets only numbers through; kept for safety
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number ({FORMS})") from None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:39] + "…")


def number(text: str) -> float:
    """A finite number, suffixes allowed."""
    value = float(quantity(text))
    if abs(value) > 1e300:  # float() of a huge Decimal is an infinity
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a finite number")
    return value


def nonnegative(text: str) -> float:
    """A finite number >= 0."""
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def positive_number(text: str) -> float:
    """A finite number > 0."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def fraction(text: str) -> float:
    """A share in [0, 1]."""
    value = number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def fractions(text: str) -> tuple[float, ...]:
    """One share in [0, 1], or several separated by commas ("0.85,0.7")."""
    values = tuple(fraction(part.strip()) for part in text.split(","))
    if not values or len(values) > 16:
        raise argparse.ArgumentTypeError(f"{text}: give 1 to 16 shares separated by commas")
    return values


def batch_sizes(text: str) -> tuple[int, ...]:
    """Increasing batch sizes separated by commas ("1,2,4,8,16"), each a positive integer."""
    values = tuple(sequences(part.strip()) for part in text.split(","))
    if len(values) > 64 or list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"{_shown(text)}: give up to 64 increasing batch sizes, e.g. 1,2,4,8")
    return values


def integer(text: str) -> int:
    """A whole number, suffixes allowed ('128k', '64Ki'); no more than 18 digits."""
    value = quantity(text)
    if abs(value) >= MAX_INTEGER:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is too large")
    if value != value.to_integral_value():
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not {INTEGER_FORMS}")
    return int(value)


def positive(text: str) -> int:
    """A positive integer."""
    value = integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def positive_up_to(limit: int, what: str = "") -> Callable[[str], int]:
    """A positive integer of at most `limit` (`what`, if given, says why the limit is there)."""

    def parse(text: str) -> int:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{value:,} is over the limit of {limit:,}{what}")
        return value

    parse.__name__ = f"positive integer <= {limit}"
    return parse


def count(text: str) -> float:
    """A positive finite count, suffixes allowed: 14.8T, 469B, 63M, 4k."""
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite count")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """Whole numbers >= 0 separated by commas, e.g. 4,4,4,1 (at most limits.MAX_DEGREE of them)."""
    parts = text.split(",")
    if len(text) > MAX_NAME_CHARS or len(parts) > limits.MAX_DEGREE:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is too long")
    values = tuple(integer(p.strip()) for p in parts)
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{_shown(text)} must be whole numbers >= 0, e.g. 4,4,4,1")
    return values


def whole_count(text: str) -> int:
    """A positive whole count, suffixes allowed (63M, 64Mi)."""
    value = integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite count")
    return value


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

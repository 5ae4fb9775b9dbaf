"""Request length distributions for the serving event model, written as text and parsed as data.

The accepted forms (`v3sim serve --input-len DIST --output-len DIST`):

    N                     every request N tokens
    uniform:LO-HI         whole numbers LO..HI, each as likely
    exp:MEAN              exponential of mean MEAN (rounded to whole tokens)
    lognormal:MEDIAN,SIGMA  MEDIAN x exp(SIGMA x a standard normal), as measured chat lengths are shaped
    trace:FILE.csv        drawn (with replacement) from one column of lengths in a file

Nothing is evaluated: each form is matched by a regular expression and its numbers read with int/float;
a trace is read through `hwmodels.files.read_text` (a regular file, at most MAX_TRACE_BYTES), one whole
number per line (an optional column name first). Every drawn length is clipped to 1..MAX_SEQ_TOKENS.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from hwmodels.files import clean_text, read_text
from simulator.limits import MAX_SEQ_TOKENS

MAX_TRACE_BYTES = 16 << 20  # 16 MiB: about two million lengths
MAX_SIGMA = 5.0  # a log-normal wider than this is a typo (its P99 is 10^5 x the median)
FORMS = "N, uniform:LO-HI, exp:MEAN, lognormal:MEDIAN,SIGMA or trace:FILE.csv"
_NUMBER = r"([0-9]{1,12}(?:\.[0-9]{1,12})?)"  # ASCII digits only (\d would take any script's)
_PATTERNS = {
    "fixed": re.compile(r"([0-9]{1,12})"),
    "uniform": re.compile(r"uniform:([0-9]{1,12})-([0-9]{1,12})"),
    "exp": re.compile(rf"exp:{_NUMBER}"),
    "lognormal": re.compile(rf"lognormal:{_NUMBER},{_NUMBER}"),
}
_LINE = re.compile(r"[0-9]{1,9}")
_HEADER = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]{0,63}")  # a column name


@dataclass(frozen=True, slots=True, eq=False)
class Lengths:
    """A length distribution: its kind, its parameters (uniform: lo, hi; exp: mean; lognormal: median,
    sigma; fixed: n), the trace's lengths, and the text it was written as."""

    kind: str
    params: tuple[float, ...]
    text: str
    trace: np.ndarray | None = None

    @property
    def mean_tokens(self) -> float:
        """The distribution's mean before rounding and clipping (the trace's: its lengths' mean)."""
        p = self.params
        if self.kind == "uniform":
            return (p[0] + p[1]) / 2
        if self.kind == "lognormal":
            return p[0] * math.exp(p[1] ** 2 / 2)
        if self.kind == "trace":
            assert self.trace is not None
            return float(self.trace.mean())
        return p[0]  # fixed, exp

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` whole lengths drawn with `rng`, clipped to 1..MAX_SEQ_TOKENS."""
        p = self.params
        if self.kind == "fixed":
            drawn = np.full(n, p[0])
        elif self.kind == "uniform":
            drawn = rng.integers(int(p[0]), int(p[1]) + 1, size=n).astype(float)
        elif self.kind == "exp":
            drawn = np.rint(rng.exponential(p[0], size=n))
        elif self.kind == "lognormal":
            drawn = np.rint(p[0] * np.exp(p[1] * rng.standard_normal(n)))
        else:
            assert self.trace is not None
            drawn = rng.choice(self.trace, size=n).astype(float)
        return np.clip(drawn, 1, MAX_SEQ_TOKENS).astype(np.int64)


def parse_lengths(text: str) -> Lengths:
    """The distribution `text` names, or a one-line ValueError naming the accepted forms."""
    text = text.strip()
    shown = clean_text(repr(text), 60)
    if text.startswith("trace:"):
        return _trace(text)
    for kind, pattern in _PATTERNS.items():
        match = pattern.fullmatch(text)
        if match:
            return _checked(kind, tuple(float(g) for g in match.groups()), text)
    raise ValueError(f"length {shown} is not a distribution; use {FORMS}")


def _checked(kind: str, params: tuple[float, ...], text: str) -> Lengths:
    """The distribution, its numbers in range."""
    shown = clean_text(repr(text), 60)
    if kind == "lognormal" and params[1] > MAX_SIGMA:
        raise ValueError(f"length {shown}: sigma must be at most {MAX_SIGMA:g}")
    counts = params[:1] if kind == "lognormal" else params  # sigma is not a count
    if not all(1 <= x <= MAX_SEQ_TOKENS for x in counts):
        raise ValueError(f"length {shown}: token counts must be from 1 to {MAX_SEQ_TOKENS:,}")
    if kind == "uniform" and params[0] > params[1]:
        raise ValueError(f"length {shown}: LO must not exceed HI")
    return Lengths(kind, params, text)


def _trace(text: str) -> Lengths:
    """A trace file: one whole number of tokens per line, an optional header (a column name) first."""
    path = text.removeprefix("trace:")
    lines = [line.strip() for line in read_text(path, "length trace", MAX_TRACE_BYTES).splitlines()]
    lines = [line for line in lines if line]
    if lines and _HEADER.fullmatch(lines[0]):
        lines = lines[1:]
    bad = next((i for i, line in enumerate(lines) if not _LINE.fullmatch(line)), None)
    if bad is not None:
        raise ValueError(
            f"length trace {clean_text(path, 80)}: {clean_text(repr(lines[bad]), 40)} is not a whole number of "
            f"tokens; give one column of lengths"
        )
    values = np.array([int(line) for line in lines], dtype=np.int64)
    if not len(values) or values.min() < 1 or values.max() > MAX_SEQ_TOKENS:
        raise ValueError(
            f"length trace {clean_text(path, 80)} needs at least one length, each from 1 to {MAX_SEQ_TOKENS:,}"
        )
    return Lengths("trace", (), clean_text(text, 200), values)

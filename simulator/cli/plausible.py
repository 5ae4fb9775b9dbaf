"""Inputs that parse but cannot be what the user meant, refused with the likely fix.

`--tokens 15` is 15 tokens: a run shorter than one step, priced at 0 GPU-hours. A context beyond what the
model's positions reach describes no real deployment. Each is one ValueError (exit 2) naming the flag and
the fix ("did you mean 15T?"), never a quiet answer to the wrong question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator import limits

if TYPE_CHECKING:
    from workloads.spec import ModelSpec

_SCALES = {"T": 1e12, "B": 1e9, "M": 1e6, "k": 1e3}


def did_you_mean(value: float, least: float, most: float, suffixes: str = "TBMk") -> str:
    """'; did you mean 15T?' for the first suffix of `suffixes` (in order) that puts `value` in [least, most],
    else '' (also for a value of 1,000 or more: one typed with a suffix already, or meant as it is)."""
    if value >= 1000:
        return ""
    for suffix in suffixes:
        if least <= value * _SCALES[suffix] <= most:
            return f"; did you mean {value:g}{suffix}?"
    return ""


def check_run_length(tokens: float, least_tokens: int, tokens_from: str, least: str) -> None:
    """Refuse a token budget under one step (`least`: what `least_tokens` is, e.g. "one step's global batch
    of 62,914,560 tokens (--global-batch-tokens)"; `tokens_from`: where the budget came from, '--tokens')."""
    if tokens >= least_tokens:
        return
    hint = did_you_mean(tokens, least_tokens, limits.MAX_TRAIN_TOKENS, "TB")
    raise ValueError(
        f"{tokens_from} {_count(tokens)} is fewer tokens than {least}: the run would end before its first step"
        f"{hint or '; give the tokens to train, e.g. 14.8T'}"
    )


def check_batch(batch_tokens: int, seq_len: int, batch_from: str) -> None:
    """Refuse a global batch under one sequence (`--global-batch-tokens 63` for 63M)."""
    if batch_tokens >= seq_len:
        return
    hint = did_you_mean(batch_tokens, seq_len, limits.MAX_BATCH_TOKENS, "MB")
    raise ValueError(
        f"{batch_from} {batch_tokens:,} is less than one {seq_len:,}-token sequence{hint or ''} "
        "(a global batch counts tokens: V3's is 15,360 x 4,096 = 62,914,560, i.e. 60Mi)"
    )


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,g}"


def check_context(spec: ModelSpec, tokens: int, flag: str) -> None:
    """Refuse `tokens` per sequence beyond what the model's positions reach (its config.json's
    max_position_embeddings; a config that states none is not checked)."""
    most = spec.max_position_embeddings
    if most and tokens > most:
        raise ValueError(
            f"{flag} {tokens:,} is beyond {spec.name}'s {most:,}-token context (max_position_embeddings in its "
            f"config.json); give at most {most}, or a config.json of your own that allows more"
        )

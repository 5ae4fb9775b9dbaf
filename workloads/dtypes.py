"""Bytes per element of the number formats the counts are asked in."""

from __future__ import annotations

DTYPE_BYTES: dict[str, float] = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of `dtype` (fp32, bf16, fp16, fp8)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPE_BYTES)}") from None

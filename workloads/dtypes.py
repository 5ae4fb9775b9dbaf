"""Bytes per element of the number formats the counts are asked in."""

from __future__ import annotations

# fp4 is NVIDIA's NVFP4 as weights are stored: 4-bit values and one fp8 (E4M3) scale per 16 of them (the
# per-tensor fp32 scale is negligible): 0.5 + 1/16 bytes (NVIDIA, "Introducing NVFP4", 2025). fp8 weights'
# 128x128 block scales are counted apart (workloads.memory), as V3 stores them.
DTYPE_BYTES: dict[str, float] = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "fp4": 0.5 + 1 / 16}
WEIGHT_DTYPES = tuple(DTYPE_BYTES)  # what serving weights may be stored in
KV_DTYPES = ("fp32", "bf16", "fp16", "fp8")  # caches and payloads: no fp4 source here
QUANTIZED_WEIGHTS = ("fp8", "fp4")  # the GEMM weights quantized; embedding, head, norms and router stay bf16
# What quantized weights' GEMMs take as activations and compute in: the weights' own (W8A8, W4A4), fp8 under fp4
# weights (W4A8: MXFP8 x MXFP4 on Blackwell runs at the FP8 rate), or bf16 (weight-only: W8A16, W4A16).
ACTIVATION_DTYPES = ("bf16", "fp8", "fp4")


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of `dtype` (fp32, bf16, fp16, fp8; fp4 with its block scales)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPE_BYTES)}") from None

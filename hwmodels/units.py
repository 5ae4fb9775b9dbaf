"""Units, once: v3sim computes in SI base units (seconds, bytes, FLOPs, bytes/s, FLOP/s, dollars) and
converts at the edges, with these names, never with a bare 3600 or 2**30 in a formula."""

from __future__ import annotations

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0

KB = 1e3  # decimal, as datasheets and ISCA's KV table ("KB" = 1000 bytes) count
MB = 1e6
GB = 1e9
TB = 1e12
GIB = 2.0**30  # GPU memory as tools report it
MIB = 2.0**20  # nvidia-smi's memory.total unit

GIGA = 1e9  # Gbit/s, GFLOPs
TERA = 1e12  # TFLOPS, TB/s
BITS_PER_BYTE = 8

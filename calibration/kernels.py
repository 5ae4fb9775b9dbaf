"""Kernel-class measurements for the FP8 training recipe: GEMM scalings and the element-wise kernels around them.

`calibration.bench` times the model's GEMMs and attention for a fitted profile. This module measures what
that profile cannot see, one kernel class at a time, as issue 20 asks ("price every operation from
kernel-level sources"):

- FP8 GEMMs of V3's shapes under each scaling torch offers here (tensorwise, rowwise, and DeepSeek's
  1x128 activation x 128x128 weight blocks), in forward shape (m = tokens) and weight-gradient shape
  (the reduction runs over the tokens);
- the element-wise kernels of the FP8 recipe (1x128 activation casts, 128x1 cast-and-transpose of wgrad
  operands, RMSNorm, SwiGLU, SwiGLU + cast, token permute, dequant, top-k combine), each eager and fused
  by `torch.compile`, as achieved bytes per second against the device's copy rate and its datasheet;
- a large device-to-device copy, the ceiling those rates are read against.

Each row carries the bytes and FLOPs counted for it, so a rate can be carried to another die of the same
architecture as a fraction of its datasheet figure. Run on a CUDA GPU:
`v3sim calibrate kernels --out kernels.json` (on CPU, `--small` is a smoke test of the code only). What a
build of torch cannot run (a scaling cuBLAS refuses, a kernel the compiler fails on) is skipped with a note.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
BLOCK = 128
MIB = 2**20


@dataclass(frozen=True, slots=True)
class Row:
    """One timed kernel: what it is, its counted work, and what it achieved."""

    kernel_class: str
    name: str
    shape: str
    how: str
    time_s: float
    flops: float
    bytes: float
    tflops: float
    gbytes_per_s: float


def _time_s(fn: Callable[[], object], dev: torch.device, flush: torch.Tensor | None, repeats: int = 20) -> float:
    """Median seconds of one call after 3 warm-ups: CUDA events with L2 flushed before each, else perf_counter."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if dev.type == "cuda":
            if flush is not None:
                flush.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _row(kernel_class, name, shape, how, time_s, flops, nbytes) -> Row:
    return Row(kernel_class, name, shape, how, time_s, flops, nbytes, flops / time_s / 1e12, nbytes / time_s / 1e9)


# ---- FP8 GEMMs ------------------------------------------------------------------------------------------


def _quant_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (r, c) -> fp8 with one fp32 scale per 1x128 block along c: (r, c/128) scales."""
    r, c = x.shape
    blocks = x.float().view(r, c // BLOCK, BLOCK)
    scale = blocks.abs().amax(-1).clamp(min=1e-12) / FP8_MAX
    return (blocks / scale[..., None]).to(FP8).view(r, c), scale


def _quant_tiles(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w (n, k) -> fp8 with one fp32 scale per 128x128 tile: (n/128, k/128) scales."""
    n, k = w.shape
    tiles = w.float().view(n // BLOCK, BLOCK, k // BLOCK, BLOCK)
    scale = tiles.abs().amax((1, 3)).clamp(min=1e-12) / FP8_MAX
    return (tiles / scale[:, None, :, None]).to(FP8).view(n, k), scale


def _scaled_mm_variants(a_bf16: torch.Tensor, w_bf16: torch.Tensor) -> dict[str, Callable[[], object]]:
    """a (m, k) @ w (n, k)^T in FP8 under each scaling that runs here; the names say which."""
    F = torch.nn.functional
    m, _ = a_bf16.shape
    n, _ = w_bf16.shape
    a8, w8 = a_bf16.to(FP8), w_bf16.to(FP8)
    one = torch.ones((), device=a_bf16.device)
    out: dict[str, Callable[[], object]] = {
        "tensorwise": lambda: torch._scaled_mm(a8, w8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16),
    }
    ra, rb = torch.ones(m, 1, device=a8.device), torch.ones(1, n, device=a8.device)
    out["rowwise"] = lambda: torch._scaled_mm(a8, w8.t(), scale_a=ra, scale_b=rb, out_dtype=torch.bfloat16)
    if hasattr(F, "scaled_mm") and hasattr(F, "ScalingType"):
        qa, sa = _quant_rows(a_bf16)
        qw, sw = _quant_tiles(w_bf16)
        sa_outer = sa.t().contiguous().t()  # cuBLAS wants the 1x128 scales outer-dim-major
        st = F.ScalingType
        out["blockwise 1x128 x 128x128"] = lambda: F.scaled_mm(
            qa, qw.t(), sa_outer, st.BlockWise1x128, sw.t(), st.BlockWise128x128, output_dtype=torch.bfloat16
        )
        qw1, sw1 = _quant_rows(w_bf16)
        out["blockwise 1x128 x 1x128"] = lambda: F.scaled_mm(
            qa, qw1.t(), sa_outer, st.BlockWise1x128, sw1.t().contiguous().t().t(), st.BlockWise1x128,
            output_dtype=torch.bfloat16,
        )  # fmt: skip
    return out


# V3's GEMMs (n, k) per layer: attention q/kv up-projections and output, expert up (gate+up) and down.
V3_GEMMS = {
    "q_b_proj": (24576, 1536),
    "kv_b_proj": (32768, 512),
    "o_proj": (7168, 16384),
    "expert_up": (4096, 7168),
    "expert_down": (7168, 2048),
}


def gemm_rows(dev: torch.device, flush, small: bool, skipped: list[str]) -> list[Row]:
    rows = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    tokens = (256,) if small else (1024, 4096, 8192)
    div = 16 if small else 1
    for name, (n, k) in V3_GEMMS.items():
        n, k = (max(BLOCK, round(d / div / BLOCK) * BLOCK) for d in (n, k))  # 128-blocks stay whole
        for m in tokens:
            # forward / dgrad shape: (m tokens x k) @ (k x n); wgrad shape: (n x m) @ (m x k), reduce over tokens.
            for phase, (mm, nn, kk) in (("forward", (m, n, k)), ("wgrad", (n, k, m))):
                a = torch.randn(mm, kk, generator=gen).to(dev, torch.bfloat16)
                w = torch.randn(nn, kk, generator=gen).to(dev, torch.bfloat16)
                flops = 2.0 * mm * nn * kk
                bf = torch.empty(mm, nn, dtype=torch.bfloat16, device=dev)
                # mypy cannot type a lambda with default arguments (python/mypy#15459): hence the ignore
                t = _time_s(lambda a=a, w=w, bf=bf: torch.mm(a, w.t(), out=bf), dev, flush)  # type: ignore[misc]
                nbytes = 2.0 * (mm * kk + nn * kk + mm * nn)
                rows.append(_row(f"gemm_bf16_{phase}", name, f"{mm}x{nn}x{kk}", "torch.mm", t, flops, nbytes))
                try:
                    variants = _scaled_mm_variants(a, w)
                except (RuntimeError, TypeError, ValueError) as err:
                    skipped.append(f"fp8 {name} {mm}x{nn}x{kk}: {_first_line(err)}")
                    variants = {}
                for how, fn in variants.items():
                    try:
                        t = _time_s(fn, dev, flush)
                    except (RuntimeError, TypeError, ValueError) as err:  # a scaling this build lacks
                        skipped.append(f"fp8 {how} {name} {mm}x{nn}x{kk}: {_first_line(err)}")
                        continue
                    nbytes = 1.0 * (mm * kk + nn * kk) + 2.0 * mm * nn
                    rows.append(_row(f"gemm_fp8_{phase}", name, f"{mm}x{nn}x{kk}", how, t, flops, nbytes))
                del a, w, bf
    return rows


# ---- element-wise kernels of the FP8 recipe --------------------------------------------------------------


def _cast_1x128(x):
    r, c = x.shape
    b = x.float().view(r, c // BLOCK, BLOCK)
    s = b.abs().amax(-1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    return (b / s).to(FP8).view(r, c), s.view(r, c // BLOCK)


def _cast_transpose_128x1(x):
    r, c = x.shape
    b = x.float().view(r // BLOCK, BLOCK, c)
    s = b.abs().amax(1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    return (b / s).to(FP8).view(r, c).t().contiguous(), s.view(r // BLOCK, c)


def _rmsnorm(x, w):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w


def _swiglu(h):
    g, u = h.chunk(2, dim=-1)
    return torch.nn.functional.silu(g) * u


def _swiglu_cast(h):
    return _cast_1x128(_swiglu(h))


def _permute(x, idx):
    return x.index_select(0, idx)


def _dequant(q, s):
    r, c = q.shape
    return (q.float().view(r, c // BLOCK, BLOCK) * s[..., None]).to(torch.bfloat16).view(r, c)


def _combine(y, weights):
    return (y.float() * weights[..., None]).sum(1).to(torch.bfloat16)


def elementwise_rows(dev: torch.device, flush, small: bool, skipped: list[str]) -> list[Row]:
    t, h, inter, topk = (512, 1024, 256, 8) if small else (8192, 7168, 2048, 8)
    routed = t * topk  # token copies after dispatch on one rank, at V3's top-8 if every copy stays local
    x = torch.randn(t, h, device=dev, dtype=torch.bfloat16)
    w = torch.randn(h, device=dev, dtype=torch.bfloat16)
    hid = torch.randn(routed // 4, 2 * inter, device=dev, dtype=torch.bfloat16)
    q, s = _cast_1x128(x)
    idx = torch.randint(0, t, (routed,), device=dev)
    y = torch.randn(t, topk, h, device=dev, dtype=torch.bfloat16)
    gates = torch.rand(t, topk, device=dev)
    n = routed // 4
    cases: list[tuple[str, str, Callable[..., Any], tuple[torch.Tensor, ...], float]]
    cases = [  # (class, name, fn, args, bytes read + written)
        ("cast", "act cast 1x128 (bf16->fp8)", _cast_1x128, (x,), 2 * t * h + t * h + 4 * t * h / BLOCK),
        ("cast_transpose", "wgrad cast 128x1 + transpose", _cast_transpose_128x1, (x,),
         2 * t * h + t * h + 4 * t * h / BLOCK),
        ("norm", "RMSNorm", _rmsnorm, (x, w), 4 * t * h),
        ("swiglu", "SwiGLU", _swiglu, (hid,), 4 * n * inter + 2 * n * inter),
        ("swiglu_cast", "SwiGLU + cast 1x128", _swiglu_cast, (hid,), 4 * n * inter + n * inter + 4 * n * inter / BLOCK),
        ("permute", "token permute (gather)", _permute, (x, idx), 4 * routed * h),
        ("dequant", "dequant 1x128 (fp8->bf16)", _dequant, (q, s), t * h + 4 * t * h / BLOCK + 2 * t * h),
        ("combine", "top-k weighted combine", _combine, (y, gates), 2 * t * topk * h + 4 * t * topk + 2 * t * h),
    ]  # fmt: skip
    rows = []
    for klass, name, fn, args, nbytes in cases:
        shape = "x".join(str(d) for d in args[0].shape)
        for how, f in (("eager", fn), ("torch.compile", torch.compile(fn, dynamic=False))):
            try:
                sec = _time_s(lambda f=f, args=args: f(*args), dev, flush)  # type: ignore[misc]  # python/mypy#15459
            except Exception as err:  # a compiler failure must not lose the other rows
                skipped.append(f"{name} {how}: {type(err).__name__}: {_first_line(err)}")
                continue
            rows.append(_row(klass, name, shape, how, sec, 0.0, float(nbytes)))
    return rows


def copy_rows(dev: torch.device, small: bool) -> list[Row]:
    rows = []
    for size in (16 * MIB,) if small else (256 * MIB, 2048 * MIB):
        src = torch.ones(size // 2, dtype=torch.bfloat16, device=dev)
        dst = torch.empty_like(src)
        sec = _time_s(lambda src=src, dst=dst: dst.copy_(src), dev, None)  # type: ignore[misc]  # python/mypy#15459
        rows.append(_row("copy", "device copy", f"{size // MIB} MiB", "tensor copy", sec, 0.0, 2.0 * size))
    return rows


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [""])[0][:160]


def measure(small: bool = False, progress=None) -> dict:
    """Every row on this machine's CUDA GPU (else the CPU): {"info": ..., "rows": [...], "skipped": [...]}."""
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    flush = torch.empty(256 * MIB, dtype=torch.uint8, device=dev) if dev.type == "cuda" else None
    info: dict[str, object] = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "date": time.strftime("%Y-%m-%d"),
        "timer": "CUDA events, 256 MiB L2 flush before each call, median of 20 after 3 warm-ups",
        "small": small,
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info |= {"sms": props.multi_processor_count, "memory_bytes": props.total_memory}
    rows: list[Row] = []
    skipped: list[str] = []
    parts = (
        ("copies", lambda: copy_rows(dev, small)),
        ("element-wise", lambda: elementwise_rows(dev, flush, small, skipped)),
        ("GEMMs", lambda: gemm_rows(dev, flush, small, skipped)),
    )
    for done, (label, part) in enumerate(parts, 1):
        rows += part()
        if progress is not None:
            progress(done, len(parts), label)
    return {"info": info, "rows": [asdict(r) for r in rows], "skipped": skipped}

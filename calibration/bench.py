"""Timing benchmarks: the kernels of a model's layers, timed on this machine's CUDA GPU or CPU.

`benchmark_cases` turns a model's workload into a list of kernels to time:
the GEMMs of `workloads.gemms.layer_gemms` (attention projections, dense MLP,
router, shared expert, and the routed experts as grouped GEMMs over a range of
tokens per expert), their weight-gradient GEMMs (whose reduction runs over
the tokens, so k is small), causal attention forward and backward through
`scaled_dot_product_attention`, and a memory-bandwidth probe (a tensor copy).
`run_benchmarks` times them and returns `hwmodels.profile.Sample`s, from
which `calibration.fit` fits time_s = max(flops / F, bytes / B) + t0 per kernel
class. The case set spans memory/overhead-bound shapes (few tokens) and
compute-bound ones (many tokens) so that fit is well-conditioned.

On CUDA the shapes are the model's own (m from 64 to 8192 tokens). On CPU the
model's n and k are kept and m is shrunk, so a quick run takes seconds; CPU
fp8 (`torch._scaled_mm` runs there as a slow reference kernel) also shrinks
n and k by `CPU_FP8_SHRINK`.

Sample fields per kernel: GEMMs are (m x k) @ (k x n), `groups` times;
attention is batch 1 with `groups` heads, sequence length m, query/key head
dim k and value head dim n; memory is a copy of an m-byte tensor.
"""

from __future__ import annotations

import math
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F

from hwmodels.profile import KERNELS, Sample
from hwmodels.registry import catalog
from workloads.gemms import Gemm, gemm_bytes, layer_gemms
from workloads.registry import load_model
from workloads.spec import ModelSpec

TORCH_DTYPES = {"bf16": torch.bfloat16, "fp8": torch.float8_e4m3fn, "fp32": torch.float32}
IN_BYTES = {"bf16": 2, "fp8": 1, "fp32": 4}  # operand element size
OUT_BYTES = {"bf16": 2, "fp8": 2, "fp32": 4}  # fp8 GEMMs write bf16
# FlashAttention convention (Dao 2023, benchmark_flash_attention.py): backward = 2.5 x forward FLOPs.
ATTENTION_BWD_FLOP_RATIO = 2.5
# CPU fp8 is a reference kernel (~0.1 GFLOP/s on a 2-core Xeon): n and k of the model shrink by this factor.
CPU_FP8_SHRINK = 16
MIB = 2**20
# Bytes zeroed between CUDA repeats so no operand stays in L2 (50 MB on H100, 126 MB on B200).
L2_FLUSH_BYTES = 256 * MIB


@dataclass(frozen=True, slots=True)
class Case:
    """One kernel to time; shape fields as in `Sample` (see the module docstring). `name` is the workload op."""

    kernel: str
    dtype: str
    m: int
    n: int = 0
    k: int = 0
    groups: int = 1
    name: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"case kernel {self.kernel!r}: use one of {', '.join(KERNELS)}")
        if self.dtype not in TORCH_DTYPES:
            raise ValueError(f"case dtype {self.dtype!r}: use one of {', '.join(TORCH_DTYPES)}")
        if self.m <= 0 or self.groups <= 0 or (self.kernel != "memory" and min(self.n, self.k) <= 0):
            raise ValueError(f"case {self.label}: m, n, k and groups must be positive")

    @property
    def label(self) -> str:
        if self.kernel == "memory":
            return f"memory copy {self.m / MIB:g} MiB"
        return f"{self.kernel} {self.dtype} {self.name} m={self.m} n={self.n} k={self.k} g={self.groups}"

    @property
    def flops(self) -> float:
        """FLOPs the kernel does: 2mnk per GEMM; causal attention 2*heads*(d_qk + d_v)*S(S+1)/2 forward."""
        if self.kernel in ("gemm", "grouped_gemm"):
            return 2.0 * self.m * self.n * self.k * self.groups
        if self.kernel == "memory":
            return 0.0
        # QK^T and PV over the S(S+1)/2 unmasked (query, key) pairs, 2 FLOPs per multiply-add.
        fwd = 2.0 * self.groups * (self.k + self.n) * self.m * (self.m + 1) / 2
        return fwd * (ATTENTION_BWD_FLOP_RATIO if self.kernel == "attention_bwd" else 1.0)

    @property
    def bytes(self) -> float:
        """Bytes the kernel must move at least: each operand read once, each result written once."""
        if self.kernel in ("gemm", "grouped_gemm"):
            return gemm_bytes(self.m, self.n, self.k, self.groups, IN_BYTES[self.dtype], OUT_BYTES[self.dtype])
        if self.kernel == "memory":
            return 2.0 * self.m  # read the source, write the copy
        per_dim = self.groups * IN_BYTES[self.dtype] * self.m  # bytes per unit of head dim, all heads
        # forward: q, k, v read, o written; backward: q, k, v, o, dO read, dq, dk, dv written.
        width = 2 * self.k + 2 * self.n if self.kernel == "attention_fwd" else 4 * self.k + 4 * self.n
        return float(per_dim * width)


@dataclass(frozen=True, slots=True)
class _Plan:
    """The sizes a device's case set sweeps."""

    tokens: tuple[int, ...]  # m of the layer GEMMs
    wgrad_tokens: tuple[int, ...]  # tokens reduced over by the weight-gradient GEMMs (their k)
    expert_tokens: tuple[int, ...]  # m per expert of the grouped GEMMs
    max_groups: int
    seq_lens: tuple[int, ...]
    heads: int  # 0 = the model's
    copy_bytes: tuple[int, ...]
    fp32_tokens: tuple[int, ...] = ()
    fp8_tokens: tuple[int, ...] = ()


# Each fitted class gets >= 3 sizes, as its fit has 3 terms. CUDA m spans V3's tokens per GPU and per expert.
_CUDA_FULL = (64, 128, 256, 512, 1024, 2048, 4096, 8192)
PLANS = {
    ("cuda", False): _Plan(_CUDA_FULL, (256, 4096), _CUDA_FULL, 8, (512, 1024, 2048, 4096, 8192), 0,
                           (16 * MIB, 128 * MIB, 1024 * MIB), fp8_tokens=_CUDA_FULL),
    ("cuda", True): _Plan((64, 512, 4096), (1024,), (64, 512, 4096), 8, (512, 2048, 8192), 0,
                          (16 * MIB, 128 * MIB, 1024 * MIB), fp8_tokens=(64, 512, 4096)),
    ("cpu", False): _Plan((16, 64, 256, 1024), (64, 256), (16, 64, 256), 4, (128, 256, 512, 1024), 8,
                          (16 * MIB, 64 * MIB, 256 * MIB), fp32_tokens=(16, 128, 512), fp8_tokens=(16, 64)),
    ("cpu", True): _Plan((16, 256), (64,), (16, 128), 4, (128, 256, 512), 4,
                         (16 * MIB, 64 * MIB, 128 * MIB), fp32_tokens=(16, 128), fp8_tokens=(16,)),
}  # fmt: skip


def default_device() -> str:
    """`cuda` where torch sees a GPU, else `cpu`."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_device(device: str) -> torch.device:
    """The torch device of 'cpu', 'cuda' or 'cuda:N', without checking that it exists."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")
    return torch.device(device)


def open_device(device: str) -> torch.device:
    """The torch device to time on; a ValueError says what to change when it is not there."""
    dev = parse_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: torch {torch.__version__} sees no CUDA GPU; "
                "use the cpu device or a CUDA build of torch"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s); use cuda:0")
    return dev


def catalog_slug(device_name: str) -> str | None:
    """The hwmodels GPU catalog slug a CUDA device name denotes ("NVIDIA H100 80GB HBM3" -> "h100"), or None.

    Matched on whole words, so H20 is not H200 and GB200 is not B200; PCIe and
    NVL boards are other SKUs than the catalog's SXM figures, so they match none.
    """
    words = set(re.split(r"[^a-z0-9]+", device_name.lower()))
    if words & {"pcie", "nvl"}:
        return None
    matches = [slug for slug in catalog("gpus") if slug in words]
    return matches[0] if len(matches) == 1 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_info(device: str) -> dict:
    """Name, torch and CUDA versions, and hwmodels catalog slug (None for a CPU or an unknown GPU) of `device`."""
    dev = open_device(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        slug = catalog_slug(name)
    else:
        name, slug = f"cpu: {_cpu_model()} ({torch.get_num_threads()} threads)", None
    return {
        "name": name,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda or "",
        "catalog_gpu": slug,
    }


@cache
def _runs(op: str, device: torch.device) -> bool:
    """Whether a tiny call of `op` ("scaled_mm", "grouped_mm", "scaled_grouped_mm") works on `device`."""
    g, m, n, k = 2, 16, 32, 64
    try:
        a, w = torch.ones(g, m, k, device=device), torch.ones(g, n, k, device=device)
        if op == "grouped_mm":
            torch._grouped_mm(a.bfloat16(), w.bfloat16().transpose(-2, -1))
            return True
        a8, w8 = a.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
        if op == "scaled_mm":
            one = torch.ones((), device=device)
            torch._scaled_mm(a8[0], w8[0].t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        else:
            sa, sb = torch.ones(g, m, device=device), torch.ones(g, n, device=device)
            torch._scaled_grouped_mm(a8, w8.transpose(-2, -1), sa, sb, out_dtype=torch.bfloat16)
        return True
    except (RuntimeError, TypeError, AttributeError, NotImplementedError):
        return False


def supported_dtypes(device: str) -> tuple[str, ...]:
    """Dtypes to time: bf16; fp32 on CPU; fp8 where `torch._scaled_mm` runs (CUDA capability >= 8.9).

    Without a GPU a CUDA plan assumes an fp8-capable (Hopper-class) device.
    """
    dev = parse_device(device)
    if dev.type == "cpu":
        return ("bf16", "fp32", "fp8") if _runs("scaled_mm", dev) else ("bf16", "fp32")
    if not torch.cuda.is_available():
        return ("bf16", "fp8")
    fp8 = torch.cuda.get_device_capability(dev) >= (8, 9) and _runs("scaled_mm", open_device(device))
    return ("bf16", "fp8") if fp8 else ("bf16",)


def layer_shapes(spec: ModelSpec) -> list[Gemm]:
    """One GEMM per distinct (n, k) of the model's non-expert layers (m=1): attention, dense MLP, router, shared."""
    dense = [g for g in layer_gemms(spec, False, 1) if g.component != "dense_ffn" or spec.num_dense_layers]
    moe = [g for g in layer_gemms(spec, True, 1) if g.component in ("router", "shared_experts")] if spec.is_moe else []
    unique: dict[tuple[float, float], Gemm] = {}
    for g in dense + moe:
        unique.setdefault((g.n, g.k), g)
    return list(unique.values())


def _gemm_cases(shapes: Sequence[Gemm], dtype: str, tokens: Sequence[int], shrink: int = 1) -> list[Case]:
    # Gemm types n and k as float (its m may be fractional); a weight's n and k are ints: hence the casts here.
    def dim(x: float) -> int:  # shrunk, kept a multiple of 16 (fp8 GEMMs need it)
        return cast(int, x) if shrink == 1 else max(16, round(x / shrink / 16) * 16)

    return [
        Case("gemm", dtype, m, dim(g.n), dim(g.k), name=g.name + (f" /{shrink}" if shrink > 1 else ""))
        for g in shapes
        for m in tokens
    ]


def _wgrad_cases(shapes: Sequence[Gemm], dtype: str, tokens: Sequence[int]) -> list[Case]:
    out = []
    for g in shapes:
        for t in tokens:
            w = Gemm(g.name, g.component, t, g.n, g.k).wgrad()
            out.append(Case("gemm", dtype, round(w.m), cast(int, w.n), cast(int, w.k), name=w.name))
    return out


def _expert_cases(spec: ModelSpec, dtype: str, plan: _Plan) -> list[Case]:
    if not spec.is_moe:
        return []
    groups = min(plan.max_groups, spec.n_routed_experts)
    experts = [g for g in layer_gemms(spec, True, 1) if g.component == "routed_experts"]
    return [
        Case("grouped_gemm", dtype, m, cast(int, g.n), cast(int, g.k), groups, g.name)
        for g in experts
        for m in plan.expert_tokens
    ]


def _attention_cases(spec: ModelSpec, plan: _Plan, cuda: bool) -> list[Case]:
    heads, qk, v = plan.heads or spec.num_attention_heads, spec.qk_head_dim, spec.v_dim
    note = ""
    if cuda and v != qk:  # flash SDPA wants one head dim for q, k and v; other back ends are far slower
        note, v = f"v head dim padded {spec.v_dim}->{qk} for flash SDPA", qk
    return [
        Case(kernel, "bf16", s, v, qk, heads, "sdpa causal", note)
        for kernel in ("attention_fwd", "attention_bwd")
        for s in plan.seq_lens
    ]


def benchmark_cases(device: str, quick: bool, model: str = "deepseek-v3") -> list[Case]:
    """The kernels to time for `model` on `device` (a plan only: no GPU is needed to list CUDA cases)."""
    dev = parse_device(device)
    spec = load_model(model)
    plan = PLANS[(dev.type, bool(quick))]
    dtypes = supported_dtypes(device)
    shapes = layer_shapes(spec)
    cases = _gemm_cases(shapes, "bf16", plan.tokens) + _wgrad_cases(shapes, "bf16", plan.wgrad_tokens)
    cases += _expert_cases(spec, "bf16", plan)
    if "fp8" in dtypes and dev.type == "cuda":
        cases += _gemm_cases(shapes, "fp8", plan.fp8_tokens) + _expert_cases(spec, "fp8", plan)
    elif "fp8" in dtypes:
        cases += _gemm_cases(shapes if not quick else shapes[:4], "fp8", plan.fp8_tokens, CPU_FP8_SHRINK)
    if "fp32" in dtypes:
        cases += _gemm_cases(shapes, "fp32", plan.fp32_tokens)
    cases += _attention_cases(spec, plan, dev.type == "cuda")
    return cases + [Case("memory", "bf16", size, name="copy") for size in plan.copy_bytes]


_POOL_ELEMS = 1_000_003  # prime, so tiled rows of any width differ


def _random(shape: Sequence[int], dtype: str, device: torch.device, gen: torch.Generator) -> torch.Tensor:
    """A tensor of N(0, 1) values in `dtype`: a random pool tiled, as randn of a 500 MB weight takes seconds on CPU."""
    numel = math.prod(shape)
    pool = torch.randn(min(numel, _POOL_ELEMS), generator=gen).to(device, TORCH_DTYPES[dtype])
    return pool.repeat(math.ceil(numel / pool.numel()))[:numel].view(*shape)


Kernel = Callable[[], object]


def _gemm_fn(case: Case, dev: torch.device, gen: torch.Generator) -> tuple[Kernel, str]:
    """x @ W^T with W stored (n, k) as nn.Linear does; fp8 through torch._scaled_mm with unit tensorwise scales."""
    a, w = _random((case.m, case.k), case.dtype, dev, gen), _random((case.n, case.k), case.dtype, dev, gen)
    if case.dtype != "fp8":
        out = torch.empty(case.m, case.n, dtype=a.dtype, device=dev)
        return (lambda: torch.mm(a, w.t(), out=out)), "torch.mm"
    one = torch.ones((), device=dev)
    kernel = lambda: torch._scaled_mm(a, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)  # noqa: E731
    return kernel, "torch._scaled_mm e4m3 tensorwise scales, bf16 out"


def _grouped_fn(case: Case, dev: torch.device, gen: torch.Generator) -> tuple[Kernel, str]:
    """`groups` experts' x @ W^T at once: torch._grouped_mm (bf16) or _scaled_grouped_mm (fp8) where they run."""
    g, m, n, k = case.groups, case.m, case.n, case.k
    a, w = _random((g, m, k), case.dtype, dev, gen), _random((g, n, k), case.dtype, dev, gen)
    wt = w.transpose(-2, -1)  # (g, k, n), column-major as the fp8 kernels require
    if case.dtype == "fp8":
        sa, sb = torch.ones(g, m, device=dev), torch.ones(g, n, device=dev)
        if _runs("scaled_grouped_mm", dev):
            return (lambda: torch._scaled_grouped_mm(a, wt, sa, sb, out_dtype=torch.bfloat16)), (
                "torch._scaled_grouped_mm e4m3 rowwise scales"
            )
        one = torch.ones((), device=dev)
        return (
            lambda: [
                torch._scaled_mm(a[i], wt[i], scale_a=one, scale_b=one, out_dtype=torch.bfloat16) for i in range(g)
            ]
        ), "loop of torch._scaled_mm over groups (no _scaled_grouped_mm here)"
    if case.dtype == "bf16" and _runs("grouped_mm", dev):
        return (lambda: torch._grouped_mm(a, wt)), "torch._grouped_mm"
    out = torch.empty(g, m, n, dtype=a.dtype, device=dev)
    return (lambda: torch.bmm(a, wt, out=out)), "torch.bmm"


def _qkv(case: Case, dev: torch.device, gen: torch.Generator) -> list[torch.Tensor]:
    heads, s, qk, v = case.groups, case.m, case.k, case.n
    return [_random((1, heads, s, d), case.dtype, dev, gen) for d in (qk, qk, v)]


def _attention_fwd_fn(case: Case, dev: torch.device, gen: torch.Generator) -> tuple[Kernel, str]:
    q, k, v = _qkv(case, dev, gen)
    return (lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)), "causal SDPA forward"


def _attention_bwd_fn(case: Case, dev: torch.device, gen: torch.Generator) -> tuple[Kernel, str]:
    """The autograd backward of causal SDPA alone: the forward runs once, its graph is kept and re-walked."""
    q, k, v = (t.requires_grad_() for t in _qkv(case, dev, gen))
    with torch.enable_grad():
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    grad = _random(tuple(o.shape), case.dtype, dev, gen)
    kernel = lambda: torch.autograd.grad(o, (q, k, v), grad, retain_graph=True)  # noqa: E731
    return kernel, f"causal SDPA autograd backward, flops = {ATTENTION_BWD_FLOP_RATIO:g} x forward (FlashAttention)"


def _copy_fn(case: Case, dev: torch.device, gen: torch.Generator) -> tuple[Kernel, str]:
    src = torch.ones(case.m // 2, dtype=torch.bfloat16, device=dev)
    dst = torch.empty_like(src)
    return (lambda: dst.copy_(src)), "tensor copy"


BUILDERS = {
    "gemm": _gemm_fn,
    "grouped_gemm": _grouped_fn,
    "attention_fwd": _attention_fwd_fn,
    "attention_bwd": _attention_bwd_fn,
    "memory": _copy_fn,
}


def build_kernel(case: Case, device: torch.device, gen: torch.Generator) -> tuple[Kernel, str]:
    """A no-argument callable running `case` on inputs allocated now, and a note on how it runs (for `source`)."""
    return BUILDERS[case.kernel](case, device, gen)


def _median_time_s(kernel: Kernel, dev: torch.device, warmup: int, repeats: int, flush: torch.Tensor | None) -> float:
    """Median seconds of one call: CUDA events around each call (L2 flushed before), else perf_counter."""
    for _ in range(warmup):
        kernel()
    times = []
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        for _ in range(repeats):
            if flush is not None:
                flush.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            kernel()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)  # ms -> s
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            kernel()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _defaults(dev: torch.device, quick: bool) -> tuple[int, int]:
    """(warm-up calls, timed repeats) per case."""
    if dev.type == "cuda":
        return (3, 10) if quick else (5, 20)
    return (1, 3) if quick else (1, 5)


def run_benchmarks(
    device: str = "cpu",
    quick: bool = False,
    model: str = "deepseek-v3",
    cases: Sequence[Case] | None = None,
    repeats: int | None = None,
    warmup: int | None = None,
    progress: Callable[[int, int, str], object] | None = None,
) -> list[Sample]:
    """Time each case (default: `benchmark_cases(device, quick, model)`) and return one Sample per case.

    time_s is the median of `repeats` timed calls after `warmup` untimed ones;
    inputs are allocated once per case. `progress(done, total, label)` is
    called after each case.
    """
    dev = open_device(device)
    cases = benchmark_cases(device, quick, model) if cases is None else list(cases)
    default_warmup, default_repeats = _defaults(dev, quick)
    warmup = default_warmup if warmup is None else warmup
    repeats = default_repeats if repeats is None else repeats
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats}, warmup={warmup}: need repeats >= 1 and warmup >= 0")
    timer = "cuda events (L2 flushed)" if dev.type == "cuda" else "perf_counter"
    where = f"torch {torch.__version__} {dev.type} {timer} median of {repeats}"
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device=dev) if dev.type == "cuda" else None
    gen = torch.Generator().manual_seed(0)
    samples = []
    with torch.no_grad():
        for done, case in enumerate(cases, 1):
            kernel, how = build_kernel(case, dev, gen)
            time_s = _median_time_s(kernel, dev, warmup, repeats, flush)
            del kernel  # free this case's tensors before the next allocates
            source = f"measured: {where}; {how}" + (f"; {case.note}" if case.note else "")
            samples.append(
                Sample(case.kernel, case.dtype, case.flops, case.bytes, time_s, case.m, case.n, case.k, case.groups,
                       source)
            )  # fmt: skip
            if progress is not None:
                progress(done, len(cases), case.label)
    return samples

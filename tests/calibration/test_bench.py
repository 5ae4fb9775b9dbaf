"""The timing benchmark runner: case sets from the workload, Samples from timed kernels, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from calibration.bench import (
    Case,
    benchmark_cases,
    build_kernel,
    catalog_slug,
    device_info,
    run_benchmarks,
    supported_dtypes,
)
from hwmodels.profile import Sample


def total_flops(cases: list[Case]) -> float:
    return sum(c.flops for c in cases)


@pytest.mark.parametrize("quick", [True, False])
def test_cuda_cases_hold_the_v3_shapes(quick):
    # A plan only: listing CUDA cases needs no GPU.
    cases = benchmark_cases("cuda", quick)
    gemms = [c for c in cases if c.kernel == "gemm"]
    experts = [c for c in cases if c.kernel == "grouped_gemm"]
    assert any(c.k == 7168 and c.n == 1536 for c in gemms)  # q_a_proj
    assert any(c.k == 16384 and c.n == 7168 for c in gemms)  # o_proj: 128 heads x v 128
    assert any(c.n == 2 * 2048 and c.k == 7168 and 4 <= c.groups <= 8 for c in experts)  # routed gate_up
    assert min(c.m for c in gemms + experts) <= 128
    assert max(c.m for c in gemms + experts) >= 4096
    assert {c.dtype for c in gemms} == {"bf16", "fp8"}
    attention = [c for c in cases if c.kernel.startswith("attention")]
    assert {c.kernel for c in attention} == {"attention_fwd", "attention_bwd"}
    assert all(c.k == 192 and c.groups == 128 for c in attention)  # MLA's qk head dim, V3's heads
    assert any(c.kernel == "memory" for c in cases)


def test_cpu_cases_are_scaled_down():
    quick, full = benchmark_cases("cpu", True), benchmark_cases("cpu", False)
    assert total_flops(quick) < total_flops(full) < total_flops(benchmark_cases("cuda", True)) / 5
    assert len(quick) < len(full)
    gemms = [c for c in quick if c.kernel == "gemm" and c.dtype == "bf16"]
    assert any(c.k == 7168 for c in gemms)  # the model's k is kept
    assert max(c.m for c in gemms) >= 16 * min(c.m for c in gemms)  # memory-bound and compute-bound m
    assert {"bf16", "fp32"} <= {c.dtype for c in quick}


def test_dense_model_has_no_expert_cases():
    cases = benchmark_cases("cpu", True, "llama-3.1-8b")
    assert not [c for c in cases if c.kernel == "grouped_gemm"]
    assert all(c.k == 128 and c.n == 128 for c in cases if c.kernel.startswith("attention"))


def test_case_flops_and_bytes():
    gemm = Case("gemm", "fp8", 4, 8, 16)
    assert gemm.flops == 2 * 4 * 8 * 16
    assert gemm.bytes == (4 * 16 + 16 * 8) * 1 + 4 * 8 * 2  # fp8 operands, bf16 output
    fwd = Case("attention_fwd", "bf16", 4, 128, 192, 2)  # S=4, v 128, qk 192, 2 heads
    assert fwd.flops == 2 * 2 * (192 + 128) * 4 * 5 / 2
    assert fwd.bytes == 2 * 4 * 2 * (2 * 192 + 2 * 128)
    assert Case("attention_bwd", "bf16", 4, 128, 192, 2).flops == 2.5 * fwd.flops
    assert Case("memory", "bf16", 1024).bytes == 2048


def test_run_benchmarks_on_cpu_returns_valid_samples():
    cases = [
        Case("gemm", "bf16", 32, 64, 128, name="tiny"),
        Case("gemm", "fp32", 16, 32, 64, name="tiny"),
        Case("grouped_gemm", "bf16", 16, 32, 64, 4, name="experts"),
        Case("attention_fwd", "bf16", 64, 128, 192, 2),
        Case("attention_bwd", "bf16", 64, 128, 192, 2),
        Case("memory", "bf16", 2**20),
    ]
    calls = []
    samples = run_benchmarks("cpu", cases=cases, repeats=2, warmup=1, progress=lambda *a: calls.append(a))
    assert [s.kernel_class for s in samples] == [
        "gemm_bf16",
        "gemm_fp32",
        "grouped_gemm_bf16",
        "attention_fwd_bf16",
        "attention_bwd_bf16",
        "memory",
    ]
    for case, sample in zip(cases, samples, strict=True):
        assert isinstance(sample, Sample)
        assert math.isfinite(sample.time_s) and sample.time_s > 0
        assert (sample.flops, sample.bytes) == (case.flops, case.bytes)
        assert (sample.m, sample.n, sample.k, sample.groups) == (case.m, case.n, case.k, case.groups)
        assert sample.source.startswith(f"measured: torch {torch.__version__} cpu perf_counter median of 2")
    assert "2.5 x forward" in samples[4].source
    assert calls == [(i + 1, len(cases), c.label) for i, c in enumerate(cases)]


@pytest.mark.skipif("fp8" not in supported_dtypes("cpu"), reason="torch._scaled_mm does not run on this CPU")
def test_fp8_gemm_runs_on_cpu():
    (sample,) = run_benchmarks("cpu", cases=[Case("gemm", "fp8", 16, 32, 32)], repeats=1, warmup=0)
    assert sample.kernel_class == "gemm_fp8" and "_scaled_mm" in sample.source


def test_cuda_kernels_accept_their_inputs_on_meta():
    # The meta device runs the CUDA kernels' shape, stride and scale checks without a GPU.
    meta, gen = torch.device("meta"), torch.Generator().manual_seed(0)
    firsts = {(c.kernel, c.dtype): c for c in reversed(benchmark_cases("cuda", True))}
    for case in firsts.values():
        kernel, how = build_kernel(case, meta, gen)
        kernel()
        assert how


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="sees no CUDA GPU; use the cpu device"):
        run_benchmarks("cuda", quick=True)
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        device_info("cuda")


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="use 'cpu', 'cuda' or 'cuda:N'"):
        run_benchmarks("tpu")
    with pytest.raises(ValueError, match="unknown model"):
        benchmark_cases("cpu", True, "no-such-model")
    with pytest.raises(ValueError, match="case kernel"):
        Case("conv", "bf16", 1, 1, 1)
    with pytest.raises(ValueError, match="repeats=0"):
        run_benchmarks("cpu", cases=[Case("memory", "bf16", 1024)], repeats=0)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H800", "h800"),
        ("NVIDIA H20", "h20"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA GB200", "gb200"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("AMD Instinct MI300X", "mi300x"),
        ("NVIDIA H100 PCIe", None),  # another SKU than the catalog's SXM5 figures
        ("Tesla V100-SXM2-32GB", None),
    ],
)
def test_catalog_slug(name, slug):
    assert catalog_slug(name) == slug


def test_device_info_on_cpu():
    info = device_info("cpu")
    assert info["name"].startswith("cpu: ")
    assert info["torch_version"] == torch.__version__
    assert info["catalog_gpu"] is None
    assert set(info) == {"name", "torch_version", "cuda_version", "catalog_gpu"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_quick_run_on_cuda():
    info = device_info("cuda")
    samples = run_benchmarks("cuda", quick=True)
    assert len(samples) == len(benchmark_cases("cuda", True))
    assert all(s.time_s > 0 and "cuda events" in s.source for s in samples)
    assert info["name"] and info["cuda_version"]

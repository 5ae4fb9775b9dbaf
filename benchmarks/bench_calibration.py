"""Speed of calibration: the FLOP oracle per preset, and a quick CPU calibration run end to end.

Prints Markdown tables (seconds; torch already imported). Run: `make bench`.
"""

from __future__ import annotations

import time

from calibration.bench import run_benchmarks
from calibration.fit import build_profile
from calibration.oracle import flop_comparison
from workloads.registry import load_model


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    flop_comparison(load_model("llama-3.1-8b"), 128)  # warm-up: first-call dispatch set-up
    print("| model | FLOP oracle, forward + backward, all components (s) |")
    print("| --- | ---: |")
    for slug in ("deepseek-v3", "llama-3.1-405b", "qwen2.5-72b", "mixtral-8x7b"):
        spec = load_model(slug)
        print(f"| {slug} | {seconds(lambda spec=spec: flop_comparison(spec, 4096)):.2f} |")
    print()
    print("| CPU calibration | kernels | timing (s) | fit (s) |")
    print("| --- | ---: | ---: | ---: |")
    for quick in (True, False):
        start = time.perf_counter()
        samples = run_benchmarks("cpu", quick=quick)
        timed = time.perf_counter() - start
        fit = seconds(lambda samples=samples: build_profile(samples, "bench", "measured", "cpu", None))
        print(f"| {'--quick' if quick else 'full'} | {len(samples)} | {timed:.1f} | {fit:.3f} |")


if __name__ == "__main__":
    main()

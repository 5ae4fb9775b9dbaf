"""Speed of the serving model: one `serve()` answer (prefill + decode, KV capacity, costs) per deployment.

Prints a Markdown table: milliseconds per answer (median of 50) for V3 on H800 and GB200, with MTP, and the
two dense GQA models. Run: `make bench`.
"""

from __future__ import annotations

import statistics
import time

from hwmodels.registry import load_node
from simulator.analytic.profile import rates_for
from simulator.analytic.serving import ServeSpec, serve
from simulator.presets import serving_layout
from workloads.registry import load_model

REPEATS = 50
CASES = (
    ("deepseek-v3", "h800-ib", None),
    ("deepseek-v3", "h800-ib", 0.85),
    ("deepseek-v3", "gb200-nvl72", None),
    ("qwen2.5-72b", "h800-ib", None),
    ("llama-3.1-405b", "h800-ib", None),
)


def main() -> None:
    print("| model | node | MTP acceptance | ms per answer (median of 50) | answers per second |")
    print("| --- | --- | ---: | ---: | ---: |")
    for model, node_name, mtp in CASES:
        spec, node = load_model(model), load_node(node_name)
        s = ServeSpec(model=spec, node=node, mtp_acceptance=mtp, **serving_layout(spec, node))
        rates = rates_for("published", node.gpu)
        walls = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            serve(s, rates)
            walls.append(time.perf_counter() - start)
        wall = statistics.median(walls)
        print(f"| {model} | {node_name} | {mtp or '-'} | {wall * 1e3:.2f} | {1 / wall:,.0f} |")


if __name__ == "__main__":
    main()

"""Rewrite the generated blocks of README.md (`v3sim validate`, the goodput scale study), docs/validation.md
(`v3sim validate`) and docs/serving.md (`v3sim serve`) (`make docs`).

A block sits between `<!-- NAME: begin ... -->` and `<!-- NAME: end -->`; tests/golden/test_docs_tables.py
fails when a committed block differs from what this would write, so the tables cannot drift from the model.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from hwmodels.files import with_block
from simulator.analytic.serving import serve
from simulator.explore.scale import RESTARTS_S, crossover_words, crossovers, goodput_scale
from simulator.explore.validate import regime_summary, validation_rows
from simulator.presets import deployment

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = (
    "V3 total parameters",
    "V3 activated parameters",
    "KV bytes/token deepseek-v3",
    "training GFLOPs/token deepseek-v3",
    "multi-plane cost (M$)",
    "V3 pre-training H800 GPU-hours",
)


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 or float(x).is_integer() else f"{x:,.4g}"


@cache
def _rows() -> tuple[dict[str, Any], ...]:
    """`validate`'s rows, computed once for every block that shows them."""
    return tuple(validation_rows())


def _runs(kind: str) -> list[dict[str, Any]]:
    """The published runs of one kind, training or serving, in `validate`'s order."""
    return [r for r in _rows() if str(r.get("regime", "")).startswith(f"{kind}, ")]


def validation_markdown(headline: bool) -> str:
    """The validate table as Markdown: every row, or the headline ones."""
    rows = [r for r in _rows() if not headline or r["figure"] in HEADLINE]
    lines = [
        "| figure | published | v3sim | error | tolerance | within | note |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['figure']} | {_number(r['published'])} | {_number(r['predicted'])} | {r['rel_error']:+.2%} "
            f"| {r['tolerance']:.1%} | {'yes' if r['ok'] else '**no**'} | {r['note']} |"
        )
    return "\n".join(lines)


def runs_markdown(rows: list[dict], what: str, tolerance: str) -> str:
    """Published runs `validate` predicts: figure, error, within `tolerance`, in or out of sample, source."""
    lines = [
        f"| {what} | published | v3sim | error | within {tolerance} | sample | source |",
        "| --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['figure']} | {_number(r['published'])} | {_number(r['predicted'])} | {r['rel_error']:+.1%} "
            f"| {'yes' if r['ok'] else '**no**'} | {'in' if r['in_sample'] else 'out'} | {r['source']} |"
        )
    return "\n".join(lines)


def regime_markdown() -> str:
    """v3sim's speed against the published runs, by regime (`regime_summary`)."""
    lines = [
        "| published runs by regime | runs | within | v3sim speed, median | range |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for g in regime_summary(list(_rows())):
        lines.append(
            f"| {g['regime']} | {g['rows']} | {g['within']} | {g['median_speed_error']:+.1%} "
            f"| {g['min_speed_error']:+.1%} to {g['max_speed_error']:+.1%} |"
        )
    return "\n".join(lines)


def training_runs_markdown() -> str:
    return runs_markdown(_runs("training"), "published run", "±15%")


def serving_runs_markdown() -> str:
    return runs_markdown(_runs("serving"), "published serving result", "±25%")


def _ms(x: float) -> str:
    return f"{x * 1e3:,.1f} ms"


def serving_kv_markdown() -> str:
    """MLA vs GQA on one H800: KV per sequence, sequences the cache holds, decode at that batch."""
    lines = [
        "| model | context | KV per sequence per GPU | sequences per GPU | decode tok/s per GPU | TPOT "
        "| $ per M output |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for context in (4096, 32768):
        for model in ("deepseek-v3", "qwen2.5-72b", "llama-3.1-405b"):
            o = serve(deployment(model, context=context), phase="decode")
            held, usd = o["max_concurrent_sequences_per_gpu"], o["usd_per_million_output_tokens"]
            lines.append(
                f"| {model} | {context:,} | {o['kv_gb_per_sequence']:.2f} GB | {held:,} "
                f"| {o['output_tokens_per_s_per_gpu']:,.0f} | {_ms(o['tpot_s'])} | {usd:.2f} |"
            )
    return "\n".join(lines)


V3_POINTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("H800, EP320 +64 (V3 report), cache full", {}),
    ("H800, EP144 +32, TPOT <= 50 ms", {"ep": 144, "tpot_ms": 50.0}),
    ("H800, EP144 +32, TPOT <= 30 ms", {"ep": 144, "tpot_ms": 30.0}),
    ("H800, EP144 +32, MTP 0.85, TPOT <= 30 ms", {"ep": 144, "tpot_ms": 30.0, "mtp_acceptance": 0.85}),
    ("H800, EP144 +32, batch 32", {"ep": 144, "batch": 32}),
    ("H800, 56.3% cache hits, TTFT <= 2 s", {"cache_hit": 0.563, "ttft_ms": 2000.0}),
    ("GB200 NVL72, batch 32", {"gpu": "gb200", "batch": 32}),
    ("GB200 NVL72, cache full", {"gpu": "gb200"}),
)


def serving_points_markdown() -> str:
    """DeepSeek-V3 disaggregated at 4K context (3,072-token prompts, 1,024 output tokens) at operating points."""
    lines = [
        "| deployment | batch per GPU (limit) | TPOT | output tok/s per GPU | per node | input tok/s per node "
        "| TTFT | $/M output | $/M input | KV transfer |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, options in V3_POINTS:
        o = serve(deployment(output_tokens=1024, **options))
        lines.append(
            f"| {label} | {o['batch_per_gpu']} ({o['decode_limit']}) | {_ms(o['tpot_s'])} "
            f"| {o['output_tokens_per_s_per_gpu']:,.0f} | {o['output_tokens_per_s_per_node']:,.0f} "
            f"| {o['input_tokens_per_s_per_node']:,.0f} | {_ms(o['ttft_s'])} "
            f"| {o['usd_per_million_output_tokens']:.3f} | {o['usd_per_million_input_tokens']:.3f} "
            f"| {_ms(o['kv_transfer']['s_per_request'])} |"
        )
    return "\n".join(lines)


# Line colours of the goodput-scale chart, in the order of its lines (Mermaid's xychart draws no legend).
SCALE_COLOURS = (("#1f77b4", "blue"), ("#d62728", "red"), ("#7f7f7f", "grey"))


def goodput_scale_markdown() -> str:
    """V3's run from 1,024 to 131,072 H800 on a three-layer fat tree of radix 128 (`explore.scale`): a table, a
    Mermaid chart of goodput at 150 s and 600 s restarts and the network's exposed share, and where failures
    overtake the network."""
    rows = goodput_scale()
    short, long = RESTARTS_S
    lines = [
        "| GPUs | steady days | exposed network (share of a step) | failures: MTBF (h) | interval (min) "
        f"| goodput, {short:.0f} s restarts | goodput, {long:.0f} s restarts |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['gpus']:,} | {r['steady_days']:.1f} | {r['exposed_network_share']:.1%} | {r['mtbf_hours']:.2f} "
            f"| {r['interval_min']:.1f} | {r['goodput'][short]:.1%} | {r['goodput'][long]:.1%} |"
        )
    series = [[r["goodput"][short] for r in rows], [r["goodput"][long] for r in rows]]
    series.append([r["exposed_network_share"] for r in rows])
    palette = ", ".join(code for code, _ in SCALE_COLOURS)
    lines += [
        "",
        "```mermaid",
        "---",
        "config:",
        "  themeVariables:",
        "    xyChart:",
        f'      plotColorPalette: "{palette}"',
        "---",
        "xychart-beta",
        '  title "Goodput and the exposed network against GPUs (%)"',
        '  x-axis "GPUs" [' + ", ".join(f'"{r["gpus"]:,}"' for r in rows) + "]",
        '  y-axis "percent" 0 --> 100',
        *("  line [" + ", ".join(f"{100 * v:.1f}" for v in values) + "]" for values in series),
        "```",
        "",
        _legend(series, (f"goodput with {short:.0f} s restarts", f"with {long:.0f} s", "the network's exposed share")),
        "",
        _scale_sentence(rows),
    ]
    return "\n".join(lines)


def _legend(series: list[list[float]], names: tuple[str, ...]) -> str:
    """What each line of the chart is, by colour, and by place where the lines never cross (GitHub may draw
    Mermaid in its own colours)."""
    ranks = {tuple(sorted(range(len(series)), key=lambda i: -series[i][k])) for k in range(len(series[0]))}
    places = ("top", "middle", "bottom") if len(ranks) == 1 and len(series) == 3 else None
    order = next(iter(ranks)) if places else ()
    parts = []
    for i, name in enumerate(names):
        where = f" ({places[order.index(i)]})" if places else ""
        parts.append(f"{SCALE_COLOURS[i][1]}{where}: {name}")
    text = "; ".join(parts)
    return f"The lines: {text}."


def _scale_sentence(rows: list[dict[str, Any]]) -> str:
    """The failures' share at both ends of the range, and where they overtake the network, from the rows."""
    short, long = RESTARTS_S
    first, last = rows[0], rows[-1]
    where = crossovers(rows)

    def overtake(restart_s: float) -> str:
        return f"{crossover_words(where[restart_s], last['gpus'])} with {restart_s:.0f} s restarts"

    return (
        "Failures' share of the expected time (1 - goodput: all the expected run takes beyond the steady state) "
        f"climbs from {first['failure_share'][short]:.1%} at {first['gpus']:,} GPUs to "
        f"{last['failure_share'][short]:.1%} at {last['gpus']:,} with {short:.0f} s restarts "
        f"({first['failure_share'][long]:.1%} to {last['failure_share'][long]:.1%} with {long:.0f} s), while the "
        f"network's exposed share of a step goes from {first['exposed_network_share']:.1%} to "
        f"{last['exposed_network_share']:.1%}. Failures overtake the network (their time against its exposed "
        f"time over the run) {overtake(long)}, and {overtake(short)}."
    )


BLOCKS: dict[tuple[str, str], Callable[[], str]] = {  # (file, block name) -> what writes the block
    ("README.md", "v3sim validate --headline"): lambda: validation_markdown(True),
    ("README.md", "v3sim validate: by regime"): regime_markdown,
    ("README.md", "v3sim validate: training runs"): training_runs_markdown,
    ("README.md", "v3sim validate: serving runs"): serving_runs_markdown,
    ("README.md", "goodput-scale"): goodput_scale_markdown,
    ("docs/validation.md", "v3sim validate"): lambda: validation_markdown(False),
    ("docs/serving.md", "v3sim serve: MLA vs GQA"): serving_kv_markdown,
    ("docs/serving.md", "v3sim serve: V3 operating points"): serving_points_markdown,
}


def refreshed(text: str, name: str, table: str) -> str:
    """`text` with the block `name` holding `table`."""
    return with_block(text, name, table)


def main() -> None:
    for (rel, name), table in BLOCKS.items():
        path = ROOT / rel
        path.write_text(refreshed(path.read_text(encoding="utf-8"), name, table()), encoding="utf-8")


if __name__ == "__main__":
    main()

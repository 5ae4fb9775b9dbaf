"""Rewrite the generated blocks of README.md and docs/validation.md from `v3sim validate` (`make docs`).

A block sits between `<!-- NAME: begin ... -->` and `<!-- NAME: end -->`; tests/golden/test_docs_tables.py
fails when a committed block differs from what this would write, so the tables cannot drift from the model.
"""

from __future__ import annotations

from pathlib import Path

from hwmodels.files import with_block
from simulator.explore.validate import validation_rows

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = (
    "V3 total parameters",
    "V3 activated parameters",
    "KV bytes/token deepseek-v3",
    "training GFLOPs/token deepseek-v3",
    "multi-plane cost (M$)",
    "V3 pre-training H800 GPU-hours",
)
BLOCKS = {  # file -> (block name, headline rows only)
    "README.md": ("v3sim validate --headline", True),
    "docs/validation.md": ("v3sim validate", False),
}


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 or float(x).is_integer() else f"{x:,.4g}"


def validation_markdown(headline: bool) -> str:
    """The validate table as Markdown: every row, or the headline ones."""
    rows = [r for r in validation_rows() if not headline or r["figure"] in HEADLINE]
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


def refreshed(text: str, name: str, table: str) -> str:
    """`text` with the block `name` holding `table`."""
    return with_block(text, name, table)


def main() -> None:
    for rel, (name, headline) in BLOCKS.items():
        path = ROOT / rel
        path.write_text(
            refreshed(path.read_text(encoding="utf-8"), name, validation_markdown(headline)), encoding="utf-8"
        )


if __name__ == "__main__":
    main()

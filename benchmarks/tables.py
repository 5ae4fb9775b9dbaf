"""How a benchmark reports: it prints its Markdown table, and with `--write DOC` (as `make bench` runs it) it
also puts the table in DOC's generated block of the same name, so docs/speed.md shows what was measured."""

from __future__ import annotations

import sys
from pathlib import Path

from hwmodels.files import with_block


def publish(name: str, lines: list[str]) -> None:
    """Print `lines`; with `--write DOC` on the command line, write them into DOC's block `name`."""
    table = "\n".join(lines)
    print(table)
    if "--write" in sys.argv:
        doc = Path(sys.argv[sys.argv.index("--write") + 1])
        doc.write_text(with_block(doc.read_text(encoding="utf-8"), name, table), encoding="utf-8")

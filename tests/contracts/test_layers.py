"""Dependencies point one way (../shared/DESIGN.md): checked on the import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> top-level modules it must never import
FORBIDDEN = {
    "workloads": {"simulator", "dashboard", "calibration", "streamlit", "plotly", "torch"},
    "hwmodels": {"simulator", "dashboard", "calibration", "streamlit", "plotly", "torch"},
    "simulator": {"dashboard", "streamlit", "plotly", "torch"},
    "calibration": {"simulator", "dashboard", "streamlit", "plotly"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_flow(package):
    bad = {str(p.relative_to(ROOT)): imported_roots(p) & FORBIDDEN[package] for p in (ROOT / package).rglob("*.py")}
    assert not {k: v for k, v in bad.items() if v}


def test_no_print_in_libraries():
    # ruff's T20 enforces it too; this keeps the rule if the lint config drifts.
    for package in ("workloads", "hwmodels"):
        for path in (ROOT / package).rglob("*.py"):
            calls = [
                n
                for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
            ]
            assert not calls, path

"""Dependencies point one way (../shared/DESIGN.md): checked on the import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> top-level modules it must never import
FORBIDDEN = {
    "workloads": {"simulator", "dashboard", "calibration", "streamlit", "plotly", "torch"},
    "hwmodels": {"workloads", "simulator", "dashboard", "calibration", "streamlit", "plotly", "torch"},
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


PACKAGES = ("workloads", "hwmodels", "simulator", "calibration", "dashboard")


def test_no_text_is_ever_evaluated():
    """Configuration is data: no eval/exec/compile, no DataFrame.eval/query, no pickle or yaml loading, in any
    package (docs/security.md). Sweep constraints go through simulator/explore/expr.py's checked syntax tree."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    owner = getattr(getattr(node.func, "value", None), "id", "")
                    builtin = isinstance(node.func, ast.Name)
                    if (
                        (builtin and name in ("eval", "exec", "compile", "__import__"))
                        or name in ("eval", "query")
                        or (name in ("load", "loads") and owner in ("pickle", "yaml", "marshal", "dill"))
                    ):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)[:60]}")
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                    if any(n.split(".")[0] in ("pickle", "yaml", "marshal", "dill") for n in names):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {names}")
    assert not found, found


def _is_cli(module: str) -> bool:
    return module == "simulator.cli" or module.startswith("simulator.cli.")


def test_the_engine_never_imports_calibration_or_the_cli():
    """The engine reads profiles through hwmodels.profile; only the command line (simulator/cli/) may run
    calibration, and nothing imports the command line."""
    bad = {}
    for path in (ROOT / "simulator").rglob("*.py"):
        if (ROOT / "simulator" / "cli") in path.parents:
            continue
        used = {m for m in _module_imports(path) if m.split(".")[0] == "calibration" or _is_cli(m)}
        if used:
            bad[str(path.relative_to(ROOT))] = used
    assert not bad


def test_the_dashboard_never_imports_the_command_line():
    bad = {
        str(p.relative_to(ROOT)): {m for m in _module_imports(p) if _is_cli(m)}
        for p in (ROOT / "dashboard").rglob("*.py")
    }
    assert not {k: v for k, v in bad.items() if v}


def test_only_the_command_line_prints():
    """print() only in simulator/cli/ (ruff's T20 with per-file ignores says the same; this keeps the rule)."""
    printing = []
    for package in ("simulator", "workloads", "hwmodels", "calibration"):
        for path in (ROOT / package).rglob("*.py"):
            if (ROOT / "simulator" / "cli") in path.parents:
                continue
            calls = [
                n
                for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
            ]
            if calls:
                printing.append(str(path.relative_to(ROOT)))
    assert not printing


def _module_imports(path: Path) -> set[str]:
    """Every module a file imports, in full (`a.b.c`), at any depth (lazy imports inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def heavy_modules_after(commands: list[list[str]], heavy: set[str]) -> list[str]:
    """The top-level packages of `heavy` a fresh interpreter has imported after running the `v3sim` commands
    (their output discarded; a help exits through SystemExit)."""
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys\n"
        "from simulator.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    for argv in {commands!r}:\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        f"print('loaded:' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(heavy)!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = out.stdout.strip().splitlines()[-1].removeprefix("loaded:")
    return loaded.split(",") if loaded else []


def test_help_loads_no_heavy_library():
    """`v3sim --help` and a sub-command's help import none of torch, streamlit, plotly, dask, calibration, nor
    the engine's numpy/pandas/scipy/networkx/simpy: the parser is built from names alone (measured: 0.1 s,
    was 1.6 s), and each handler imports what it needs."""
    helps = [["--help"], ["train", "--help"], ["calibrate", "run", "--help"], ["sweep", "--help"], ["serve", "--help"]]
    heavy = {"torch", "streamlit", "plotly", "dask", "distributed", "calibration", "numpy", "pandas", "scipy"}
    assert heavy_modules_after(helps, heavy | {"networkx", "simpy", "pyarrow"}) == []


def test_workload_answers_load_no_network_library():
    """`v3sim kv`, `model` and `serve` never build a fabric: they import neither networkx nor scipy (nor
    pandas or simpy), so they start in about 0.2 s (issue 22: <= 0.3 s; docs/speed.md)."""
    answers = [["kv", "deepseek-v3"], ["model", "deepseek-v3"], ["serve"]]
    heavy = {"torch", "streamlit", "plotly", "dask", "scipy", "networkx", "simpy", "pandas"}
    assert heavy_modules_after(answers, heavy) == []


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("bench_*.py")), ids=lambda p: p.stem)
def test_benchmarks_import(path):
    """Benchmarks are not run by the suite, but they must not rot: each imports (its main does not run)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_every_table_a_benchmark_publishes_has_its_block_in_the_speed_page():
    """`make bench` writes each published table into docs/speed.md (`benchmarks/tables.py`), and the goals table
    into the README: the blocks exist, and the Makefile writes each where its block is."""
    import re

    from hwmodels.files import with_block

    speed = (ROOT / "docs" / "speed.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = set()
    for path in (ROOT / "benchmarks").glob("bench_*.py"):
        names |= set(re.findall(r'publish\(\s*"([^"]+)"', path.read_text(encoding="utf-8")))
    assert names >= {"bench estimate", "bench layouts", "bench all-to-all", "bench goals"}
    for name in names:
        with_block(readme if name == "bench goals" else speed, name, "")  # raises if the block is missing
    assert "bench_goals --write README.md" in (ROOT / "Makefile").read_text(encoding="utf-8")


# The engine's rooms, lowest first (README: Layout). A module imports only rooms below its own (or its own):
# specs and defaults; the analytic models and the network; the event model; exploration; the command line.
ENGINE_ROOMS = ("specs", "analytic|network", "events", "explore", "cli")


def _room(module: str) -> int:
    """The rank of a `simulator` module's room: its sub-package, or `specs` for a top-level module."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 2 or (len(parts) == 2 and (ROOT / "simulator" / parts[1]).is_dir()) else "specs"
    return next(i for i, room in enumerate(ENGINE_ROOMS) if name in room.split("|"))


def _simulator_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("simulator.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("simulator"):
            out |= {f"{node.module}.{a.name}" if node.module == "simulator" else node.module for a in node.names}
    return out


def test_engine_rooms_depend_one_way():
    bad = []
    for path in (ROOT / "simulator").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for target in _simulator_imports(path):
            if _room(target) > _room(module):
                bad.append(f"{module} -> {target}")
    assert not bad, bad


def test_analytic_and_network_do_not_import_each_other():
    for room, other in (("analytic", "simulator.network"), ("network", "simulator.analytic")):
        for path in (ROOT / "simulator" / room).rglob("*.py"):
            assert not {m for m in _simulator_imports(path) if m.startswith(other)}, path


def test_units_are_named_once():
    """Seconds per hour or day and bytes per GiB come from hwmodels/units.py, never a bare 3600 / 86400 / 2**30."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "units.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in (3600, 86400) and type(node.value) is not bool:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if (
                    isinstance(node, ast.BinOp)
                    and isinstance(node.op, ast.Pow)
                    and getattr(node.left, "value", None) == 2
                    and getattr(node.right, "value", None) == 30
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_a_train_answer_with_its_fabric_known_loads_no_network_library(tmp_path, monkeypatch):
    """`v3sim train` routes its fabric once per machine (simulator.analytic.fabric.FactorCache); after that it
    imports neither networkx nor scipy (nor pandas or simpy), so it starts in about 0.2 s (issue 22: <= 0.7 s)."""
    monkeypatch.setenv("V3SIM_CACHE_DIR", str(tmp_path))
    heavy = {"torch", "streamlit", "plotly", "dask", "scipy", "networkx", "simpy", "pandas"}
    assert "networkx" in heavy_modules_after([["train"]], heavy)  # the first routes the fabric
    assert heavy_modules_after([["train"]], heavy) == []

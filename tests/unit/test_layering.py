"""The package layering holds: the import contracts in pyproject.toml, and no import cycle in ferry.

The contracts (`[tool.importlinter]`, checked by `lint-imports` as in `make lint`) keep the engine
side (engine, tracking, kiroframe) apart from Kubernetes and the operator, the controller apart from
MLflow and the engine, and the Jobs (runner) apart from the controller. The cycle check here looks
at single modules: `lint-imports` only sees cycles between sibling packages. Both count indirect
imports and imports inside functions.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = CONFIG["contracts"]


def broken_section(report: str) -> str:
    """The part of a `lint-imports` report that says what is broken (all of it if there is no such part)."""
    _, sep, tail = report.partition("Broken contracts\n----------------\n")
    return tail.strip() if sep else report.strip()


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract["id"])
def test_contract_is_kept(contract: dict) -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--contract", contract["id"]],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"},  # one line per chain, not wrapped at 80 columns
    )
    assert result.returncode == 0, (
        f"broken: {contract['name']}\n\n{broken_section(result.stdout)}\n{result.stderr}".rstrip()
    )


def strongly_connected(graph: grimp.ImportGraph, modules: Iterable[str]) -> list[list[str]]:
    """Tarjan's strongly connected components of the import graph restricted to `modules`, in
    order of their first module; only those that are a cycle (more than one module)."""
    modules = sorted(modules)
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & inside):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(components)


def shortest_cycle(graph: grimp.ImportGraph, component: list[str]) -> tuple[str, ...]:
    """A shortest cycle through the first module of a strongly connected component, closed on it."""
    start = component[0]
    chains = [graph.find_shortest_chain(importer=imported, imported=start)
              for imported in graph.find_modules_directly_imported_by(start) & set(component)]
    return (start, *min((chain for chain in chains if chain), key=lambda chain: (len(chain), chain)))


def describe(graph: grimp.ImportGraph, cycle: tuple[str, ...]) -> str:
    """The cycle as `a -> b -> a`, then each of its imports with its line."""
    lines = [" -> ".join(cycle)]
    for importer, imported in itertools.pairwise(cycle):
        for detail in graph.get_import_details(importer=importer, imported=imported):
            lines.append(f"    {importer}:{detail['line_number']}: {detail['line_contents']}")
    return "\n".join(lines)


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph(CONFIG["root_package"], cache_dir=None)
    components = strongly_connected(graph, graph.modules)
    report = []
    for component in components:
        report.append(f"{len(component)} modules import one another: {', '.join(component)}\n"
                      f"  for example {describe(graph, shortest_cycle(graph, component))}")
    assert not components, "import cycles in ferry:\n" + "\n".join(report)


def test_the_cycle_check_finds_a_cycle_and_its_lines() -> None:
    graph = grimp.ImportGraph()
    for importer, imported, line in [("p.a", "p.b", 1), ("p.b", "p.c", 2), ("p.c", "p.a", 3), ("p.c", "p.d", 4)]:
        graph.add_import(importer=importer, imported=imported, line_number=line, line_contents=f"import {imported}")
    found = strongly_connected(graph, graph.modules)
    assert found == [["p.a", "p.b", "p.c"]]
    assert shortest_cycle(graph, found[0]) == ("p.a", "p.b", "p.c", "p.a")
    assert describe(graph, shortest_cycle(graph, found[0])).splitlines() == [
        "p.a -> p.b -> p.c -> p.a", "    p.a:1: import p.b", "    p.b:2: import p.c", "    p.c:3: import p.a",
    ]

"""The operator's subpackages depend on each other in one direction: no package imports another that
imports it back (``checks`` uses ``azure``; ``azure`` never uses ``checks``). Read from the source with
``ast``, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from itertools import permutations
from pathlib import Path

import azure_edition_operator

ROOT = Path(azure_edition_operator.__file__).parent
PACKAGE = ROOT.name


def _subpackage_of(module: Path) -> str | None:
    parts = module.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else None


def _imported_subpackages(module: Path) -> set[str]:
    """The subpackages of the operator that ``module`` imports (absolute or relative)."""
    here = module.relative_to(ROOT).parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        targets: list[tuple[str, ...]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                mod = tuple(node.module.split(".")) if node.module else ()
                targets = [(*base, *mod, alias.name) for alias in node.names]
            elif node.module and node.module.split(".")[0] == PACKAGE:
                mod = tuple(node.module.split(".")[1:])
                targets = [(*mod, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [tuple(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == PACKAGE]
        for target in targets:
            if target and (ROOT / target[0]).is_dir():
                found.add(target[0])
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in ROOT.rglob("*.py"):
        own = _subpackage_of(module)
        if own is None:
            continue
        graph.setdefault(own, set()).update(_imported_subpackages(module) - {own})
    return graph


def test_the_reader_sees_the_known_edge() -> None:
    assert "azure" in package_graph()["checks"]  # the checks' remediation goes through azure/


def test_no_subpackage_imports_one_that_imports_it_back() -> None:
    graph = package_graph()
    cycles = [(a, b) for a, b in permutations(graph, 2) if b in graph[a] and a in graph.get(b, set())]
    assert cycles == []

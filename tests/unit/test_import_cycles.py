"""No import circles in ``daemon/`` and ``models/``: each layer imports only the layers below it.

The graph is read statically from the source (``ast``), so it sees every ``import`` statement: at module level,
inside functions and under ``if TYPE_CHECKING:`` alike. An import deferred into a function, or kept for type hints,
is still a dependency of the layer on the other: deferring it only hides the circle from the interpreter. An edge
goes to the module named; ``from package import name`` goes to ``package.name`` when that is a module, else to
``package``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = (ROOT / "daemon", ROOT / "models")


def find_modules(roots: Iterable[Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under the given source roots."""
    modules: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _base(name, is_package, node)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_circle_in_daemon_and_models() -> None:
    graph = import_graph(find_modules(SOURCE_ROOTS))
    circles = cycles(graph)
    assert not circles, "import circles (each a set of modules that import each other, directly or not):\n" + "\n".join(
        " <-> ".join(c) for c in circles)


def test_the_checker_finds_a_circle_through_a_deferred_import(tmp_path: Path) -> None:
    """The checker itself: circles closed by an import inside a function, or under TYPE_CHECKING, are found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("def main():\n    from .sub.cmd import run\n    return run()\n")
    (pkg / "sub" / "cmd.py").write_text("def run():\n    from ..cli import helper\n")
    (pkg / "layer.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import top\n")
    (pkg / "top.py").write_text("import pkg.layer\n")
    (pkg / "low.py").write_text("import os\nfrom . import sub\n")
    graph = import_graph(find_modules([tmp_path]))
    assert graph["pkg.cli"] == {"pkg.sub.cmd"}
    assert graph["pkg.sub.cmd"] == {"pkg.cli"}
    assert graph["pkg.layer"] == {"pkg.top"}
    assert graph["pkg.low"] == {"pkg.sub"}
    assert cycles(graph) == [["pkg.cli", "pkg.sub.cmd"], ["pkg.layer", "pkg.top"]]

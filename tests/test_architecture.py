"""The layout keeps its promises: no import cycles, and one sealed engine.

Read from the source with `ast` (module-level imports; those under `TYPE_CHECKING` and inside
functions are not run at import and are left out)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.harness import ROOT

PACKAGE = ROOT / "spyglass"
#: The engine's parts: only `spyglass.tasks` itself may import them.
ENGINE_INTERNALS = {
    "spyglass.tasks.store",
    "spyglass.tasks.runner",
    "spyglass.tasks.queue",
    "spyglass.tasks.dbwriter",
    "spyglass.tasks.redis_bus",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def run_time_imports(tree: ast.Module) -> Iterator[str]:
    """The modules a module imports when it is imported."""
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                for alias in inner.names:
                    full = f"{inner.module}.{alias.name}"
                    yield full if full in MODULES else inner.module
            elif isinstance(inner, ast.Import):
                yield from (alias.name for alias in inner.names)


def all_imports(tree: ast.Module) -> Iterator[str]:
    """Every module named in an import anywhere in the module (lazy ones included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_no_import_cycles() -> None:
    graph = {
        name: {m for m in run_time_imports(ast.parse(path.read_text())) if m in MODULES} - {name}
        for name, path in MODULES.items()
    }
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    assert len(graph) > 50, "the package was found"
    assert cycles == []


def test_only_the_engine_touches_its_parts() -> None:
    """Routes, pages, tools and scripts use the engine's façade (`spyglass.tasks.engine`,
    its typed views): never its store, runner, queue or bus implementation. (Attribute
    access to its private parts is refused by ruff's SLF001 in `make lint`.)"""
    offenders = []
    for name, path in MODULES.items():
        if name == "spyglass.tasks" or name.startswith("spyglass.tasks."):
            continue
        reached = ENGINE_INTERNALS & set(all_imports(ast.parse(path.read_text())))
        offenders.extend(f"{name} imports {m}" for m in sorted(reached))
    assert offenders == []

"""The package's import graph: no module is part of an import circle (import statements at
module and function level count; the implicit import of a parent package does not), and the
loss and metric layers import torch and each other only."""

import ast
import os

from tests.conftest import REPO

PACKAGE = "solo_plugins"


def modules() -> dict:
    out = {}
    for folder, _, names in os.walk(os.path.join(REPO, PACKAGE)):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                out[module[: -len(".__init__")] if module.endswith(".__init__") else module] = path
    return out


def imports_of(module: str, path: str, known: dict) -> set:
    """The package's modules that ``module`` imports anywhere in its file; ``from a import b``
    counts as importing ``a.b`` where that is a module, else ``a``."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known and m != module}


def graph() -> dict:
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def circles(edges: dict) -> list:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_module_of_the_package_is_part_of_an_import_circle():
    edges = graph()
    assert len(edges) > 50
    assert circles(edges) == []


def test_losses_and_metrics_import_nothing_of_the_package_but_themselves_and_the_distributed_helper():
    allowed = ("solo_plugins.losses", "solo_plugins.metrics", "solo_plugins.distributed")
    for module, imported in graph().items():
        if module.startswith(("solo_plugins.losses", "solo_plugins.metrics")):
            assert all(m.startswith(allowed) for m in imported), (module, imported)

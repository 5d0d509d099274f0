"""No import cycles among mesa's modules, read statically from the source (nothing is imported).

Module-level imports (run at import time) must form no cycle at all. Imports inside functions are
counted separately: a cycle through one is not an import-time failure, but it still means two modules
know each other, so only the few listed in ``DEFERRED_CYCLES_ALLOWED`` may exist.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mesa

ROOT = Path(mesa.__file__).resolve().parent

# Cycles through function-level imports that are known and owned elsewhere: (modules in the cycle) → why.
DEFERRED_CYCLES_ALLOWED: dict[tuple[str, ...], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in ROOT.rglob("*.py")}


def _known(name: str) -> str | None:
    """The mesa module ``name`` is or lives in (``mesa.x.Y`` → ``mesa.x``), or None outside mesa."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        names = [f"{base}.{alias.name}" for alias in node.names]
    found = [_known(name) for name in names]
    return [name for name in found if name and name != module]


def _module_level_imports(body: list[ast.stmt]):
    """Imports run when the module is imported: top level, and inside top-level if/try (not TYPE_CHECKING)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            yield from _module_level_imports(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            handlers = [stmt for handler in node.handlers for stmt in handler.body]
            yield from _module_level_imports(node.body + handlers + node.orelse + node.finalbody)


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if module_level_only:
            imports = list(_module_level_imports(tree.body))
        else:
            imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
            imports = [node for node in imports if node not in _type_checking_imports(tree)]
        graph[module] = {target for node in imports for target in _targets(module, node)}
    return graph


def _type_checking_imports(tree: ast.Module) -> set[ast.AST]:
    blocks = [node for node in tree.body if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)]
    return {inner for block in blocks for inner in ast.walk(block)}


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[tuple[str, ...]] = []
    for start, first_children in graph.items():
        if start in index:
            continue
        work = [(start, iter(sorted(first_children)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(tuple(sorted(group)))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_mesa_imports():
    graph = _graph(module_level_only=True)
    assert "mesa.errors" in graph["mesa.llm"] and "mesa.graphs.smes" in graph["mesa.graphs.server"]


def test_no_module_level_import_cycle():
    assert cycles(_graph(module_level_only=True)) == []


def test_no_import_cycle_through_function_level_imports_either():
    unexpected = [group for group in cycles(_graph(module_level_only=False)) if group not in DEFERRED_CYCLES_ALLOWED]
    assert unexpected == []


def test_llm_does_not_import_the_test_double():
    assert "mesa.testing" not in _graph(module_level_only=False)["mesa.llm"]


def test_a_scripted_model_is_released_when_closed_or_collected():
    import gc
    import weakref

    from mesa import testing

    script = testing.ScriptedModel()
    name, alive = script.name, weakref.ref(script)
    assert testing._instances[name] is script
    script.close()
    assert name not in testing._instances
    held = testing.ScriptedModel()
    llm = held.as_llm()
    name, alive = held.name, weakref.ref(held)
    del held
    gc.collect()
    assert testing._instances[name] is llm.owner  # the LLM keeps its script reachable
    del llm
    gc.collect()
    assert alive() is None and name not in testing._instances

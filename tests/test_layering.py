"""Imports point one way: engine/ is plain Python with no circles, display/ has no IPython, only
the store package imports mlflow.

Parsed with ``ast``, so imports inside functions count too (and ``TYPE_CHECKING`` blocks).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aimodel_kernel"
ENGINE = "aimodel_kernel.engine"
FRONTEND = ("IPython", "ipywidgets", "tornado", "jupyter_server", "ipykernel")

# Which engine package may import which: capabilities stand on core/ and store/; what two
# capabilities share lives in core/. versions/ retrains (reproduce) and evaluates (diff).
# (legacy.py forwards the old flat module paths; packages that were modules use its forwarder.)
ALLOWED = {
    "core": set(),
    "store": {"core"},
    "training": {"core", "store", "legacy"},
    "evaluation": {"core", "store", "legacy"},
    "explanation": {"core", "store"},
    "fairness": {"core", "store", "legacy"},
    "compression": {"core", "store"},
    "versions": {"core", "store", "training", "legacy"},
    "legacy": set(),
}


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """Absolute names of every module ``path`` imports, wherever the import statement is.

    ``importlib.import_module("x")`` and the engine's ``require("x")`` with a literal count too.
    """
    package = path.relative_to(root.parent).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("import_module", "require", "__import__") and isinstance(
                    first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def modules(folder: str = "") -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top(name: str) -> str:
    return name.split(".")[0]


def engine_graph() -> dict[str, set[str]]:
    """Engine module -> the engine modules it imports (a name inside a module counts as the
    module; a package's own ``__init__`` is not counted as imported by its modules)."""
    known = {module_name(p): p for p in modules("engine")}
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for target in imported_modules(path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
    return found


def package_of(module: str) -> str | None:
    """``core`` for ``aimodel_kernel.engine.core.data``; ``None`` for the engine's __init__."""
    rest = module[len(ENGINE) + 1:] if module.startswith(ENGINE + ".") else ""
    return rest.split(".")[0] or None


def test_the_parser_sees_nested_relative_and_dynamic_imports(tmp_path):
    sample = tmp_path / "aimodel_kernel" / "engine" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text(
        "from ..magics import core\n"
        "from . import tracking\n"
        "def f():\n"
        "    import IPython.display\n"
        "    return require('ipywidgets')\n"
    )
    found = imported_modules(sample, root=tmp_path / "aimodel_kernel")
    assert {"aimodel_kernel.magics", "aimodel_kernel.magics.core", "aimodel_kernel.engine",
            "aimodel_kernel.engine.tracking", "IPython.display", "ipywidgets"} <= found


def test_the_cycle_finder_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("path", modules("engine"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_engine_imports_no_frontend(path):
    names = imported_modules(path)
    bad = sorted(n for n in names if _top(n) in FRONTEND)
    assert not bad, f"{path.name} imports {bad}"
    upward = sorted(n for n in names if n.startswith(("aimodel_kernel.magics",
                                                      "aimodel_kernel.widgets",
                                                      "aimodel_kernel.display",
                                                      "aimodel_kernel.server")))
    assert not upward, f"{path.name} imports {upward}: the engine must not depend on the UI"


def test_no_import_circles_between_engine_modules():
    assert cycles(engine_graph()) == []


def test_no_import_circles_between_engine_packages():
    graph: dict[str, set[str]] = {}
    for module, targets in engine_graph().items():
        here = package_of(module)
        if here is None:
            continue
        graph.setdefault(here, set()).update(
            t for t in map(package_of, targets) if t is not None and t != here)
    assert cycles(graph) == [], graph


def test_engine_packages_import_only_what_the_layering_allows():
    assert set(ALLOWED) == {package_of(m) for m in engine_graph()} - {None}
    wrong = []
    for module, targets in sorted(engine_graph().items()):
        here = package_of(module)
        for target in sorted(targets):
            there = package_of(target)
            if here is not None and there is not None and there != here \
                    and there not in ALLOWED[here]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_module_reaches_into_another_packages_private_names():
    wrong = []
    for path in modules("engine"):
        here = package_of(module_name(path))
        for name in imported_modules(path):
            leaf = name.rpartition(".")[2]
            if name.startswith(ENGINE) and leaf.startswith("_") and not leaf.startswith("__") \
                    and package_of(name) != here:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_only_the_store_imports_mlflow():
    users = sorted(str(p.relative_to(PACKAGE)) for p in modules()
                   if any(_top(n) == "mlflow" for n in imported_modules(p)))
    assert users and all(u.startswith("engine/store/") for u in users), users
    # the store's facade and its SQLite specifics; new ones are added here on purpose
    assert users == ["engine/store/mlflow_sqlite.py", "engine/store/tracking.py"]


@pytest.mark.parametrize("path", modules("display"), ids=lambda p: p.name)
def test_display_imports_no_ipython(path):
    bad = sorted(n for n in imported_modules(path) if _top(n) in ("IPython", "ipywidgets"))
    assert not bad, f"{path.name} imports {bad}"
    assert not [n for n in imported_modules(path) if n.startswith("aimodel_kernel.magics")]


def test_there_is_something_to_check():
    graph = engine_graph()
    assert len(graph) >= 40 and len(modules("display")) >= 4
    assert sum(len(t) for t in graph.values()) >= 100
    tracking = PACKAGE / "engine" / "store" / "tracking.py"
    assert "mlflow" in {_top(n) for n in imported_modules(tracking)}
    assert "IPython.core.magic" in {n for p in modules("magics") for n in imported_modules(p)}

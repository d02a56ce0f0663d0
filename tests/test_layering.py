"""Imports point one way: engine/ is plain Python, display/ has no IPython, one module has mlflow.

Parsed with ``ast``, so imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aimodel_kernel"
FRONTEND = ("IPython", "ipywidgets", "tornado", "jupyter_server", "ipykernel")


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


def _top(name: str) -> str:
    return name.split(".")[0]


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


@pytest.mark.parametrize("path", modules("engine"), ids=lambda p: p.name)
def test_engine_imports_no_frontend(path):
    names = imported_modules(path)
    bad = sorted(n for n in names if _top(n) in FRONTEND)
    assert not bad, f"{path.name} imports {bad}"
    upward = sorted(n for n in names if n.startswith(("aimodel_kernel.magics",
                                                      "aimodel_kernel.widgets",
                                                      "aimodel_kernel.display",
                                                      "aimodel_kernel.server")))
    assert not upward, f"{path.name} imports {upward}: the engine must not depend on the UI"


def test_only_tracking_imports_mlflow():
    users = sorted(str(p.relative_to(PACKAGE)) for p in modules()
                   if any(_top(n) == "mlflow" for n in imported_modules(p)))
    assert users == ["engine/tracking.py"]


@pytest.mark.parametrize("path", modules("display"), ids=lambda p: p.name)
def test_display_imports_no_ipython(path):
    bad = sorted(n for n in imported_modules(path) if _top(n) in ("IPython", "ipywidgets"))
    assert not bad, f"{path.name} imports {bad}"
    assert not [n for n in imported_modules(path) if n.startswith("aimodel_kernel.magics")]


def test_there_is_something_to_check():
    assert len(modules("engine")) >= 10 and len(modules("display")) >= 4
    assert "mlflow" in {_top(n) for n in imported_modules(PACKAGE / "engine" / "tracking.py")}
    assert "IPython.core.magic" in imported_modules(PACKAGE / "magics" / "core.py")

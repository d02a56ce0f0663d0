"""The JupyterLab extension knows the magics the kernel extension registers.

``labextension/src/highlight.ts`` lists the line magics it highlights (``MAGICS``) and the
insert commands of ``labextension/src/commands.ts`` write magic lines. Both are read from the
TypeScript source here and compared with what ``%load_ext aimodel_kernel`` registers in a real
in-process IPython, whichever modules the magics live in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[1] / "labextension" / "src"
HIGHLIGHT = SRC / "highlight.ts"
COMMANDS = SRC / "commands.ts"


def ts_string_array(source: str, name: str) -> list[str]:
    """The items of ``const NAME = ['a', 'b', ...]`` in TypeScript source.

    Parameters
    ----------
    source : str
        The file's text.
    name : str
        The constant's name.

    Returns
    -------
    list of str
        The string literals, in order.

    Raises
    ------
    AssertionError
        No such constant, or its array holds something other than single-quoted literals
        (a spread, a variable), which this reading would miss.
    """
    match = re.search(rf"\bconst {re.escape(name)}\s*(?::[^=]+)?=\s*\[(.*?)\]", source, re.S)
    assert match, f"no array constant {name}"
    items = re.findall(r"'([^'\\]*)'", match[1])
    rest = re.sub(r"'[^'\\]*'|//[^\n]*|[\s,]", "", match[1])
    assert not rest, f"{name} holds more than string literals: {rest!r}"
    return items


def registered(shell: Any, kind: str) -> set[str]:
    """Names of the ``kind`` (``"line"`` or ``"cell"``) magics that aimodel_kernel registered:
    those bound to an instance of a class defined in the package."""
    names = set()
    for name, func in shell.magics_manager.magics[kind].items():
        owner = getattr(func, "__self__", None)
        module = type(owner).__module__ if owner is not None else getattr(func, "__module__", "")
        if (module or "").split(".")[0] == "aimodel_kernel":
            names.add(name)
    return names


@pytest.fixture(scope="module")
def magics(_shell) -> dict[str, set[str]]:
    """The line and cell magics of ``%load_ext aimodel_kernel`` (the shared shell has it
    loaded; loading again is a no-op)."""
    _shell.run_line_magic("load_ext", "aimodel_kernel")
    return {kind: registered(_shell, kind) for kind in ("line", "cell")}


def test_the_array_reader_sees_literals_only():
    assert ts_string_array("export const X = [\n  'a',\n  'b' // two\n];", "X") == ["a", "b"]
    assert ts_string_array("const X: string[] = ['a'];", "X") == ["a"]
    with pytest.raises(AssertionError, match="more than string literals"):
        ts_string_array("const X = ['a', ...OTHER];", "X")


def test_the_highlighter_lists_exactly_the_registered_line_magics(magics):
    listed = ts_string_array(HIGHLIGHT.read_text(encoding="utf-8"), "MAGICS")
    assert len(listed) == len(set(listed)), "MAGICS lists a name twice"
    assert {"train", "evaluate", "diff"} <= magics["line"]
    assert set(listed) == magics["line"], (
        f"only in highlight.ts: {sorted(set(listed) - magics['line'])}; "
        f"only registered: {sorted(magics['line'] - set(listed))}")


def test_there_are_no_cell_magics_the_highlighter_would_miss(magics):
    # the highlighter matches `%name` lines only; a `%%name` cell magic needs it extended
    assert magics["cell"] == set()


def test_the_insert_commands_write_registered_magics(magics):
    source = COMMANDS.read_text(encoding="utf-8")
    written = set(re.findall(r"code: '%(\w+)", source)) | set(re.findall(r"`%(\w+) \$\{", source))
    assert {"train", "diff"} <= written
    assert written <= magics["line"], sorted(written - magics["line"])

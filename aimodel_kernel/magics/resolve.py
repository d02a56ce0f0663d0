"""Turning magic arguments into objects: namespace lookups, short expressions, engine errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

from ..engine.core.errors import AimodelError


def resolve(shell: Any, expr: str, role: str) -> Any:
    """The value of ``expr`` (a name or a short expression such as ``X[:100]``) in the user
    namespace; a ``UsageError`` naming ``role`` when it cannot be evaluated.

    The magic line keeps the quotes of a quoted argument, so ``"X[:, :5]"`` is unquoted here.
    """
    ns = shell.user_ns
    expr = expr.strip()
    if len(expr) >= 2 and expr[0] == expr[-1] and expr[0] in "'\"":
        expr = expr[1:-1].strip()
    if expr.isidentifier():
        if expr not in ns:
            raise UsageError(f"{role} {expr!r} is not defined in the notebook; run the cell that "
                             "creates it first")
        return ns[expr]
    try:
        return eval(expr, ns)  # the user's own expression, in the user's own namespace
    except NameError as exc:
        raise UsageError(f"{role} {expr!r}: {exc}; run the cell that defines it first") from None
    except SyntaxError:
        raise UsageError(f"{role} {expr!r} is not a valid Python expression; quote expressions "
                         'that contain spaces, e.g. "X[:, :5]"') from None
    except Exception as exc:
        raise UsageError(f"{role} {expr!r} failed: {type(exc).__name__}: "
                         f"{one_line(str(exc))}") from None


def cell_source(shell: Any, line: str) -> str:
    """The source of the running cell when history has it, else the magic line itself."""
    try:
        current = shell.history_manager.input_hist_raw[-1]
    except (AttributeError, IndexError):
        return line
    return current if line.strip() and line.strip() in current else line


def one_line(text: str) -> str:
    """``text`` on one line (a library's message quoted in ours may span several)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def usage_errors(method: Callable) -> Callable:
    """Translate the engine's user-facing errors into one-line ``UsageError``s (a message of
    several lines, e.g. one quoting a library, is joined onto one line).

    Other exceptions are bugs and keep their traceback.
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except AimodelError as exc:
            raise UsageError(one_line(str(exc)) or type(exc).__name__) from None
        except UsageError as exc:
            text = str(exc)
            if "\n" not in text:
                raise
            raise UsageError(one_line(text)) from None

    return wrapper


def strip_comment(line: str) -> str:
    """The magic line without a trailing ``# comment`` (a ``#`` outside quotes, at the start or
    after a space), which IPython leaves in a line magic's argument string."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def parse(magic: Callable, line: str) -> Any:
    """Parse a magic's line with its ``magic_arguments``; errors point at ``%magic?``.

    An unclosed quote (shlex's ``ValueError``) is a ``UsageError`` too.
    """
    try:
        return parse_argstring(magic, strip_comment(line))
    except UsageError as exc:
        raise UsageError(f"{one_line(str(exc))}; see %{magic.__name__}? for the flags") from None
    except ValueError as exc:  # shlex: "No closing quotation", "No escaped character"
        raise UsageError(f"cannot read the line: {exc} (close every quote, and escape a "
                         f"trailing backslash); see %{magic.__name__}? for the flags") from None

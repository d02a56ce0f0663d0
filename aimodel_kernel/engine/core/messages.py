"""Messages about the user's input: one line each, a library's own message quoted shortened."""

from __future__ import annotations

from typing import Any

MAX_MESSAGE = 200  # characters of a library's message quoted in ours


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined by spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def first_line(exc: BaseException, limit: int = MAX_MESSAGE) -> str:
    """The first line of an exception's message (its type name when it has none), shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label(model: Any, name: str | None) -> str:
    """The user's name for ``model``, else its class name."""
    return name or type(model).__name__

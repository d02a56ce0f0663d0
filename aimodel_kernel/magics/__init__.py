"""IPython magics: thin parsers that resolve names, call the engine and return a report."""

from __future__ import annotations

from typing import Any


def load(ipython: Any) -> None:
    from .core import AimodelMagics
    from .lifecycle import LifecycleMagics

    ipython.register_magics(AimodelMagics)
    ipython.register_magics(LifecycleMagics)

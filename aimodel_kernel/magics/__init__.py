"""IPython magics: thin parsers that resolve names, call the engine and return a report."""

from __future__ import annotations

import importlib
from typing import Any

# (module, class) of every Magics class the extension registers (all derive from
# base.AimodelMagicsBase); each module imports only IPython and the engine's flag constants
# (engine/options.py) at load, never the engine's heavy dependencies.
MAGICS = (
    ("core", "AimodelMagics"),
    ("lifecycle", "LifecycleMagics"),
    ("fairness", "FairnessMagics"),
    ("compress", "CompressMagics"),
    ("explain", "ExplainMagics"),
    ("experiment", "ExperimentMagics"),
    ("aimodel", "NotebookMagics"),
)


def load(ipython: Any) -> None:
    for module, name in MAGICS:
        cls = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        ipython.register_magics(cls)

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
    """Register every Magics class, then schedule the warm-up of a first ``%train``'s imports
    on the kernel's event loop (``engine/store/warmup.py``: it runs while the kernel is idle,
    never during a cell; off with ``AIMODEL_WARMUP=0``). Without a running event loop (a plain
    IPython shell, a script) there is no warm-up."""
    import asyncio

    for module, name in MAGICS:
        cls = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        ipython.register_magics(cls)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    from ..engine.store import warmup

    warmup.start(loop.call_later, ("aimodel_kernel.engine.training.entry",
                                   "aimodel_kernel.display.train_report",
                                   "aimodel_kernel.widgets.kernel_status"))

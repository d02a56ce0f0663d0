"""aimodel-kernel: the whole life of a model, one line each, in a notebook.

``%load_ext aimodel_kernel`` registers the magics; nothing heavy (torch, mlflow, scikit-learn)
is imported until a magic needs it, except that in a Jupyter kernel the warm-up imports what a
first ``%train`` needs while the kernel is idle afterwards (``engine/store/warmup.py``; off with
``AIMODEL_WARMUP=0``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%train``, ``%evaluate``, ``%versions`` ... with the running IPython."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo: magics stay registered until the kernel restarts."""


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "aimodel-kernel"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "aimodel_kernel.server"}]

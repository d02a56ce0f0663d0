"""The warm-up after ``%load_ext``: a first ``%train``'s heavy imports, done while the kernel
is idle.

A first ``%train`` in a fresh kernel spends seconds importing MLflow and its SQLAlchemy stack,
opening (or creating) the store and importing skops, for a model that fits in milliseconds.
:func:`start` (called by the magics' ``load``) returns at once; the work is done afterwards,
one step at a time, by callbacks on the kernel's event loop: each step runs only when the
loop has nothing else to do (no cell running), and the loop handles waiting messages between
steps. Whatever is not done yet when a magic needs it is imported by that magic, as before.

Why not a background thread: two threads importing the same packages at once (the user's
cell imports ``mlflow`` or ``sklearn`` while a warm-up thread does) can fail in the user's
thread with ``_DeadlockError`` from CPython's per-module import locks whenever those packages
have circular imports (MLflow has: the test suite hit it). Steps on the main thread's loop
never run concurrently with a cell, so no import can race.

The steps: MLflow, its SQL stores, the migrated template (built once per machine and MLflow
version, :mod:`.creation`), opening the current store if it already exists (it never creates
one), the modules the caller names, scikit-learn and skops (without torch,
:mod:`.fast_imports`). Set ``AIMODEL_WARMUP=0`` to turn it off. A step
that fails is recorded and skipped (the magic that needs it meets the error itself, with its
traceback); a ``KeyboardInterrupt`` during a step (the stop button while the kernel looked
idle) ends the warm-up.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

ENV = "AIMODEL_WARMUP"
DELAY = 0.02
"""Seconds between steps, so the loop can handle a waiting message (a cell) in between."""
_log = logging.getLogger(__name__)

Schedule = Callable[[float, Callable[[], None]], Any]
"""Runs a callable after a delay on the kernel's event loop (``loop.call_later``)."""


def enabled() -> bool:
    """False when ``$AIMODEL_WARMUP`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class WarmUp:
    """The steps of one warm-up and how far it got.

    Parameters
    ----------
    modules : sequence of str
        Modules to import after the store's (the engine and display modules of ``%train``).
    """

    def __init__(self, modules: Sequence[str] = ()) -> None:
        self.steps: list[tuple[str, Callable[[], Any]]] = [
            ("mlflow", _call("mlflow_sqlite", "import_mlflow", "mlflow")),
            ("mlflow's tracking store", _call("mlflow_sqlite", "import_mlflow", "tracking")),
            ("mlflow's registry store", _call("mlflow_sqlite", "import_mlflow", "registry")),
            ("the template", _call("mlflow_sqlite", "prepare_template")),
            ("the store", _call("tracking", "open_existing")),
            *((name, _importer(name)) for name in modules),
            ("sklearn", _importer("sklearn")),
            ("skops", _import_skops),
        ]
        self.done = 0
        self.failed: list[str] = []
        self.stopped = False
        self.seconds = 0.0

    @property
    def finished(self) -> bool:
        return self.stopped or self.done >= len(self.steps)

    def run_next(self) -> bool:
        """Run the next step; ``True`` while steps remain."""
        if self.finished:
            return False
        name, step = self.steps[self.done]
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                step()
        except KeyboardInterrupt:
            self.stopped = True
        except Exception:
            self.failed.append(name)
            _log.debug("aimodel warm-up: %s failed", name, exc_info=True)
        finally:
            self.seconds += time.perf_counter() - t0
            self.done += 1
        return not self.finished

    def status(self) -> dict[str, Any]:
        """How far it got: ``{"steps", "done", "finished", "failed", "seconds"}``."""
        return {"steps": len(self.steps), "done": self.done, "finished": self.finished,
                "failed": list(self.failed), "seconds": self.seconds}


_current: WarmUp | None = None


def start(schedule: Schedule, modules: Sequence[str] = ()) -> WarmUp | None:
    """Schedule the warm-up's steps on the kernel's event loop, once per process.

    Parameters
    ----------
    schedule : callable
        ``schedule(delay, fn)`` runs ``fn`` on the kernel's loop after ``delay`` seconds
        (``loop.call_later``).
    modules : sequence of str
        Further modules to import after the store's.

    Returns
    -------
    WarmUp or None
        The warm-up (the same one on later calls), or ``None`` when it is turned off.
    """
    global _current
    if not enabled():
        return None
    if _current is None:
        warm = _current = WarmUp(modules)

        def tick() -> None:
            if warm.run_next():
                schedule(DELAY, tick)

        schedule(DELAY, tick)
    return _current


def status() -> dict[str, Any] | None:
    """The current warm-up's :meth:`WarmUp.status`, or ``None`` when none was started."""
    return _current.status() if _current is not None else None


def _importer(name: str) -> Callable[[], Any]:
    def run() -> Any:
        return sys.modules.get(name) or importlib.import_module(name)

    return run


def _import_skops() -> None:
    from .fast_imports import import_skops_io

    import_skops_io()


def _call(module: str, name: str, *args: Any) -> Callable[[], Any]:
    """A step calling ``name(*args)`` of the store module ``module`` (the store's modules are
    the ones importing mlflow), imported when the step runs."""
    def run() -> Any:
        from . import mlflow_sqlite, tracking

        owner = {"mlflow_sqlite": mlflow_sqlite, "tracking": tracking}[module]
        return getattr(owner, name)(*args)

    return run

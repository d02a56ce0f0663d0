"""The engine's public API: plain Python, usable from scripts and tests without a kernel.

::

    from aimodel_kernel.engine import TrainConfig, train, evaluate, load_version
    result = train(clf, X_train, y_train, TrainConfig(name="cancer-rf"))
    report = evaluate(clf, X_test, y_test)

Names are imported on first use (``import aimodel_kernel.engine`` itself is cheap: no torch,
mlflow or scikit-learn), so a script pays only for what it calls. The capability packages
(``core``, ``store``, ``training``, ``evaluation``, ``explanation``, ``fairness``,
``compression``, ``versions``) are the implementation; ``docs/architecture.md`` maps them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from .legacy import install as _install_legacy_paths

_install_legacy_paths()

_API = {
    # training
    "train": "training.entry", "TrainResult": "training.result", "TrainConfig": "core.options",
    "StopFlag": "core.events", "run_sweep": "training.sweep",
    # evaluation, explanation, fairness, compression
    "evaluate": "evaluation.metrics", "EvaluationResult": "evaluation.metrics",
    "explain": "explanation.entry", "ExplainResult": "explanation.result",
    "audit": "fairness.audits", "FairnessResult": "fairness.audits",
    "mitigate": "fairness.mitigation", "compress": "compression.entry",
    "CompressResult": "compression.result",
    # versions
    "list_versions": "store.registry", "resolve_version": "store.registry",
    "load_version": "store.registry", "promote": "store.registry",
    "diff_versions": "versions.diff", "VersionDiff": "versions.diff",
    "reproduce": "versions.reproduce", "ReproduceResult": "versions.reproduce",
    "freeze": "versions.lock", "check_lock": "versions.lock",
    # errors
    "AimodelError": "core.errors", "InputError": "core.errors", "NotFoundError": "core.errors",
    "ChecksumError": "core.errors", "MissingDependency": "core.errors",
}
_RENAMED = {"resolve_version": "resolve", "check_lock": "check"}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_API[name]}"), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _PublicNames(types.ModuleType):
    """Keeps ``engine.explain`` and ``engine.compress`` the functions: importing the old module
    paths of the same names (``aimodel_kernel.engine.explain``, kept by :mod:`.legacy`) would
    otherwise set the package attribute to that module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # the module stays importable through sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _PublicNames

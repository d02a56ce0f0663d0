"""The engine's module paths before it moved into capability packages, kept for one release.

Two kinds of file written before the move name those paths: skops model files (a mitigated
model is ``aimodel_kernel.engine.fair_models.GroupThresholdClassifier`` there) and the job files
of ``--export-script`` (cloudpickle refers to ``aimodel_kernel.engine.dist_worker.WorkerJob``,
and the script itself imports ``aimodel_kernel.engine.dist_worker``). :class:`MovedModules`, a
meta path finder installed when :mod:`aimodel_kernel.engine` is imported, answers an import of an
old path with a thin module that forwards every attribute to the new one, so such files keep
loading. It answers only the names in :data:`MOVED`; a new name never goes through it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

ENGINE = "aimodel_kernel.engine"

MOVED = {
    "errors": "core.errors", "events": "core.events", "data": "core.data", "plain": "core.plain",
    "options": "core.options", "prediction": "core.prediction", "links": "core.links",
    "tracking": "store.tracking", "records": "store.records",
    "serialize": "store.serialize",
    "sklearn_training": "training.fit", "torch_training": "training.torch_job",
    "torch_loop": "training.loop", "checkpoints": "training.checkpoints", "sweep": "training.sweep",
    "trial": "training.trial", "distributed": "training.distributed.launch",
    "multinode": "training.distributed.nodes", "worker_pool": "training.distributed.pool",
    "dist_worker": "training.distributed.worker", "dist_data": "training.distributed.data",
    "export_script": "training.distributed.export",
    "explain": "explanation.entry", "compress": "compression.entry",
    "explainers": "explanation.choice", "explain_inputs": "explanation.inputs",
    "shap_values": "explanation.shap_values", "explain_lime": "explanation.lime_values",
    "explain_record": "explanation.record",
    "fairness_ci": "fairness.intervals", "groups": "fairness.groups",
    "mitigation": "fairness.mitigation", "fair_models": "fairness.mitigated_models",
    "synthetic": "fairness.synthetic", "datasets": "fairness.datasets",
    "compress_checks": "compression.checks", "compress_result": "compression.result",
    "compress_record": "compression.record", "pruning": "compression.pruning",
    "onnx_export": "compression.onnx_export", "latency": "compression.latency",
    "diff": "versions.diff", "changes": "versions.changes", "deltas": "versions.deltas",
    "flips": "versions.flips", "reproduce": "versions.reproduce", "freeze": "versions.lock",
}
"""Old module (under ``aimodel_kernel.engine``) -> its new place. ``training``, ``evaluation``,
``fairness`` and ``versions`` were modules and are packages now: those packages forward the old
modules' names themselves (:func:`forwarder`; ``versions`` to ``store.registry``)."""


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``aimodel_kernel.engine.<old>`` as a forwarder to its new module."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix = ENGINE + "."
        if fullname.startswith(prefix) and fullname[len(prefix):] in MOVED:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        return types.ModuleType(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        new = importlib.import_module(f"{ENGINE}.{MOVED[module.__name__[len(ENGINE) + 1:]]}")

        def forward(name: str) -> Any:
            return getattr(new, name)

        module.__getattr__ = forward  # type: ignore[attr-defined]
        module.__doc__ = f"Moved to :mod:`{new.__name__}` (this name is kept for old files)."
        module.__dict__["__moved_to__"] = new.__name__


def install() -> None:
    """Put :class:`MovedModules` at the end of ``sys.meta_path`` (once)."""
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())


def forwarder(package: str, module: str) -> Any:
    """A module ``__getattr__`` for a package that was a module: ``package.<name>`` (an old
    import such as ``from aimodel_kernel.engine.training import train``) is read from
    ``module``, relative to ``package`` (``"entry"``, ``"..store.registry"``)."""

    def forward(name: str) -> Any:
        if name.startswith("__") or importlib.util.find_spec(f"{package}.{name}") is not None:
            raise AttributeError(name)  # a dunder, or a submodule not imported yet
        relative = module if module.startswith(".") else f".{module}"
        return getattr(importlib.import_module(relative, package), name)

    return forward

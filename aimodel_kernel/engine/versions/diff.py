"""``diff_versions``: what changed between two model versions, and what it did to their behaviour.

MLflow's run comparison puts values side by side; this is a diff. *What changed*: parameters,
code (unified diff of the magic line and cell), training data, package versions, lineage. *What
it did*: metric deltas (with bootstrap intervals), per-class and confusion changes, and, given
rows ``X``, the predictions that flipped, plus explanation, fairness and compression shifts when
both versions recorded them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

from ...config import Settings
from ..core.data import allows_nan
from ..core.errors import ChecksumError, InputError, NotFoundError
from ..core.inputs import check_model_input, first_line, one_line
from ..core.memory import releases_memory
from ..core.plain import jsonable
from ..core.prediction import predict
from ..store.artifacts import MODEL_DIR
from ..store.registry import load_version, resolve
from ..store.serialize import verify
from ..store.tracking import get_store
from . import flips
from .changes import (
    Side,
    code_changes,
    data_changes,
    environment_changes,
    lineage,
    model_size_change,
    param_changes,
    side_of,
)
from .deltas import (
    compression_deltas,
    evaluation_deltas,
    fairness_deltas,
    headline,
    importance_shift,
    metric_deltas,
)
from .flips import flip_text


@dataclass
class VersionDiff:
    """The difference between version ``a`` (before) and version ``b`` (after).

    Every field is plain data (see :meth:`to_dict`). Sections that do not apply are empty or
    ``None``; ``timings`` holds the seconds spent loading, predicting and comparing.
    """

    a: str
    b: str
    run_id_a: str
    run_id_b: str
    summary: str = ""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    code: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, dict[str, Any]] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_class: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    confusion: dict[str, Any] | None = None
    flips: dict[str, Any] | None = None
    importance: dict[str, Any] | None = None
    fairness: dict[str, dict[str, Any]] | None = None
    compression: dict[str, Any] | None = None
    model_size: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    logged_to: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (NaN becomes ``None``)."""
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})



# -- one side --------------------------------------------------------------------------------


def _verify(side: Side) -> None:
    expected = side.checksums()
    if not expected:
        return
    directory = side.files.path(MODEL_DIR)
    if directory is None:
        raise ChecksumError(f"{side.ref}: its model files are missing from the store")
    try:
        verify(directory, expected)
    except ChecksumError as exc:
        raise ChecksumError(f"{side.ref}: {exc}") from None


# -- what changed ------------------------------------------------------------------------------


# -- what it did -------------------------------------------------------------------------------


# -- predictions -------------------------------------------------------------------------------
def _load(side: Side, settings: Settings | None) -> Any:
    try:
        return load_version(side.ref, settings=settings)
    except ChecksumError as exc:
        raise ChecksumError(f"{side.ref}: {exc}") from None
    except NotFoundError:
        raise
    except InputError as exc:  # e.g. a PyTorch version saved without an exported program
        raise InputError(f"{side.ref}: {exc}") from None


def _in_terms_of(side: Side, exc: Exception) -> InputError:
    """``exc`` as a one-line error that names the version (ours whole, a library's first
    line)."""
    text = one_line(str(exc)) if isinstance(exc, InputError) else first_line(exc)
    if text.startswith(side.ref):
        return InputError(text)
    return InputError(f"{side.ref} cannot predict on X: {text}")


def _check_model(model: Any, side: Side, data: Any) -> None:
    """The loaded version against the rows, before it predicts (one-line errors)."""
    try:
        check_model_input(model, data, name=side.ref, x_name="X")
    except InputError as exc:
        raise _in_terms_of(side, exc) from None


def _predict(model: Any, side: Side, X: Any) -> Any:
    try:
        return predict(model, X, task=side.task, name=side.ref)
    except InputError as exc:
        raise _in_terms_of(side, exc) from None
    except ValueError as exc:  # scikit-learn's own check of the input
        raise _in_terms_of(side, exc) from None


def _flips(a: Side, b: Side, X: Any, y: Any, settings: Settings | None,
           timings: dict[str, float]) -> dict[str, Any]:
    """Check ``X``/``y`` against both versions, load both models, predict and compare."""
    if X is None:
        raise InputError("y was given without X: pass the rows to predict on as well")
    flips.check_tasks(a.ref, a.task, b.ref, b.task)
    numeric = "torch" in (a.framework, b.framework)
    data = flips.check_rows(X, y, numeric=numeric, allow_nan=True)
    for side in (a, b):
        flips.check_features(data.X, side.ref, side.fingerprint)
    start = time.perf_counter()
    models = [_load(side, settings) for side in (a, b)]
    if data.kind in ("array", "frame") and not all(allows_nan(m) for m in models):
        flips.check_rows(X, y, numeric=numeric, allow_nan=False)
    for model, side in zip(models, (a, b), strict=True):
        _check_model(model, side, data)
    timings["load"] += time.perf_counter() - start
    start = time.perf_counter()
    pred_a, pred_b = (_predict(m, side, data.X) for m, side in zip(models, (a, b), strict=True))
    timings["predict"] = time.perf_counter() - start
    return flips.compare_predictions(pred_a.y_pred, pred_b.y_pred, pred_a.task, pred_b.task,
                                     data.y)


# -- summary and logging -----------------------------------------------------------------------
def summarize(diff: VersionDiff) -> str:
    """The one-line summary: headline metric delta, flips, importance shift, what changed."""
    parts = [p for p in (
        headline(diff.metrics),
        flip_text(diff.flips) if diff.flips else None,
        (diff.importance or {}).get("headline"),
    ) if p]
    n_params = len(diff.params)
    if n_params:
        parts.append(f"{n_params} parameter{'s' * (n_params != 1)} changed")
    if diff.data and not diff.data.get("same"):
        parts.append("different training data")
    if diff.run_id_a == diff.run_id_b:
        parts = ["the same run"]
    return f"{diff.b} vs {diff.a}: " + (", ".join(parts) if parts else "no recorded differences")


def artifact_path(ref_a: str, ref_b: str) -> str:
    """``diffs/<a>_vs_<b>.json`` with the refs' slashes replaced."""
    return f"diffs/{ref_a.replace('/', '_')}_vs_{ref_b.replace('/', '_')}.json"


# -- entry point -------------------------------------------------------------------------------
@releases_memory
def diff_versions(
    ref_a: str, ref_b: str, *, X: Any = None, y: Any = None, settings: Settings | None = None,
    log: bool = True,
) -> VersionDiff:
    """What changed from version ``ref_a`` to ``ref_b``, and what it did to the model.

    Parameters
    ----------
    ref_a, ref_b : str
        ``NAME/VERSION``, ``NAME@ALIAS`` or ``NAME`` (newest), of the same or different
        registered models; ``a`` is the "before" side.
    X : array-like, DataFrame, sparse matrix, tensor, Dataset or DataLoader, optional
        Rows to predict on with both versions (loaded pickle-free, SHA-256 verified): the
        prediction flips.
    y : array-like, optional
        True targets of ``X``: which flips fixed and which broke a correct prediction.
    settings : Settings, optional
        Store location; the process-wide settings by default.
    log : bool
        Log the diff as artifact ``diffs/<a>_vs_<b>.json`` on version ``b``'s run.

    Returns
    -------
    VersionDiff

    Raises
    ------
    NotFoundError
        An unknown model or version.
    ChecksumError
        A model file was changed after it was recorded.
    InputError
        ``X`` whose columns or feature shape differ from what a version was trained on, ``y``
        of another length than ``X``, or a classifier compared with a regressor on ``X``.

    Examples
    --------
    >>> d = diff_versions("digits-mlp/3", "digits-mlp/5", X=X_test, y=y_test)  # doctest: +SKIP
    >>> d.summary  # doctest: +SKIP
    'digits-mlp/5 vs digits-mlp/3: accuracy +1.2 pt, 37 of 360 predictions flipped (29 fixed, ...'
    """
    timings = {"load": 0.0, "predict": 0.0, "compare": 0.0}
    start = time.perf_counter()
    store = get_store(settings)
    record_a, record_b = resolve(ref_a, settings=settings), resolve(ref_b, settings=settings)
    notes: list[str] = []
    a, b = side_of(record_a, store, notes), side_of(record_b, store, notes)
    if X is None and y is None:
        for side in (a, b):
            _verify(side)
    timings["load"] = time.perf_counter() - start

    diff = VersionDiff(a.ref, b.ref, record_a.run_id, record_b.run_id, notes=notes,
                       timings=timings)
    if X is not None or y is not None:
        diff.flips = _flips(a, b, X, y, settings, timings)
    start = time.perf_counter()
    diff.params = param_changes(a, b)
    diff.code = code_changes(a, b)
    diff.data = data_changes(a, b)
    diff.environment = environment_changes(a, b, notes)
    diff.lineage = lineage(a, b, store)
    diff.metrics = metric_deltas(a.record.metrics, b.record.metrics, a.art["evaluation"],
                                 b.art["evaluation"])
    diff.per_class, diff.confusion = evaluation_deltas(a.ref, a.art["evaluation"], b.ref,
                                                       b.art["evaluation"], notes)
    if a.art["importance"] and b.art["importance"]:
        diff.importance = importance_shift(a.art["importance"], b.art["importance"])
        if diff.importance is None:
            notes.append("an explain/importance.json is malformed: importance shift left out")
    diff.fairness = fairness_deltas(a.art["fairness"], b.art["fairness"])
    diff.compression = compression_deltas(a.art["compression"], b.art["compression"])
    diff.model_size = model_size_change(a, b)
    diff.summary = summarize(diff)
    timings["compare"] = time.perf_counter() - start
    if log:
        start = time.perf_counter()
        diff.logged_to = artifact_path(a.ref, b.ref)
        store.log_dict(record_b.run_id, diff.to_dict(), diff.logged_to)
        timings["log"] = time.perf_counter() - start
    return diff

"""Re-running a recorded training from its record and checking that the result is the same."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...config import Settings
from ..core.data import check_data, fingerprint
from ..core.errors import InputError
from ..core.events import EventCallback, ignore_event
from ..core.metric_names import MACHINE_METRICS
from ..core.options import TrainConfig
from ..store.artifacts import MODEL_DIR, SOURCE_CELL
from ..store.registry import load_version, resolve
from ..store.serialize import WEIGHTS_FILE, framework_of, verify
from ..store.tracking import TAG, VersionRecord, get_store
from ..training.torch_plan import INITIAL_WEIGHTS

# metrics that measure the machine, not the model


@dataclass
class ReproduceResult:
    """How a reproduction of ``original`` compares with it."""

    original: str
    reproduction: str | None
    run_id: str
    identical_weights: bool
    max_weight_difference: float
    identical_metrics: bool
    metric_differences: dict[str, tuple[float, float]] = field(default_factory=dict)
    tolerance: float = 0.0
    deterministic: bool = False
    notes: list[str] = field(default_factory=list)
    diff: Any = None

    @property
    def verdict(self) -> str:
        if self.identical_weights and self.identical_metrics:
            return "reproduced: identical weights, identical metrics"
        if self.max_weight_difference <= self.tolerance and not self.metric_differences:
            return (f"reproduced within tolerance: weights differ by at most "
                    f"{self.max_weight_difference:.3g} (tolerance {self.tolerance:g})")
        worst = ", ".join(f"{k} {a:.6g} -> {b:.6g}"
                          for k, (a, b) in list(self.metric_differences.items())[:3])
        return (f"not reproduced: weights differ by up to {self.max_weight_difference:.3g}"
                + (f"; {worst}" if worst else ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original, "reproduction": self.reproduction, "run_id": self.run_id,
            "identical_weights": self.identical_weights,
            "max_weight_difference": self.max_weight_difference,
            "identical_metrics": self.identical_metrics,
            "metric_differences": {k: list(v) for k, v in self.metric_differences.items()},
            "tolerance": self.tolerance, "deterministic": self.deterministic,
            "verdict": self.verdict, "notes": self.notes,
            "diff": self.diff.to_dict() if self.diff is not None else None,
        }


def recorded_config(record: VersionRecord, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` a version was trained with, from its ``train.*`` parameters."""
    known = set(TrainConfig.field_names())
    values = {
        key[len("train."):]: json.loads(value)
        for key, value in record.params.items()
        if key.startswith("train.") and key[len("train."):] in known
    }
    values.update(resume=None, **overrides)
    return TrainConfig(**values)


def check_same_data(record: VersionRecord, X: Any, y: Any) -> None:
    """Refuse data whose fingerprint differs from the one the version was trained on."""
    data = check_data(X, y, numeric=False, allow_nan=True)
    ours = fingerprint(data)["sha256"]
    theirs = record.run_tags.get(f"{TAG}data.sha256", "")
    if ours != theirs:
        raise InputError(
            f"this data is not what {record.ref} was trained on (fingerprint {ours[:10]}… vs "
            f"{theirs[:10]}…); pass the same X and y to reproduce it"
        )


def reproduce(
    ref: str,
    X: Any,
    y: Any = None,
    *,
    model: Any = None,
    name: str | None = None,
    on_event: EventCallback = ignore_event,
    settings: Settings | None = None,
    source: dict[str, str] | None = None,
    tolerance: float = 1e-6,
) -> ReproduceResult:
    """Retrain version ``ref`` from its record into a new version and compare the two.

    Parameters
    ----------
    ref : str
        ``NAME/VERSION`` or ``NAME@ALIAS`` to reproduce.
    X, y
        The training data; its fingerprint must match the recorded one.
    model : torch.nn.Module, optional
        For PyTorch versions: a module of the same architecture (it is copied, never changed);
        the recorded initial weights are loaded into the copy. scikit-learn versions rebuild the
        estimator from the stored one.
    name : str, optional
        Registered model for the new version (the original's by default).
    source : dict, optional
        ``{"line": ...}`` of the ``%reproduce`` call, kept as a tag; the new version records
        the original's code, since that is what ran.
    tolerance : float
        Largest absolute weight difference accepted as reproduced when not identical.

    Returns
    -------
    ReproduceResult
    """
    from ..training.entry import train

    record = resolve(ref, settings=settings)
    check_same_data(record, X, y)
    framework = record.run_tags.get(f"{TAG}framework", "")
    original = load_version(record.ref, settings=settings) if framework == "sklearn" else None
    fresh = _fresh_model(record, framework, original, model, settings)
    # every recorded file is checked before anything is trained or recorded
    theirs = _recorded_weights(record, settings) if framework == "torch" else None
    config = recorded_config(record, name=name or record.name)
    tags = {f"{TAG}reproduces": record.ref}
    if source and source.get("line"):
        tags[f"{TAG}reproduced_by"] = source["line"]
    result = train(fresh, X, y, config, on_event=on_event,
                   source=_recorded_source(record, settings), settings=settings,
                   parent=record.ref, tags=tags)
    if framework == "torch":
        max_diff = _torch_weight_difference(fresh, theirs)
    else:
        max_diff = 0.0 if same_state(fresh, original) else float("inf")
    differences = {
        key: (record.metrics[key], result.metrics[key])
        for key in sorted(set(record.metrics) & set(result.metrics))
        if not key.startswith("eval.") and key not in MACHINE_METRICS
        and not _same_number(record.metrics[key], result.metrics[key])
    }
    return ReproduceResult(
        original=record.ref, reproduction=result.ref, run_id=result.run_id,
        identical_weights=max_diff == 0.0, max_weight_difference=max_diff,
        identical_metrics=not differences, metric_differences=differences,
        tolerance=tolerance, deterministic=config.deterministic,
        notes=[] if config.deterministic or framework != "torch" else [
            f"{record.ref} was not trained with --deterministic; small differences are expected"
        ],
    )


def _recorded_source(record: VersionRecord, settings: Settings | None) -> dict[str, str]:
    """The original's magic line and cell: the reproduction runs the same code."""
    line = record.run_tags.get(f"{TAG}magic", "")
    cell = get_store(settings).artifact(record.run_id, SOURCE_CELL)
    return {"line": line, "cell": cell.read_text() if cell is not None else line}


def _fresh_model(record: VersionRecord, framework: str, original: Any, model: Any,
                 settings: Settings | None) -> Any:
    if framework == "sklearn":
        from sklearn.base import clone

        return clone(original)
    if model is None:
        raise InputError(f"{record.ref} is a PyTorch model: pass a module of the same "
                         "architecture (its class must be defined in the notebook)")
    if framework_of(model) != "torch":
        raise InputError(f"{record.ref} is a PyTorch model; {type(model).__name__} is not a "
                         "torch.nn.Module")
    from safetensors.torch import load_file

    expected = record.run_tags.get(f"{TAG}sha256.{INITIAL_WEIGHTS}")
    if not expected:
        raise InputError(f"{record.ref} has no recorded initial weights; it cannot be retrained "
                         "from the same start")
    directory = get_store(settings).download(record.run_id, MODEL_DIR)
    verify(directory, _checksums(record))
    fresh = copy.deepcopy(model)
    try:
        fresh.load_state_dict(load_file(str(directory / INITIAL_WEIGHTS)))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{type(model).__name__} does not have the architecture of "
                         f"{record.ref}: {first}") from None
    return fresh


def _checksums(record: VersionRecord) -> dict[str, str]:
    """File name to recorded SHA-256 for every model file of a version."""
    prefix = f"{TAG}sha256."
    return {key[len(prefix):]: value for key, value in record.run_tags.items()
            if key.startswith(prefix)}


def _recorded_weights(record: VersionRecord, settings: Settings | None) -> dict[str, Any]:
    """The trained weights stored with a version, after checking their SHA-256."""
    from safetensors.torch import load_file

    directory = get_store(settings).download(record.run_id, MODEL_DIR)
    verify(directory, {WEIGHTS_FILE: record.run_tags[f"{TAG}sha256.{WEIGHTS_FILE}"]})
    return load_file(str(directory / WEIGHTS_FILE))


def _torch_weight_difference(fresh: Any, theirs: dict[str, Any]) -> float:
    """The largest absolute difference between two sets of weights (inf if they don't match)."""
    state = fresh.state_dict()
    if state.keys() != theirs.keys():
        return float("inf")
    worst = 0.0
    for key, value in state.items():
        other = theirs[key]
        if other.shape != value.shape:
            return float("inf")
        worst = max(worst, float((value.detach().cpu() - other.detach().cpu()).abs().max())
                    if value.numel() else 0.0)
    return worst


def _same_number(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def same_state(a: Any, b: Any) -> bool:
    """Whether two fitted estimators hold identical state (arrays compared exactly)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_state(x, z) for x, z in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b
    if isinstance(a, int | float | str | bytes | bool | type(None) | np.generic):
        return bool(a == b)
    state_a, state_b = a.__getstate__(), b.__getstate__()  # estimators, trees, plain objects
    if isinstance(state_a, dict | list | tuple):
        return same_state(state_a, state_b)
    return bool(a == b)

"""Re-running a recorded training from its record and checking that the result is the same."""

from __future__ import annotations

import cmath
import copy
import functools
import json
import math
import numbers
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...config import Settings
from ..core.data import check_data, fingerprint
from ..core.errors import InputError
from ..core.events import EventCallback, ignore_event
from ..core.memory import releases_memory
from ..core.metric_names import MACHINE_METRICS
from ..core.options import TrainConfig
from ..store import hf_architecture
from ..store.artifacts import SOURCE_CELL
from ..store.recorder import Recording
from ..store.records import model_params
from ..store.registry import checked_model_dir, load_version, resolve
from ..store.serialize import WEIGHTS_FILE, SavedModel, framework_of, read_manifest
from ..store.tracking import TAG, VersionRecord, get_store
from ..training.torch_plan import INITIAL_WEIGHTS


@dataclass
class Difference:
    """One way the retrained model's state differs from the original's.

    Attributes
    ----------
    path : str
        Where: an attribute path such as ``coef_``, ``steps[rf].estimators_[3].tree_.nodes.
        threshold`` or, for PyTorch, a ``state_dict`` key; ``""`` for the model itself.
    text : str
        How, in words: ``"differs by up to 3.2e-05"``, ``"differs (12 vs 14)"`` (original
        first), ``"only in the original"`` ...
    magnitude : float or None
        The largest absolute difference when numbers differ by degree; ``None`` when the
        difference is not one of degree (counts, shapes, categories, types), which no
        tolerance accepts.
    """

    path: str
    text: str
    magnitude: float | None = None

    def __str__(self) -> str:
        return f"{self.path} {self.text}" if self.path else f"the model {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "text": self.text, "magnitude": self.magnitude}


@dataclass
class ReproduceResult:
    """How a reproduction of ``original`` compares with it.

    ``reproduction`` is the registered version (``NAME/V``) when the retrained model
    reproduced the original, and ``None`` otherwise: a failed reproduction registers nothing
    (its run, ``run_id``, is kept and tagged ``aimodel.reproduced=false``).
    """

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
    differences: list[Difference] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        """Identical, or weights within ``tolerance`` with no other difference."""
        if self.metric_differences:
            return False
        if self.identical_weights:
            return True
        return (self.max_weight_difference <= self.tolerance
                and all(d.magnitude is not None for d in self.differences))

    @property
    def verdict(self) -> str:
        if self.identical_weights and self.identical_metrics:
            return "reproduced: identical weights, identical metrics"
        if self.reproduced:
            return (f"reproduced within tolerance: weights differ by at most "
                    f"{self.max_weight_difference:.3g} (tolerance {self.tolerance:g})")
        worst = ", ".join(f"{k} {a:.6g} -> {b:.6g}"
                          for k, (a, b) in list(self.metric_differences.items())[:3])
        if self.differences:
            what = describe(self.differences)
        elif self.identical_weights:
            what = "identical weights"
        else:
            what = f"weights differ by up to {self.max_weight_difference:.3g}"
        return f"not reproduced: {what}" + (f"; {worst}" if worst else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original, "reproduction": self.reproduction, "run_id": self.run_id,
            "reproduced": self.reproduced,
            "identical_weights": self.identical_weights,
            "max_weight_difference": self.max_weight_difference,
            "identical_metrics": self.identical_metrics,
            "metric_differences": {k: list(v) for k, v in self.metric_differences.items()},
            "differences": [d.to_dict() for d in self.differences],
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
    values.update(resume=None, export_script=None, **overrides)  # retrain, here
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


@releases_memory
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
    """Retrain version ``ref`` from its record and compare the result with it.

    The new version is registered only when the retrained model reproduces the original
    (identical, or weights within ``tolerance``). Anything else registers nothing: a refusal
    before training starts no run; a retrained model that differs keeps its run (FINISHED,
    tagged ``aimodel.reproduced=false``) and the result says in words what differs; an
    exception after training started ends the run FAILED.

    Parameters
    ----------
    ref : str
        ``NAME/VERSION`` or ``NAME@ALIAS`` to reproduce.
    X, y
        The training data; its fingerprint must match the recorded one.
    model : estimator or torch.nn.Module, optional
        PyTorch versions need a module of the same architecture (it is copied, never
        changed); the recorded initial weights are loaded into the copy. scikit-learn
        versions retrain a clone of the stored estimator, or of ``model`` (an estimator of the
        same class, e.g. the notebook's definition, never changed) when given.
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

    Raises
    ------
    InputError
        Other data than the version's, a model that does not fit the record, a version that
        cannot be retrained the same way, a bad ``name`` or ``tolerance``; nothing is recorded.
    """
    from ..training.entry import train

    if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"--tolerance must be a number >= 0, not {tolerance!r}")
    record = resolve(ref, settings=settings)
    target = name or record.name
    recorded = recorded_config(record, name=target)  # checks the name before training
    check_same_data(record, X, y)
    framework = record.run_tags.get(f"{TAG}framework", "")
    original = load_version(record.ref, settings=settings) if framework == "sklearn" else None
    fresh = _fresh_model(record, framework, original, model, settings)
    # every recorded file is checked before anything is trained or recorded
    theirs = _recorded_weights(record, settings) if framework == "torch" else None
    notes = (_parameter_notes(record, fresh, recorded, given=model is not None)
             if framework == "sklearn" else [])
    # the version is registered below, once the comparison says it matches
    config = recorded
    tags = {f"{TAG}reproduces": record.ref}
    if source and source.get("line"):
        tags[f"{TAG}reproduced_by"] = source["line"]
    result = train(fresh, X, y, config, on_event=on_event,
                   source=_recorded_source(record, settings), settings=settings,
                   parent=record.ref, tags=tags, register=False)
    store = get_store(settings)
    try:
        out = _compare(record, result, framework, fresh, original, theirs, recorded,
                       tolerance, notes)
        if out.reproduced:
            out.reproduction = _register(store, result, record, target)
        else:
            out.notes.append(f"nothing was registered; the retrained model is in run "
                             f"{result.run_id}")
        store.set_tags(result.run_id, {f"{TAG}reproduced": str(out.reproduced).lower(),
                                       f"{TAG}reproduction_verdict": out.verdict})
    except BaseException:
        store.end_run(result.run_id, "FAILED")  # no version, nothing left RUNNING
        raise
    return out


def _compare(record: VersionRecord, result: Any, framework: str, fresh: Any, original: Any,
             theirs: dict[str, Any] | None, config: TrainConfig, tolerance: float,
             notes: list[str]) -> ReproduceResult:
    """The retrained model (and its metrics) against the original's record."""
    if result.status != "finished":
        differences = [Difference("", f"was not retrained: training was {result.status}")]
    elif framework == "torch":
        differences = _torch_differences(theirs, fresh)
    else:
        differences = compare_state(original, fresh)
    metrics = {
        key: (record.metrics[key], result.metrics[key])
        for key in sorted(set(record.metrics) & set(result.metrics))
        if not key.startswith("eval.") and key not in MACHINE_METRICS
        and not _same_number(record.metrics[key], result.metrics[key])
    }
    magnitudes = [d.magnitude for d in differences if d.magnitude is not None]
    if framework == "torch" and not config.deterministic:
        notes = [*notes, f"{record.ref} was not trained with --deterministic; small "
                         "differences are expected"]
    return ReproduceResult(
        original=record.ref, reproduction=None, run_id=result.run_id,
        identical_weights=not differences, max_weight_difference=max(magnitudes, default=0.0),
        identical_metrics=not metrics, metric_differences=metrics, tolerance=float(tolerance),
        deterministic=config.deterministic, notes=notes, differences=differences,
    )


def _register(store: Any, result: Any, record: VersionRecord, target: str) -> str:
    """Register the finished reproduction run's model files as a version of ``target``.

    Training saved and digested them on the run; the version records the same digests (and
    signer) as a version registered by the training itself would.
    """
    run_tags = store.run(result.run_id).data.tags
    prefix = f"{TAG}sha256."
    digests = {k[len(prefix):]: v for k, v in run_tags.items() if k.startswith(prefix)}
    recording = Recording(store, result.run_id)
    recording.saved = SavedModel(directory=Path(), checksums=digests, manifest={},
                                 signed_by=run_tags.get(f"{TAG}signed_by"))
    version = recording.register(target, task=result.task.task, parent=record.ref,
                                 data_sha256=result.fingerprint.get("sha256"))
    store.set_tags(result.run_id, {f"{TAG}name": target, "mlflow.runName": target})
    return f"{target}/{version}"


def _parameter_notes(record: VersionRecord, fresh: Any, config: TrainConfig, *,
                     given: bool) -> list[str]:
    """Check the parameters the retraining will use against the recorded ``model.*`` ones.

    A ``random_state`` recorded as ``None`` (versions trained before ``%train`` applied its
    seed) is refused: the retraining would be seeded, the original was not. Other differences
    (an estimator given as ``model``, a library that added parameters) are noted.
    """
    from ..training.fit import planned_params

    planned = planned_params(fresh, config, int(config.seed or 0))
    now = model_params(fresh, "sklearn", planned)
    then = {k: v for k, v in record.params.items() if k.startswith("model.")}
    unseeded = [k for k in sorted(planned) if k.split("__")[-1] == "random_state"
                and then.get(f"model.{k}") == "null"]
    if unseeded:
        raise InputError(
            f"{record.ref} was trained with {', '.join(unseeded)}=None, before %train applied "
            "its seed, so its random draws cannot be repeated; train it again and reproduce "
            "the new version")
    notes = []
    if given:
        notes.append(f"retrained the given {type(fresh).__name__}, not the stored estimator")
    changed = [f"{k[len('model.'):]} {then[k]} -> {now[k]}" for k in sorted(set(then) & set(now))
               if not _same_text(then[k], now[k])]
    only_then = sorted(k[len("model."):] for k in set(then) - set(now))
    only_now = sorted(k[len("model."):] for k in set(now) - set(then))
    if changed:
        notes.append("parameters differ from the record: " + _some(changed))
    if only_then:
        notes.append("parameters recorded but not on this estimator: " + _some(only_then))
    if only_now:
        notes.append("parameters this estimator has and the record lacks: " + _some(only_now))
    states = fresh.get_params(deep=True) if hasattr(fresh, "get_params") else {}
    drawn = [k for k, v in states.items() if k.split("__")[-1] == "random_state"
             and v is not None and not isinstance(v, int | np.integer)]
    if drawn:
        notes.append(f"{', '.join(drawn)} is a {type(states[drawn[0]]).__name__} whose state "
                     "before training was not recorded: a fit that draws from it is not "
                     "repeated exactly (an integer random_state is)")
    return notes


def _same_text(recorded: str, now: str) -> bool:
    """A recorded parameter text (clipped to MLflow's length limit with "…") matches ``now``."""
    return recorded == now or (recorded.endswith("…") and now.startswith(recorded[:-1]))


def _some(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _recorded_source(record: VersionRecord, settings: Settings | None) -> dict[str, str]:
    """The original's magic line and cell: the reproduction runs the same code."""
    line = record.run_tags.get(f"{TAG}magic", "")
    cell = get_store(settings).artifact(record.run_id, SOURCE_CELL)
    return {"line": line, "cell": cell.read_text() if cell is not None else line}


def _fresh_model(record: VersionRecord, framework: str, original: Any, model: Any,
                 settings: Settings | None) -> Any:
    if framework == "sklearn":
        from sklearn.base import clone

        if model is None:
            return clone(original)
        if type(model) is not type(original):
            raise InputError(f"{record.ref} is a {type(original).__name__}; pass an estimator "
                             f"of that class, not a {type(model).__name__}")
        return clone(model)
    if model is not None and framework_of(model) != "torch":
        raise InputError(f"{record.ref} is a PyTorch model; {type(model).__name__} is not a "
                         "torch.nn.Module")
    from safetensors.torch import load_file

    expected = record.run_tags.get(f"{TAG}sha256.{INITIAL_WEIGHTS}")
    if not expected:
        raise InputError(f"{record.ref} has no recorded initial weights; it cannot be retrained "
                         "from the same start")
    directory = checked_model_dir(record, settings=settings)  # digests, manifest, signature
    if model is None:  # a Hugging Face model is rebuilt from its recorded architecture
        manifest = read_manifest(directory)
        if hf_architecture.KEY not in manifest:
            raise InputError(f"{record.ref} is a PyTorch model: pass a module of the same "
                             "architecture (its class must be defined in the notebook)")
        model = hf_architecture.build_module(manifest[hf_architecture.KEY])
    fresh = copy.deepcopy(model)
    try:
        fresh.load_state_dict(load_file(str(directory / INITIAL_WEIGHTS)))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{type(model).__name__} does not have the architecture of "
                         f"{record.ref}: {first}") from None
    return fresh


def _recorded_weights(record: VersionRecord, settings: Settings | None) -> dict[str, Any]:
    """The trained weights stored with a version, after every check loading makes."""
    from safetensors.torch import load_file

    directory = checked_model_dir(record, settings=settings)  # digests, manifest, signature
    return load_file(str(directory / WEIGHTS_FILE))


def _torch_differences(theirs: dict[str, Any], fresh: Any) -> list[Difference]:
    """How a retrained module's ``state_dict`` differs from the recorded weights."""
    ours = fresh.state_dict()
    out = [Difference(k, "only in the original") for k in theirs if k not in ours]
    out += [Difference(k, "only in the retrained model") for k in ours if k not in theirs]
    for key, value in ours.items():
        if key in theirs:
            _compare_values(_tensor_array(theirs[key]), _tensor_array(value), key, out, {})
    return out


def _tensor_array(tensor: Any) -> np.ndarray:
    value = tensor.detach().cpu()
    try:
        return value.numpy()
    except TypeError:  # bfloat16 and other types numpy lacks
        return value.float().numpy()


def _same_number(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


# -- comparing fitted state ---------------------------------------------------------------------
MACHINE_ATTRIBUTES = frozenset({
    "refit_time_", "mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time",
})
"""Attributes and ``cv_results_`` keys that time the machine, not the fit: not compared."""

_SHOWN_VALUES = 4  # arrays up to this size show their values in a difference


Seen = dict[tuple[int, int], tuple[Any, Any]]
"""Pairs already compared (cycles, shared objects), by id, holding both objects."""


def compare_state(a: Any, b: Any) -> list[Difference]:
    """How the fitted state of ``b`` differs from that of ``a``, in words.

    Walks any estimator (pipelines, column transformers, ensembles, nested estimators),
    its parameters and fitted attributes: arrays (numbers, strings, objects such as a
    ``OneHotEncoder``'s ``categories_``, structured tree nodes), sparse matrices, dicts,
    lists, tuples, random states, classes, functions and plain objects (by their
    ``__getstate__``). Floats are equal when equal or both NaN; timings
    (:data:`MACHINE_ATTRIBUTES`) are skipped.

    Parameters
    ----------
    a, b : object
        The original and the retrained model.

    Returns
    -------
    list of Difference
        Empty when the two hold the same state. Paths read like attribute access
        (``steps[logisticregression].coef_``); texts name the original's value first.
    """
    out: list[Difference] = []
    _compare_values(a, b, "", out, {})
    return out


def same_state(a: Any, b: Any) -> bool:
    """Whether two fitted estimators hold identical state (see :func:`compare_state`)."""
    return not compare_state(a, b)


def describe(differences: list[Difference], limit: int = 3) -> str:
    """The first ``limit`` differences joined in words, and how many more there are."""
    shown = "; ".join(str(d) for d in differences[:limit])
    more = len(differences) - limit
    return shown + (f"; and {more} more difference{'s' if more > 1 else ''}" if more > 0
                    else "")


def _join(path: str, attribute: str) -> str:
    return f"{path}.{attribute}" if path else attribute


def _compare_values(a: Any, b: Any, path: str, out: list[Difference],
                    seen: Seen) -> None:
    """Append how ``b`` differs from ``a`` (at ``path``) to ``out``."""
    if a is b:
        return
    if _is_number(a) and _is_number(b):
        _compare_numbers(a, b, path, out)
        return
    if type(a) is not type(b):
        out.append(Difference(path, f"is {_kind(a)} vs {_kind(b)}"))
        return
    pair = (id(a), id(b))
    if pair in seen:
        return
    seen[pair] = (a, b)  # kept alive: a temporary's id is not reused during the walk
    if isinstance(a, np.ndarray):
        _compare_arrays(a, b, path, out, seen)
    elif _is_sparse(a):
        _compare_sparse(a, b, path, out, seen)
    elif isinstance(a, str | bytes | type(None) | slice | range | set | frozenset | np.dtype):
        if a != b:
            out.append(Difference(path, f"differs ({_short(a)} vs {_short(b)})"))
    elif isinstance(a, dict):
        _compare_mappings(a, b, path, out, seen, attributes=False)
    elif isinstance(a, list | tuple):
        _compare_sequences(a, b, path, out, seen)
    elif isinstance(a, np.random.RandomState | np.random.Generator):
        if compare_state(_random_state(a), _random_state(b)):
            out.append(Difference(path, f"differs (a {type(a).__name__} in another state)"))
    elif isinstance(a, functools.partial):
        _compare_values((a.func, a.args, a.keywords), (b.func, b.args, b.keywords), path, out,
                        seen)
    elif isinstance(a, type | types.FunctionType | types.BuiltinFunctionType | types.MethodType
                    | types.ModuleType | np.ufunc):
        if a != b and not (isinstance(a, types.FunctionType) and _same_function(a, b)):
            out.append(Difference(path, f"differs ({_name_of(a)} vs {_name_of(b)})"))
    elif _is_pandas(a):
        if not a.equals(b):
            out.append(Difference(path, f"differs (a {type(a).__name__} with other values)"))
    else:
        _compare_objects(a, b, path, out, seen)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Number | np.bool_) and not isinstance(x, np.ndarray)


def _compare_numbers(a: Any, b: Any, path: str, out: list[Difference]) -> None:
    if isinstance(a, bool | np.bool_ | numbers.Integral) and isinstance(
            b, bool | np.bool_ | numbers.Integral):
        if a != b:
            out.append(Difference(path, f"differs ({_short(a)} vs {_short(b)})"))
        return
    x, z = complex(a), complex(b)
    if x == z or (cmath.isnan(x) and cmath.isnan(z)):
        return
    gap = abs(x - z)
    if math.isfinite(gap):
        out.append(Difference(path, f"differs by {gap:.3g} ({_short(a)} vs {_short(b)})", gap))
    else:
        out.append(Difference(path, f"differs ({_short(a)} vs {_short(b)})"))


def _same_layout(a: Any, b: Any, path: str, out: list[Difference]) -> bool:
    """Whether two arrays (dense or sparse) have one shape and dtype; if not, say which."""
    if a.shape != b.shape:
        out.append(Difference(path, f"has shape {a.shape} vs {b.shape}"))
        return False
    if a.dtype != b.dtype:
        out.append(Difference(path, f"has dtype {a.dtype} vs {b.dtype}"))
        return False
    return True


def _compare_arrays(a: np.ndarray, b: np.ndarray, path: str, out: list[Difference],
                    seen: Seen) -> None:
    if not _same_layout(a, b, path, out):
        return
    if a.dtype.names:  # structured, e.g. a tree's nodes: field by field
        for field_name in a.dtype.names:
            _compare_arrays(a[field_name], b[field_name], f"{path}.{field_name}", out, seen)
        return
    kind = a.dtype.kind
    if kind == "O":
        for index, (x, z) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
            at = np.unravel_index(index, a.shape) if a.ndim > 1 else (index,)
            _compare_values(x, z, f"{path}[{', '.join(str(int(i)) for i in at)}]", out, seen)
        return
    if kind in "fc":
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if bool(same.all()):
            return
        gaps = np.abs(a[~same] - b[~same])
        if bool(np.isfinite(gaps).all()):
            worst = float(gaps.max())
            out.append(Difference(path, f"differs by up to {worst:.3g}", worst))
            return
        differs = ~same
    elif kind in "mM":
        differs = (a != b) & ~(np.isnat(a) & np.isnat(b))
    else:
        differs = a != b
    count = int(np.count_nonzero(differs))
    if not count:
        return
    if a.size <= _SHOWN_VALUES:
        out.append(Difference(path, f"differs ({_values(a)} vs {_values(b)})"))
    else:
        out.append(Difference(path, f"differs in {count:,} of {a.size:,} values"))


def _values(a: np.ndarray) -> str:
    items = a.ravel().tolist()
    return _short(items[0]) if a.size == 1 else "[" + ", ".join(_short(v) for v in items) + "]"


def _compare_sparse(a: Any, b: Any, path: str, out: list[Difference],
                    seen: Seen) -> None:
    if not _same_layout(a, b, path, out):
        return
    x, z = a.tocsr(copy=True), b.tocsr(copy=True)
    x.sum_duplicates()
    z.sum_duplicates()
    if np.array_equal(x.indptr, z.indptr) and np.array_equal(x.indices, z.indices):
        found: list[Difference] = []
        _compare_arrays(x.data, z.data, path, found, seen)
        out.extend(Difference(path, d.text.replace(" values", " stored values"), d.magnitude)
                   for d in found)
        return
    gaps = abs(x - z)
    worst = float(gaps.max()) if gaps.nnz else 0.0
    if worst == 0.0 and not np.isnan(gaps.data).any():
        return  # the same values, only explicit zeros stored differently
    if a.dtype.kind in "fc" and math.isfinite(worst) and not np.isnan(gaps.data).any():
        out.append(Difference(path, f"differs by up to {worst:.3g}", worst))
    else:
        out.append(Difference(path, f"differs in {gaps.nnz:,} of {a.shape[0] * a.shape[1]:,} "
                                    "values"))


def _compare_mappings(a: dict, b: dict, path: str, out: list[Difference],
                      seen: Seen, *, attributes: bool) -> None:
    """Dict entries, or an object's attributes (``attributes``: paths with a dot)."""
    def where(key: Any) -> str:
        if attributes and isinstance(key, str):
            return _join(path, key)
        return f"{path}[{key!r}]"

    out.extend(Difference(where(k), "only in the original") for k in a
               if k not in b and k not in MACHINE_ATTRIBUTES)
    out.extend(Difference(where(k), "only in the retrained model") for k in b
               if k not in a and k not in MACHINE_ATTRIBUTES)
    for key, value in a.items():
        if key in b and key not in MACHINE_ATTRIBUTES:
            _compare_values(value, b[key], where(key), out, seen)


def _compare_sequences(a: list | tuple, b: list | tuple, path: str, out: list[Difference],
                       seen: Seen) -> None:
    if len(a) != len(b):
        out.append(Difference(path, f"has {len(a)} items vs {len(b)}"))
        return
    for index, (x, z) in enumerate(zip(a, b, strict=True)):
        if _named(x) and _named(z) and x[0] == z[0]:
            # (name, estimator, ...): a pipeline step, a column transformer's transformer
            label = f"{path}[{x[0]}]"
            _compare_values(x[1], z[1], label, out, seen)
            for i, (p, q) in enumerate(zip(x[2:], z[2:], strict=True), start=2):
                _compare_values(p, q, f"{label}[{i}]", out, seen)
            if len(x) != len(z):
                out.append(Difference(label, f"has {len(x)} items vs {len(z)}"))
        else:
            _compare_values(x, z, f"{path}[{index}]", out, seen)


def _named(item: Any) -> bool:
    return (isinstance(item, tuple) and len(item) >= 2 and isinstance(item[0], str)
            and not isinstance(item[1], str | numbers.Number))


def _compare_objects(a: Any, b: Any, path: str, out: list[Difference],
                     seen: Seen) -> None:
    """Plain objects, estimators and trees by their pickle state (never executing anything
    but the objects' own ``__getstate__`` / ``__reduce_ex__``)."""
    state_a, state_b = _state(a), _state(b)
    if state_a is None and state_b is None:
        if type(a).__eq__ is not object.__eq__ and not bool(a == b):
            out.append(Difference(path, f"differs ({_short(a)} vs {_short(b)})"))
        return
    if state_a is _UNCOMPARABLE or state_b is _UNCOMPARABLE:
        if not _equal(a, b):
            out.append(Difference(path, f"could not be compared (a {type(a).__name__})"))
        return
    if isinstance(state_a, dict) and isinstance(state_b, dict):
        _compare_mappings(state_a, state_b, path, out, seen, attributes=True)
    else:
        _compare_values(state_a, state_b, path, out, seen)


_UNCOMPARABLE = object()


def _state(x: Any) -> Any:
    """``x.__getstate__()``, else the arguments and state of ``x.__reduce_ex__(4)``."""
    try:
        return x.__getstate__()
    except TypeError:
        pass
    try:
        reduced = x.__reduce_ex__(4)
    except TypeError:
        return _UNCOMPARABLE
    if isinstance(reduced, tuple) and len(reduced) >= 2:
        return reduced[1:3]
    return _UNCOMPARABLE


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an __eq__ that answers arrays or refuses
        return False


def _random_state(x: Any) -> Any:
    return x.get_state(legacy=False) if isinstance(x, np.random.RandomState) else (
        x.bit_generator.state)


def _same_function(a: types.FunctionType, b: types.FunctionType) -> bool:
    return (a.__module__, a.__qualname__, a.__code__.co_code) == (
        b.__module__, b.__qualname__, b.__code__.co_code)


def _name_of(x: Any) -> str:
    module = getattr(x, "__module__", None) or ""
    name = getattr(x, "__qualname__", None) or getattr(x, "__name__", None) or repr(x)
    return f"{module}.{name}" if module and module != "builtins" else name


def _is_sparse(x: Any) -> bool:
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(x)


def _is_pandas(x: Any) -> bool:
    return type(x).__module__.startswith("pandas.") and callable(getattr(x, "equals", None))


def _kind(x: Any) -> str:
    name = type(x).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _short(x: Any, limit: int = 40) -> str:
    if isinstance(x, float | np.floating):
        text = f"{float(x):.6g}"
    elif isinstance(x, np.generic):
        text = repr(x.item())
    else:
        text = repr(x)
    return text if len(text) <= limit else text[: limit - 1] + "…"

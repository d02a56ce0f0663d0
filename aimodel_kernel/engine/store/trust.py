"""What loading a stored model trusts: the skops type allow-list, and the error a refusal raises.

A store is data that other people may have written (a colleague's repository, a team drive, a
tracking server), so nothing read from it decides what code runs. A skops file names the types
its objects are made of; it loads only when every type it names is on the allow-list below,
which lives in this code and never in the file:

- the types skops itself trusts (primitives, containers, numpy arrays and ufuncs, scipy sparse
  matrices, scikit-learn's public estimators ...: skops' own audit);
- classes defined in scikit-learn (``sklearn.*``, found by module; not its test helpers, not a
  name that only re-exports something from another package, not functions);
- aimodel's own estimators (:mod:`..fairness.mitigated_models`, also under its old module path
  ``aimodel_kernel.engine.fair_models`` that files written before the move name);
- a few numpy types skops needs (``numpy.dtype``);
- what the user registers explicitly: :func:`trust_types` or the ``trusted_types`` setting /
  ``$AIMODEL_TRUSTED_TYPES`` (for example ``xgboost.sklearn.XGBClassifier``).

Anything else (``builtins.exec``, ``os.system``, a class of some other package) is refused
before skops constructs anything, with one line naming the types.

PyTorch versions never name a class to construct, except a transformers model's architecture
record, whose own allow-list (a ``PreTrainedModel`` subclass defined in ``transformers.models.*``,
looked up by name in that package only) lives in :mod:`.hf_architecture`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...config import Settings
from ...config import settings as default_settings
from ..core.errors import ChecksumError
from .fast_imports import require_skops_io

OWN_TYPES = (
    "aimodel_kernel.engine.fairness.mitigated_models.GroupThresholdClassifier",
    "aimodel_kernel.engine.fairness.mitigated_models.ReductionClassifier",
)
"""aimodel's own estimators that a skops file may hold (``store`` cannot import ``fairness``:
the names are listed here; ``tests/engine/test_store_trust.py`` checks the list is complete)."""

OLD_MODULE_PATHS = {"aimodel_kernel.engine.fair_models":
                    "aimodel_kernel.engine.fairness.mitigated_models"}
"""Old module path -> new one, for files written before the engine's packages (``legacy.py``)."""

EXTRA_TYPES = ("numpy.dtype",)
"""Types outside skops' defaults that scikit-learn models need (a ``FunctionTransformer`` or an
imputer keeps a dtype)."""

_SKLEARN_EXCLUDED_PARTS = frozenset({"tests", "conftest", "_testing", "externals", "_build_utils",
                                     "_min_dependencies"})

_registered: dict[str, None] = {}
_lock = threading.Lock()


class TrustError(ChecksumError):
    """Stored content was refused: a type that is not trusted, a file no digest covers, a
    program that would need pickle, a missing or mismatching signature."""


def _type_name(t: str | type) -> str:
    if isinstance(t, str):
        name = t.strip()
    elif isinstance(t, type):
        name = f"{t.__module__}.{t.__qualname__}"
    else:
        raise TypeError(f"trust_types takes classes or their fully qualified names, not "
                        f"{type(t).__name__}")
    if "." not in name or not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"{name!r} is not a fully qualified type name (module.Class)")
    return name


def trust_types(types: Iterable[str | type]) -> list[str]:
    """Allow skops files to hold these classes (beyond scikit-learn and aimodel's own).

    Register only classes whose loading you trust, such as ``xgboost.sklearn.XGBClassifier``:
    skops rebuilds an object of a trusted class from the file's data, which is as safe as that
    class's ``__setstate__`` / ``__dict__`` handling.

    Parameters
    ----------
    types : iterable of str or type
        Classes, or their fully qualified names (``"module.Class"``).

    Returns
    -------
    list of str
        Every type registered so far (this process).
    """
    names = [_type_name(t) for t in types]
    with _lock:
        _registered.update(dict.fromkeys(names))
        return list(_registered)


def untrust_types(types: Iterable[str | type] | None = None) -> list[str]:
    """Remove types registered with :func:`trust_types` (all of them when ``types`` is None)."""
    with _lock:
        if types is None:
            _registered.clear()
        else:
            for t in types:
                _registered.pop(_type_name(t), None)
        return list(_registered)


def registered_types(settings: Settings | None = None) -> tuple[str, ...]:
    """The types trusted beyond scikit-learn: aimodel's own (new and old paths), numpy's the
    models need, the registered ones and the setting's."""
    s = settings or default_settings
    own = [*OWN_TYPES, *(name.replace(new, old, 1) for old, new in OLD_MODULE_PATHS.items()
                         for name in OWN_TYPES if name.startswith(new + "."))]
    with _lock:
        registered = list(_registered)
    return tuple(dict.fromkeys([*own, *EXTRA_TYPES, *registered, *s.resolved_trusted_types()]))


def is_sklearn_class(name: str) -> bool:
    """Whether ``name`` is a class defined in scikit-learn (imports only ``sklearn`` modules)."""
    module_name, _, attr = name.rpartition(".")
    parts = module_name.split(".")
    if parts[0] != "sklearn" or not attr.isidentifier():
        return False
    if any(p in _SKLEARN_EXCLUDED_PARTS or p.startswith("test_") or not p.isidentifier()
           for p in parts):
        return False
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    obj = module.__dict__.get(attr)
    return isinstance(obj, type) and (obj.__module__ == "sklearn"
                                      or obj.__module__.startswith("sklearn."))


def is_trusted(name: str, settings: Settings | None = None) -> bool:
    """Whether a skops file may name type ``name`` (beyond skops' own safe types)."""
    return name in registered_types(settings) or is_sklearn_class(name)


def skops_trusted(path: str | Path, settings: Settings | None = None) -> list[str]:
    """The types to pass to ``skops.io.load(trusted=...)`` for file ``path``: what it names
    beyond skops' safe types, once every one of them is on the allow-list.

    Reading the type names parses the file's JSON schema only (skops' audit); nothing is
    imported from it or constructed.

    Raises
    ------
    TrustError
        The file names a type that is not trusted (the message names it), or is no skops file.
    """
    sio = require_skops_io("loading scikit-learn models")
    try:
        named = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a zip, no schema, a schema skops cannot read
        raise TrustError(f"{Path(path).name} is not a readable skops file "
                         f"({type(exc).__name__}: {_first_line(exc)}); refusing to load it"
                         ) from None
    refused = [name for name in named if not is_trusted(name, settings)]
    if refused:
        shown = ", ".join(refused[:4]) + (f" and {len(refused) - 4} more" if len(refused) > 4
                                         else "")
        raise TrustError(
            f"{Path(path).name} names types that are not trusted: {shown}; refusing to load it "
            "(only scikit-learn and aimodel classes load; register a class you trust with "
            "aimodel_kernel.engine.store.trust.trust_types or $AIMODEL_TRUSTED_TYPES)")
    return named


def load_skops(path: str | Path, settings: Settings | None = None) -> Any:
    """Load a skops file whose types are all on the allow-list, then check its trees."""
    sio = require_skops_io("loading scikit-learn models")
    trusted = skops_trusted(path, settings)
    model = sio.load(path, trusted=trusted)
    check_trees(model)
    return model


# -- trees: skops checks types, not content ------------------------------------------------------
# scikit-learn's tree predictors index their node arrays without bounds checks, so a crafted
# file whose types are all trusted could still crash the kernel at the first predict (skops'
# UNTRUSTED_TYPE_REASONS). The structure of every tree is checked before the model is returned.

def check_trees(model: Any) -> None:
    """Refuse a model holding a decision tree whose node indices point outside it.

    Checks every ``sklearn.tree._tree.Tree`` and histogram-gradient-boosting ``TreePredictor``
    reachable from ``model``: children after their parent and inside the tree, features inside
    the estimator's input width, values and bitsets present for every node.

    Raises
    ------
    TrustError
        A tree is malformed.
    """
    import sys

    tree_mod = sys.modules.get("sklearn.tree._tree")
    hist_mod = sys.modules.get("sklearn.ensemble._hist_gradient_boosting.predictor")
    tree_cls = getattr(tree_mod, "Tree", None)
    pred_cls = getattr(hist_mod, "TreePredictor", None)
    if tree_cls is None and pred_cls is None:
        return
    ensembles = _ensemble_types()
    seen: set[int] = set()
    stack: list[tuple[Any, int | None]] = [(model, None)]
    while stack:
        obj, width = stack.pop()
        if id(obj) in seen or len(seen) > 1_000_000:
            continue
        seen.add(id(obj))
        if tree_cls is not None and isinstance(obj, tree_cls):
            _check_tree(obj, width)
            continue
        if pred_cls is not None and isinstance(obj, pred_cls):
            _check_predictor(obj, width)
            continue
        own = _own_width(obj)
        if ensembles and isinstance(obj, ensembles) and own is not None:
            _check_members(obj, own)
        here = own if own is not None else width
        for child in _children(obj):
            stack.append((child, here))


def _own_width(obj: Any) -> int | None:
    """``n_features_in_`` as the object itself stores it (not a Pipeline's delegating property)."""
    import numpy as np

    state = getattr(obj, "__dict__", None)
    value = state.get("n_features_in_") if isinstance(state, dict) else None
    return int(value) if isinstance(value, int | np.integer) else None


def _ensemble_types() -> tuple[type, ...]:
    """Ensembles that call their trees with ``check_input=False`` (their members read the
    ensemble's input as it is)."""
    import sys

    found = []
    for module, name in (("sklearn.ensemble._forest", "BaseForest"),
                         ("sklearn.ensemble._gb", "BaseGradientBoosting")):
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def _check_members(ensemble: Any, width: int) -> None:
    import numpy as np

    members = getattr(ensemble, "__dict__", {}).get("estimators_", [])
    flat = list(np.asarray(members, dtype=object).ravel()) if len(members) else []
    for member in flat:
        inner = _own_width(member)
        if inner is not None and inner != width:
            raise _bad(f"a member reads {inner} features, its ensemble {width}")


def _children(obj: Any) -> list[Any]:
    import numpy as np

    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, list | tuple | set | frozenset):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return list(obj.ravel()) if obj.dtype == object else []
    if isinstance(obj, str | bytes | int | float | bool | type(None)):
        return []
    state = getattr(obj, "__dict__", None)
    return list(state.values()) if isinstance(state, dict) else []


def _bad(what: str) -> TrustError:
    return TrustError(f"model.skops holds a malformed tree ({what}); refusing to load it")


def _check_tree(tree: Any, width: int | None) -> None:
    import numpy as np

    n = int(tree.node_count)
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    feature = np.asarray(tree.feature)
    if n < 1 or len(left) < n or len(right) < n or len(feature) < n:
        raise _bad("node arrays shorter than its node count")
    if np.asarray(tree.value).shape[0] < n:
        raise _bad("fewer values than nodes")
    left, right, feature = left[:n], right[:n], feature[:n]
    leaf = left == -1
    idx = np.arange(n)
    if np.any(right[leaf] != -1):
        raise _bad("a leaf with one child")
    inner = ~leaf
    if np.any((left[inner] <= idx[inner]) | (left[inner] >= n) | (right[inner] <= idx[inner])
              | (right[inner] >= n)):
        raise _bad("a child index outside the tree")
    n_features = int(tree.n_features)
    if np.any((feature[inner] < 0) | (feature[inner] >= n_features)):
        raise _bad("a split on a feature outside the tree's inputs")
    if width is not None and n_features != width:
        raise _bad(f"the tree reads {n_features} features, its estimator {width}")


def _check_predictor(predictor: Any, width: int | None) -> None:
    import numpy as np

    nodes = predictor.nodes
    n = len(nodes)
    if n < 1:
        raise _bad("an empty tree")
    leaf = nodes["is_leaf"].astype(bool)
    inner = ~leaf
    idx = np.arange(n)
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    if np.any((left[inner] <= idx[inner]) | (left[inner] >= n) | (right[inner] <= idx[inner])
              | (right[inner] >= n)):
        raise _bad("a child index outside the tree")
    feature = nodes["feature_idx"][inner]
    if np.any(feature < 0) or (width is not None and np.any(feature >= width)):
        raise _bad("a split on a feature outside the model's inputs")
    categorical = inner & nodes["is_categorical"].astype(bool)
    for bitsets in (predictor.binned_left_cat_bitsets, predictor.raw_left_cat_bitsets):
        if np.any(nodes["bitset_idx"][categorical] >= len(bitsets)):
            raise _bad("a categorical split without its bitset")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__

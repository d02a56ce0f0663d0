"""The architecture record of a Hugging Face model: how a transformers version loads without
pickle, without guard code and without the notebook's module.

Saving a ``transformers.PreTrainedModel`` records, as data in the version's ``manifest.json``
(under :data:`KEY`), the library and its version, the model's class name and its configuration
(``config.to_dict()``, JSON):

    {"library": "transformers", "version": "5.2.0",
     "class": "BertForSequenceClassification", "config": {...}}

The manifest is covered by the version's recorded digests (and its signature), so the record
is as trustworthy as the weights. Loading without ``into`` rebuilds
``cls(cls.config_class.from_dict(config))`` and loads the safetensors weights into it
(strictly), where ``cls`` is looked up by name ONLY in the transformers package and must be
a subclass of ``PreTrainedModel`` defined in a ``transformers.models.*`` module. Nothing else
the record says chooses code:

- a class name that is not a plain identifier (``os.system``, ``builtins.eval``), not a
  transformers model class, or defined elsewhere (``transformers_modules.*``: remote code) is
  refused;
- a configuration that names remote code (``auto_map``, ``trust_remote_code``), an attention or
  experts implementation (which can name a hub kernel to download and run), or quantization
  is refused, at any depth (sub-configurations included); a record with them is kept for what
  it says but never loads by class;
- ``use_pretrained_backbone`` is switched off: the weights come from the version's file, never
  from a download.

Every refusal is one line (:class:`~.trust.TrustError`), raised before any model code runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from .trust import TrustError

KEY = "architecture"
"""``manifest.json``'s key for the architecture record."""
LIBRARY = "transformers"
MODULE_PREFIX = "transformers.models."
"""Where a class that loads by name must be defined."""

REFUSED_CONFIG_KEYS = frozenset({
    "auto_map", "trust_remote_code",  # remote code
    "attn_implementation", "_attn_implementation", "_attn_implementation_internal",
    "experts_implementation", "_experts_implementation", "_experts_implementation_internal",
    "kernel_config", "use_kernels",  # hub kernels
    "quantization_config",  # quantizers read other packages' files
})
"""Configuration keys a version that loads by class may not hold (at any depth)."""
BUILT_IN_IMPLEMENTATIONS = frozenset({"eager", "sdpa"})
"""Attention / experts implementations that are torch code in transformers itself (allowed)."""

_HINT = "load its weights into a module of its class with into=model"


def architecture_of(model: Any) -> dict[str, Any] | None:
    """The architecture record of ``model``, or ``None`` when it is no transformers model whose
    class loads by name (a PEFT wrapper, a subclass defined in the notebook ...).

    Parameters
    ----------
    model : torch.nn.Module
        The model being saved.

    Returns
    -------
    dict or None
        ``{"library", "version", "class", "config"}``; ``config`` is the JSON form of
        ``model.config`` (``auto_map`` and the like are recorded as they are).
    """
    transformers = sys.modules.get(LIBRARY)
    if transformers is None or not isinstance(model, transformers.PreTrainedModel):
        return None
    cls = type(model)
    try:
        if lookup_class(cls.__name__) is not cls:
            return None
    except TrustError:
        return None
    config = json.loads(model.config.to_json_string(use_diff=False))
    if not _refused_keys(config) and not _rebuilds(cls, config, model):
        return None  # e.g. structurally pruned: its weights no longer fit its configuration
    return {"library": LIBRARY, "version": str(transformers.__version__),
            "class": cls.__name__, "config": config}


def _rebuilds(cls: type, config: dict[str, Any], model: Any) -> bool:
    """Whether ``cls`` built from ``config`` has ``model``'s state-dict keys and shapes (built on
    the meta device: no memory, no initialisation)."""
    import torch

    try:
        with torch.device("meta"):
            rebuilt = cls(cls.config_class.from_dict(dict(config)))
    except Exception:  # a configuration that does not build alone: no record
        return False
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return shapes == {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}


def lookup_class(name: Any) -> type:
    """The transformers model class called ``name``, looked up only in the transformers package.

    Raises
    ------
    TrustError
        ``name`` is no plain class name, or names no ``PreTrainedModel`` subclass defined in a
        ``transformers.models.*`` module.
    """
    shown = repr(str(name)[:60])
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise TrustError(f"the architecture record names class {shown}, which is not a "
                         f"transformers model class; refusing to load it ({_HINT})")
    import transformers

    try:
        cls = getattr(transformers, name)
    except (AttributeError, ImportError, RuntimeError):  # unknown, or its extras are missing
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)
            and cls.__module__.startswith(MODULE_PREFIX)):
        raise TrustError(f"the architecture record names class {shown}, which is not a "
                         f"transformers model class; refusing to load it ({_HINT})")
    return cls


def _refused_keys(doc: Any, path: str = "") -> list[str]:
    """Every refused key of a configuration, nested ones as ``text_config.auto_map``."""
    found: list[str] = []
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            where = f"{path}{key}"
            harmless = value in (None, {}, [], False) or (
                "implementation" in key and isinstance(value, str)
                and value in BUILT_IN_IMPLEMENTATIONS)
            if key in REFUSED_CONFIG_KEYS and not harmless:
                found.append(where)
            found += _refused_keys(value, f"{where}.")
    elif isinstance(doc, list):
        for item in doc:
            found += _refused_keys(item, path)
    return found


def _no_backbone_download(doc: Any) -> Any:
    """``doc`` with every ``use_pretrained_backbone`` set to false."""
    if isinstance(doc, Mapping):
        return {k: (False if k == "use_pretrained_backbone" else _no_backbone_download(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [_no_backbone_download(v) for v in doc]
    return doc


def check_record(record: Any) -> tuple[type, dict[str, Any]]:
    """The class and configuration an architecture record may build, after every check.

    Raises
    ------
    TrustError
        Another library than transformers, a class that does not load by name, a
        configuration naming remote code, kernels or quantization, or one of another model type.
    """
    if not isinstance(record, Mapping) or record.get("library") != LIBRARY:
        library = record.get("library") if isinstance(record, Mapping) else record
        raise TrustError(f"the architecture record names library {str(library)[:40]!r}; only "
                         f"transformers models load by class; refusing to load it ({_HINT})")
    config = record.get("config")
    if not isinstance(config, Mapping):
        raise TrustError(f"the architecture record holds no configuration; refusing to load it "
                         f"({_HINT})")
    refused = _refused_keys(config)
    if refused:
        raise TrustError(f"the recorded configuration sets {', '.join(refused[:3])[:120]} "
                         "(remote code, kernels or quantization), so it does not load by "
                         f"class; refusing to load it ({_HINT})")
    cls = lookup_class(record.get("class"))
    expected_type = getattr(cls.config_class, "model_type", "") or ""
    if expected_type and config.get("model_type") not in (None, expected_type):
        raise TrustError(f"the recorded configuration is of model type "
                         f"{str(config.get('model_type'))[:40]!r}, not {expected_type!r} as "
                         f"{cls.__name__} needs; refusing to load it")
    return cls, _no_backbone_download(config)


def build_module(record: Any) -> Any:
    """A freshly initialised module of the recorded class and configuration (weights next).

    Raises
    ------
    TrustError
        The record is refused (see :func:`check_record`) or its configuration does not build.
    """
    cls, config = check_record(record)
    try:
        return cls(cls.config_class.from_dict(dict(config)))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise TrustError(f"the recorded configuration does not build a {cls.__name__} "
                         f"({type(exc).__name__}: {first}); refusing to load it") from None


def load_weights(module: Any, state: Mapping[str, Any]) -> Any:
    """Load ``state`` into ``module`` strictly (in the weights' dtype) and return it in eval mode.

    Raises
    ------
    TrustError
        The weights do not fit the recorded architecture (missing, extra or other shapes).
    """
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(dtypes) == 1:
        module.to(next(iter(dtypes)))
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise TrustError(f"the weights do not fit the recorded {type(module).__name__} "
                         f"({first}); refusing to load it") from None
    return module.eval()


def module_from_manifest(manifest: Mapping[str, Any], state: Mapping[str, Any]) -> Any:
    """The recorded module with ``state`` loaded (see :func:`build_module`, :func:`load_weights`).

    Raises
    ------
    TrustError
        The record is refused, or the weights do not fit it.
    """
    return load_weights(build_module(manifest.get(KEY)), state)

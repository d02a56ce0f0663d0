"""What a training run records besides metrics: parameters, tags, environment, data fingerprint."""

from __future__ import annotations

import json
from typing import Any

from ..core.data import TaskInfo
from ..core.options import TrainConfig
from .tracking import TAG


def model_params(
    model: Any, framework: str, pending: dict[str, Any] | None = None
) -> dict[str, str]:
    """``model.*`` parameters: scikit-learn's ``get_params(deep=True)`` or a module's size.

    ``pending`` holds parameter changes training applies before fitting (``random_state`` from
    ``--seed``, ``class_weight``), so the record shows the values the model was trained with.
    """
    if framework == "sklearn":
        params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
        params = {**params, **(pending or {})}
        return {f"model.{k}": _param_text(v) for k, v in sorted(params.items())}
    n_params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "model.class": type(model).__qualname__,
        "model.parameters": str(n_params),
        "model.trainable_parameters": str(trainable),
    }


def _param_text(value: Any) -> str:
    """A parameter value as text. Nested estimators (a pipeline's ``steps``) are named by class:
    their own parameters are recorded separately by ``get_params(deep=True)``."""
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(_plain_param(value), default=repr)


def _plain_param(value: Any) -> Any:
    if hasattr(value, "get_params"):
        return type(value).__name__
    if isinstance(value, list | tuple):
        return [_plain_param(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_param(v) for k, v in value.items()}
    return value


def train_params(config: TrainConfig, framework: str, seed: int) -> dict[str, str]:
    """``train.*`` parameters, defaults included; torch-only options omitted for scikit-learn."""
    torch_only = {
        "epochs", "batch_size", "lr", "weight_decay", "optimizer", "momentum", "loss", "device",
        "early_stop", "monitor", "checkpoint", "checkpoint_every", "export", "devices", "backend",
    }
    out = {}
    for key, value in config.to_dict().items():
        if framework == "sklearn" and key in torch_only:
            continue
        if key == "seed":
            value = seed
        out[f"train.{key}"] = json.dumps(value)
    return out


def run_tags(
    *,
    model: Any,
    framework: str,
    task: TaskInfo,
    fingerprint: dict[str, Any],
    seed: int,
    config: TrainConfig,
    source: dict[str, str] | None,
) -> dict[str, str]:
    """Searchable facts of a run, under the ``aimodel.`` tag prefix."""
    cls = type(model)
    tags = {
        f"{TAG}framework": framework,
        f"{TAG}model_class": f"{cls.__module__}.{cls.__qualname__}",
        f"{TAG}task": task.task,
        f"{TAG}classes": json.dumps(list(task.classes)),
        f"{TAG}data.sha256": fingerprint["sha256"],
        f"{TAG}data.shape": json.dumps(fingerprint["shape"]),
        f"{TAG}seed": str(seed),
        f"{TAG}deterministic": str(config.deterministic).lower(),
    }
    if config.name:
        tags[f"{TAG}name"] = config.name
    if source and source.get("line"):
        tags[f"{TAG}magic"] = source["line"]
    return tags

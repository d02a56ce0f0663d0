"""Which tracked run produced an in-memory model, so later magics can log onto that run."""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from typing import Any

from .data import TaskInfo


@dataclass(frozen=True)
class ModelLink:
    """The run (and version, when registered) that trained a model object in this process."""

    run_id: str
    tracking_uri: str
    task: TaskInfo
    framework: str
    name: str | None = None
    version: int | None = None
    feature_names: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_links: dict[int, ModelLink] = {}


def remember(model: Any, link: ModelLink) -> None:
    """Link ``model`` to its run for as long as the object lives."""
    key = id(model)
    if key not in _links:
        with contextlib.suppress(TypeError):  # not weak-referenceable: kept until replaced
            weakref.finalize(model, _links.pop, key, None)
    _links[key] = link


def lookup(model: Any) -> ModelLink | None:
    """The link recorded for ``model`` by the last training, or ``None``."""
    return _links.get(id(model))

"""The registered models and versions of a store, as the Models sidebar shows them.

The bodies built here are the ``models`` and ``diff`` definitions of ``api.v1.schema.json``
(see :mod:`aimodel_kernel.server.schema`); the TypedDicts below mirror that schema. Both read
through settings that never create a store (``store_location.reading``), whatever they are
given.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, TypedDict

from ..config import Settings
from ..engine.core.metric_names import headline_metrics
from ..engine.store.tracking import TAG, VersionRecord, get_store
from .store_location import reading, store_exists


class StoreInfo(TypedDict):
    uri: str
    embedded: bool


class VersionEntry(TypedDict):
    ref: str
    version: int
    aliases: list[str]
    created: str
    parent: str | None
    model_type: str
    task: str
    classes: int
    metrics: dict[str, float | None]
    run_id: str
    status: str


class ModelEntry(TypedDict):
    name: str
    versions: list[VersionEntry]


class ModelsResponse(TypedDict):
    store: StoreInfo
    models: list[ModelEntry]


class DiffResponse(TypedDict):
    payload: dict[str, Any]
    png: str | None


def _finite(value: float) -> float | None:
    """``value``, or ``None`` for NaN and infinities (which strict JSON cannot carry)."""
    return value if math.isfinite(value) else None


def version_entry(v: VersionRecord) -> VersionEntry:
    """One version: reference, aliases, lineage, what it is and its headline metrics.

    Parameters
    ----------
    v : VersionRecord
        The version, with the tags and metrics of its run.

    Returns
    -------
    VersionEntry
        The ``version`` object of ``api.v1.schema.json``; a metric that is NaN or infinite
        (a diverged loss, say) is ``None``.
    """
    tags = v.run_tags
    return {
        "ref": v.ref,
        "version": v.version,
        "aliases": list(v.aliases),
        "created": datetime.fromtimestamp(v.created, UTC).isoformat(timespec="seconds"),
        "parent": tags.get(f"{TAG}parent") or None,
        "model_type": tags.get(f"{TAG}model_class", "").rsplit(".", 1)[-1],
        "task": tags.get(f"{TAG}task", ""),
        "classes": len(json.loads(tags.get(f"{TAG}classes", "[]") or "[]")),
        "metrics": {k: _finite(m) for k, m in headline_metrics(v.metrics).items()},
        "run_id": v.run_id,
        "status": v.status,
    }


def list_models(settings: Settings) -> ModelsResponse:
    """Every registered model with its versions, newest first.

    Parameters
    ----------
    settings : Settings
        The store's settings (see :func:`~aimodel_kernel.server.store_location.settings_for`).

    Returns
    -------
    ModelsResponse
        The ``models`` body of ``api.v1.schema.json``: no models when the store was never
        created (nothing is created by reading).
    """
    settings = reading(settings)
    uri = settings.resolved_tracking_uri()
    info: StoreInfo = {"uri": uri, "embedded": settings.uses_embedded_store()}
    if not store_exists(settings):
        return {"store": info, "models": []}
    store = get_store(settings)
    models: list[ModelEntry] = []
    for name in store.model_names():
        versions = [version_entry(v) for v in reversed(store.versions(name))]
        models.append({"name": name, "versions": versions})
    return {"store": info, "models": models}


def diff_payload(settings: Settings, ref_a: str, ref_b: str) -> DiffResponse:
    """The ``%diff A B`` report's JSON payload and PNG, computed without logging anything.

    Parameters
    ----------
    settings : Settings
        The store's settings (read only: a folder without a store is a ``NotFoundError``).
    ref_a, ref_b : str
        The two versions (``name/1``, ``name@champion``).

    Returns
    -------
    DiffResponse
        The ``diff`` body of ``api.v1.schema.json``: the report envelope and its PNG, base64
        (``None`` when the report has no figure).
    """
    from ..display.diff_report import DiffReport
    from ..display.mime import png_base64
    from ..engine.versions.diff import diff_versions

    report = DiffReport(diff_versions(ref_a, ref_b, settings=reading(settings), log=False))
    png = report.png()
    return {"payload": report.payload(), "png": png_base64(png) if png else None}

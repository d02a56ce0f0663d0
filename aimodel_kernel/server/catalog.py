"""The registered models and versions of a store, as the Models sidebar shows them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..config import Settings
from ..engine.tracking import TAG, VersionRecord, get_store
from ..engine.versions import headline_metrics
from .store_location import store_exists


def version_entry(v: VersionRecord) -> dict[str, Any]:
    """One version: reference, aliases, lineage, what it is and its headline metrics."""
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
        "metrics": headline_metrics(v.metrics),
        "run_id": v.run_id,
        "status": v.status,
    }


def list_models(settings: Settings) -> dict[str, Any]:
    """Every registered model with its versions, newest first; an empty list when the store
    was never created (nothing is created by reading)."""
    uri = settings.resolved_tracking_uri()
    info = {"uri": uri, "embedded": settings.uses_embedded_store()}
    if not store_exists(settings):
        return {"store": info, "models": []}
    store = get_store(settings)
    models = []
    for name in store.model_names():
        versions = [version_entry(v) for v in reversed(store.versions(name))]
        models.append({"name": name, "versions": versions})
    return {"store": info, "models": models}


def diff_payload(settings: Settings, ref_a: str, ref_b: str) -> dict[str, Any]:
    """The ``%diff A B`` report's JSON payload and PNG, computed without logging anything."""
    from ..display.diff_report import DiffReport
    from ..display.mime import png_base64
    from ..engine.diff import diff_versions

    report = DiffReport(diff_versions(ref_a, ref_b, settings=settings, log=False))
    png = report.png()
    return {"payload": report.payload(), "png": png_base64(png) if png else None}

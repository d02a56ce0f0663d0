"""The MLflow store: runs, registered model versions, artifacts. The only module importing mlflow.

The default store is ``.aimodel/`` beside the notebook: ``mlflow.db`` (SQLite tracking and
registry) and ``artifacts/`` (the experiment's explicit artifact location, so nothing lands in
``./mlruns``). ``MLFLOW_TRACKING_URI`` or :class:`~aimodel_kernel.config.Settings` point elsewhere.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ...config import Settings
from ...config import settings as default_settings
from ..core.errors import NotFoundError
from ..core.model_names import check_model_name
from .artifacts import MODEL_DIR, RunFiles

TAG = "aimodel."
_MAX_PARAM = 6000
_MAX_TAG = 8000


@dataclass
class VersionRecord:
    """One registered model version with the facts of the run that produced it."""

    name: str
    version: int
    run_id: str
    created: float
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    run_tags: dict[str, str] = field(default_factory=dict)
    status: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "created": self.created,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
            "metrics": dict(self.metrics),
            "status": self.status,
        }


class Store:
    """An MLflow tracking + registry store, opened lazily on first use.

    Parameters
    ----------
    settings : Settings, optional
        Where the store lives; the process-wide settings by default.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or default_settings
        self.home = self.settings.resolved_home()
        self.uri = self.settings.resolved_tracking_uri()

    # -- connection -------------------------------------------------------------------------
    @cached_property
    def client(self):
        from mlflow import MlflowClient

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)

        if self.settings.uses_embedded_store():
            self.home.mkdir(parents=True, exist_ok=True)
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    @cached_property
    def experiment_id(self) -> str:
        name = self.settings.experiment
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        artifacts = self.local_artifact_root()
        location = None
        if artifacts is not None:
            artifacts.mkdir(parents=True, exist_ok=True)
            location = artifacts.as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def local_artifact_root(self) -> Path | None:
        """Where artifacts go for a SQLite store: ``artifacts/`` beside the database file (so
        nothing lands in ``./mlruns``). ``None`` for a tracking server, which decides itself."""
        if self.settings.uses_embedded_store():
            return self.home / "artifacts"
        if self.uri.startswith("sqlite:///"):
            return Path(self.uri[len("sqlite:///"):]).resolve().parent / "artifacts"
        return None

    # -- runs -------------------------------------------------------------------------------
    def start_run(
        self, *, run_name: str, params: Mapping[str, Any], tags: Mapping[str, Any]
    ) -> str:
        """Create a RUNNING run with its parameters and tags; return its id."""
        run = self.client.create_run(self.experiment_id, run_name=run_name)
        run_id = run.info.run_id
        try:
            self.log_params(run_id, params)
            self.set_tags(run_id, tags)
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        return run_id

    def reopen_run(self, run_id: str) -> None:
        """Mark a finished or killed run RUNNING again (to resume its training)."""
        self.client.update_run(run_id, status="RUNNING")

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Set the final status: ``FINISHED``, ``KILLED`` or ``FAILED``."""
        self.client.set_terminated(run_id, status)

    def discard_run(self, run_id: str) -> None:
        """End a run that failed on the user's input and move it to MLflow's deleted runs."""
        self.client.set_terminated(run_id, "FAILED")
        self.client.delete_run(run_id)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, _clip(v, _MAX_PARAM)) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100], synchronous=True)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, _clip(v, _MAX_TAG)) for k, v in tags.items() if v is not None]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, tags=items[i : i + 100], synchronous=True)

    def log_metrics(
        self, run_id: str, rows: Iterable[tuple[str, float, int | None]]
    ) -> None:
        """Log ``(name, value, step)`` rows in batches of 1000."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_metric_key(k), float(v), now, step or 0) for k, v, step in rows]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i : i + 1000], synchronous=True)

    def log_dict(self, run_id: str, obj: Any, path: str) -> None:
        """Write ``obj`` as JSON to artifact ``path`` (e.g. ``"evaluation/report.json"``)."""
        self.client.log_text(run_id, json.dumps(obj, indent=2, default=str), path)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_bytes(self, run_id: str, data: bytes, path: str) -> None:
        target = Path(path)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / target.name
            local.write_bytes(data)
            parent = str(target.parent) if str(target.parent) != "." else None
            self.client.log_artifact(run_id, str(local), parent)

    def log_dir(self, run_id: str, local_dir: str | Path, path: str) -> None:
        self.client.log_artifacts(run_id, str(local_dir), path)

    def download(self, run_id: str, path: str) -> Path:
        """A local path for artifact ``path`` of a run (no copy for the embedded store)."""
        uri = self.client.get_run(run_id).info.artifact_uri
        if uri.startswith("file://"):
            local = Path(uri[len("file://") :]) / path
            if local.exists():
                return local
        dest = Path(tempfile.mkdtemp(prefix="aimodel-"))
        return Path(self.client.download_artifacts(run_id, path, str(dest)))

    def artifact(self, run_id: str, path: str) -> Path | None:
        """A local path for artifact ``path`` of a run, or ``None`` when the run has none."""
        return RunFiles(self, run_id).path(path)

    def run(self, run_id: str):
        try:
            return self.client.get_run(run_id)
        except Exception as exc:
            if type(exc).__name__ == "MlflowException":
                raise NotFoundError(f"no run {run_id!r} in the store at {self.uri}") from None
            raise

    def search_runs(self, filter_string: str = "", max_results: int = 100) -> list:
        return self.client.search_runs(
            [self.experiment_id], filter_string, order_by=["attributes.start_time DESC"],
            max_results=max_results,
        )

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    # -- registry ---------------------------------------------------------------------------
    def register_version(
        self, name: str, run_id: str, *, tags: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> int:
        """Register the run's ``model/`` folder as a new version of ``name``; return its number."""
        check_model_name(name)
        exc_names = ("RestException", "MlflowException")
        try:
            self.client.get_registered_model(name)
        except Exception as exc:
            if type(exc).__name__ not in exc_names:
                raise
            self.client.create_registered_model(name)
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{MODEL_DIR}"
        mv = self.client.create_model_version(
            name, source=source, run_id=run_id, description=description,
            tags={k: _clip(v, _MAX_TAG) for k, v in (tags or {}).items()},
        )
        return int(mv.version)

    def model_names(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models(max_results=1000))

    def versions(self, name: str) -> list[VersionRecord]:
        """Every version of registered model ``name``, oldest first, with run metrics."""
        try:
            registered = self.client.get_registered_model(name)
        except Exception as exc:
            if type(exc).__name__ in ("RestException", "MlflowException"):
                known = ", ".join(self.model_names()) or "none yet"
                raise NotFoundError(
                    f"no registered model {name!r} in the store (known: {known})"
                ) from None
            raise
        aliases: dict[int, list[str]] = {}
        for alias, version in (registered.aliases or {}).items():
            aliases.setdefault(int(version), []).append(alias)
        records = []
        for mv in self.client.search_model_versions(f"name='{name}'", max_results=10_000):
            run = self.client.get_run(mv.run_id) if mv.run_id else None
            records.append(
                VersionRecord(
                    name=name,
                    version=int(mv.version),
                    run_id=mv.run_id or "",
                    created=mv.creation_timestamp / 1000,
                    aliases=sorted(aliases.get(int(mv.version), [])),
                    tags=dict(mv.tags or {}),
                    metrics=dict(run.data.metrics) if run else {},
                    params=dict(run.data.params) if run else {},
                    run_tags=dict(run.data.tags) if run else {},
                    status=run.info.status if run else "",
                )
            )
        return sorted(records, key=lambda r: r.version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))


def _clip(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metric_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", key)


_stores: dict[tuple[str, str], Store] = {}


def log_result_artifact(result: Any, name: str, data: bytes, *, store: Store | None = None
                        ) -> bool:
    """Add ``data`` as ``<result.artifact_dir>/<name>`` (e.g. ``evaluation/plots.png``) to the
    run an evaluation, explanation or fairness result was logged to.

    Returns ``False`` (and writes nothing) when the result was not logged to a run.
    """
    if not result.logged or result.run_id is None:
        return False
    store_for(result.tracking_uri, store).log_bytes(result.run_id, data,
                                                    f"{result.artifact_dir}/{name}")
    return True


def store_for(uri: str | None, store: Store | None = None) -> Store:
    """``store`` if given; else the current settings' store, or, when a run was recorded under
    another tracking URI (the settings changed since), the store at that URI."""
    if store is not None:
        return store
    current = get_store()
    if uri is None or current.uri == uri:
        return current
    return get_store(Settings(tracking_uri=uri))


def get_store(settings: Settings | None = None) -> Store:
    """The :class:`Store` for the current settings, cached per (home, tracking URI)."""
    s = settings or default_settings
    key = (str(s.resolved_home()), s.resolved_tracking_uri())
    if key not in _stores:
        _stores[key] = Store(s)
    return _stores[key]

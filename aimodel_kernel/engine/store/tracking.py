"""The MLflow store: runs, registered model versions, artifacts (MLflow's SQLite specifics are in
:mod:`.mlflow_sqlite`; the store package is the only one importing mlflow).

The default store is ``.aimodel/`` beside the notebook: ``mlflow.db`` (SQLite tracking and
registry) and ``artifacts/`` (the experiment's explicit artifact location, so nothing lands in
``./mlruns``). ``MLFLOW_TRACKING_URI`` or :class:`~aimodel_kernel.config.Settings` point elsewhere.

A SQLite store is created from a migrated template under a lock (:mod:`.creation`), runs in WAL
mode (connections wait for another process's write: MLflow's sessions 20 s, every other one
30 s), and is rebased when its folder was copied or moved. Settings
whose ``create_store`` attribute is false (the server extension's) never create, rebase or
convert a store and read only files inside its ``artifacts/`` folder. At most
:data:`MAX_OPEN_STORES` stores are kept open per process; the least recently used one is closed
(its SQLAlchemy engines disposed) when another opens.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ...config import Settings
from ...config import settings as default_settings
from ..core.errors import NotFoundError
from ..core.model_names import check_model_name
from . import creation, mlflow_sqlite
from .artifacts import MODEL_DIR, RunFiles
from .mlflow_sqlite import SQLITE

TAG = "aimodel."
_MAX_PARAM = 6000
_MAX_TAG = 8000
MAX_OPEN_STORES = 8
"""Stores kept open per process (each holds SQLAlchemy engines, connections and caches)."""


def creates_store(settings: Settings) -> bool:
    """Whether a store opened with ``settings`` may be created (and rebased, and switched to
    WAL mode): false for settings with ``create_store = False`` (the server extension's)."""
    return bool(getattr(settings, "create_store", True))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (``None`` for other stores or memory)."""
    if not uri.startswith(SQLITE):
        return None
    rest = uri[len(SQLITE):].split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


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
        self._open_lock = threading.Lock()
        self._client: Any = None
        path = sqlite_path(self.uri)
        self._db = path.resolve() if path is not None else None

    def use_settings(self, settings: Settings) -> None:
        """Take the policy of ``settings`` (same home, URI and creation): what a version is
        signed with and what loading trusts, the experiment, the progress interval. A store is
        shared by every call with its key, and each call's settings are what apply to it."""
        if settings.experiment != self.settings.experiment:
            self.__dict__.pop("experiment_id", None)
        self.settings = settings

    # -- connection -------------------------------------------------------------------------
    @property
    def creates(self) -> bool:
        """Whether this store may be created, rebased or converted when opened."""
        return creates_store(self.settings)

    @property
    def db_path(self) -> Path | None:
        """The SQLite database file, or ``None`` for a tracking server."""
        return self._db

    @property
    def client(self):
        """The ``MlflowClient``, opened on first use (creating a missing SQLite store).

        Raises
        ------
        NotFoundError
            The store does not exist and these settings never create one, or the file is not
            an MLflow store.
        """
        client = self._client
        if client is not None:
            return client
        with self._open_lock:
            opened = self._client is None
            if opened:
                self._client = self._open()
            client = self._client
        if opened:
            _keep(self)  # a store closed by the cache and used again counts as open again
        return client

    def _open(self):
        from mlflow import MlflowClient

        mlflow_sqlite.quiet_logs()
        db = self.db_path
        if db is not None:
            root = self.local_artifact_root()
            if self.creates:
                rebased = creation.prepare(db, key=mlflow_sqlite.template_key(),
                                           migrate=mlflow_sqlite.migrate,
                                           artifact_root=root or db.parent / creation.ARTIFACTS)
                if rebased:
                    mlflow_sqlite.forget_artifact_repos()
            elif not db.is_file() or not creation.is_mlflow_db(db):
                what = "no store" if not db.is_file() else "no MLflow store"
                raise NotFoundError(f"{what} at {db} (reading creates none)")
            mlflow_sqlite.tune_sqlite(db, sqlite_path(self.uri))
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def close(self) -> None:
        """Dispose this store's SQLAlchemy engines (closing its connections and file handles)
        and drop MLflow's cached store objects; the next use opens it again."""
        with self._open_lock:
            client, self._client = self._client, None
            self.__dict__.pop("experiment_id", None)
            self.__dict__.pop("_locations", None)
        if client is not None:
            mlflow_sqlite.release(self.uri)

    @cached_property
    def experiment_id(self) -> str:
        name = self.settings.experiment
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        if not self.creates:
            raise NotFoundError(f"no experiment {name!r} in the store at {self.uri}")
        artifacts = self.local_artifact_root()
        location = None
        if artifacts is not None:
            artifacts.mkdir(parents=True, exist_ok=True)
            location = artifacts.as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception as exc:  # another process created it first
            exists = mlflow_sqlite.already_exists(exc)
            exp = self.client.get_experiment_by_name(name) if exists else None
            if exp is None:
                raise
            return exp.experiment_id

    def local_artifact_root(self) -> Path | None:
        """Where artifacts go for a SQLite store: ``artifacts/`` beside the database file (so
        nothing lands in ``./mlruns``). ``None`` for a tracking server, which decides itself."""
        if self.settings.uses_embedded_store():
            return self.home / "artifacts"
        db = self.db_path
        if db is not None:
            return db.parent / "artifacts"
        return None

    def local_run_dir(self, run_id: str, artifact_uri: str | None = None) -> Path | None:
        """The local folder of a run's artifacts, under this store's ``artifacts/`` folder.

        MLflow records absolute locations, so a store whose folder was copied or moved still
        names the original's files; a run recorded under another ``.../artifacts`` root is read
        from the same place under the current one instead (never from the original).
        ``None`` when the artifacts are not local files (a tracking server's).
        """
        if artifact_uri is None:
            artifact_uri = self.run(run_id).info.artifact_uri
        recorded = creation.local_path(artifact_uri) if artifact_uri.startswith("file:") else None
        root = self.local_artifact_root()
        if recorded is None or root is None:
            return recorded
        if recorded == root or root in recorded.parents:
            return recorded
        for old in self._moved_roots():
            if recorded == old or old in recorded.parents:
                return root / recorded.relative_to(old)
        return recorded

    def _moved_roots(self) -> list[Path]:
        cached = self.__dict__.get("_locations")
        if cached is None:
            db, root = self.db_path, self.local_artifact_root()
            uris = creation.moved_roots(db, root.as_uri()) if db and root and db.is_file() else []
            cached = self.__dict__["_locations"] = [p for u in uris
                                                     if (p := creation.local_path(u))]
        return cached

    def readable(self, path: Path) -> bool:
        """Whether ``path`` (a run's artifact) exists and may be read: for a store that never
        creates (the server's), only files that resolve inside its ``artifacts/`` folder."""
        if not path.exists():
            return False
        root = self.local_artifact_root()
        if self.creates or root is None:
            return True
        real, top = path.resolve(), root.resolve()
        return real == top or top in real.parents

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
        """A local path for artifact ``path`` of a run (no copy for a local store, whose files
        are read under its current ``artifacts/`` folder, see :meth:`local_run_dir`).

        Raises
        ------
        NotFoundError
            A local store's run has no such artifact.
        """
        folder = self.local_run_dir(run_id)
        if folder is not None:
            local = folder / path
            if self.readable(local):
                return local
            raise NotFoundError(f"run {run_id} has no artifact {path!r} in {folder}")
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
            try:
                self.client.create_registered_model(name)
            except Exception as again:  # another process registered the name first
                if not mlflow_sqlite.already_exists(again):
                    raise
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
    """The :class:`Store` for the current settings, cached per (home, tracking URI, creates).

    At most :data:`MAX_OPEN_STORES` are kept: opening another closes the least recently used
    (:meth:`Store.close`), so a process reading many folders (the server extension) does not
    keep every one's engines, connections and file handles.
    """
    s = settings or default_settings
    with _stores_lock:
        store = _stores.get(_key(s)) or Store(s)
    store = _keep(store)
    if store.settings is not s:
        store.use_settings(s)
    return store


def _key(settings: Settings) -> tuple[str, str, bool]:
    return (str(settings.resolved_home()), settings.resolved_tracking_uri(),
            creates_store(settings))


def _keep(store: Store) -> Store:
    """Make ``store`` (or the one already kept for its key) the most recently used, and close
    the least recently used beyond :data:`MAX_OPEN_STORES` (unless a kept store shares its
    database). Closing happens outside the cache's lock (a store's own lock is taken)."""
    key = (str(store.home), store.uri, store.creates)
    with _stores_lock:
        kept = _stores.setdefault(key, store)
        _stores.move_to_end(key)
        evicted = [_stores.popitem(last=False)[1] for _ in range(len(_stores) - MAX_OPEN_STORES)]
        uris = {other.uri for other in _stores.values()}
    for old in evicted:
        if old.uri not in uris:
            old.close()
    return kept


class _StoreCache(OrderedDict):
    """The open stores, least recently used first; ``clear()`` closes them."""

    def clear(self) -> None:
        with _stores_lock:
            stores = list(self.values())
            super().clear()
        for store in stores:
            store.close()


_stores_lock = threading.RLock()
_stores: _StoreCache = _StoreCache()


def open_existing(settings: Settings | None = None) -> Store | None:
    """Open the current settings' store if it already exists (never creating one), with its
    tracking and registry stores, as a first ``%train`` would; ``None`` when there is none."""
    store = get_store(settings)
    db = store.db_path
    if db is None or not db.is_file():
        return None
    store.client.get_experiment_by_name(store.settings.experiment)
    store.client.search_registered_models(max_results=1)
    return store

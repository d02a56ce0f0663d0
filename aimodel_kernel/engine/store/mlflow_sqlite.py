"""MLflow's SQLite databases: the migrated template's key, migrations, per-connection tuning
(busy timeout, ``synchronous`` in WAL mode), and releasing MLflow's cached engines and stores.

Only :mod:`.tracking` (the store) and the warm-up use it; like :mod:`.tracking` it is a module of
the store package, the one place importing mlflow.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from . import creation

SQLITE = "sqlite:///"
"""The scheme of a SQLite tracking URI."""


_template_key: list[str] = []


def template_key() -> str:
    """Names the migrated template: MLflow's version and a digest of its migration files."""
    if not _template_key:
        import hashlib

        import mlflow

        versions = Path(mlflow.__file__).parent / "store" / "db_migrations" / "versions"
        names = sorted(p.name for p in versions.glob("*.py")) if versions.is_dir() else []
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
        _template_key.append(f"{mlflow.__version__}-{digest}")
    return _template_key[0]


def quiet_logs() -> None:
    """MLflow and alembic log every migration at INFO level: keep that out of the notebook."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def migrate(path: Path) -> None:
    """Create a fully migrated MLflow database at ``path`` (MLflow's own migrations)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    quiet_logs()

    uri = f"{SQLITE}{path}"
    store = SqlAlchemyStore(uri, str(path.parent / "artifacts"))
    store.engine.dispose()
    getattr(SqlAlchemyStore, "_engine_map", {}).pop(uri, None)


_tuned: set[str] = set()
_tune_lock = threading.Lock()


def tune_sqlite(*paths: Path | None) -> None:
    """Every SQLAlchemy connection to the database at ``paths`` (as resolved and as written)
    gets the busy timeout, and ``synchronous=NORMAL`` in WAL mode (safe there: a power cut
    loses at most the last commits, never the file)."""
    with _tune_lock:
        first = not _tuned
        _tuned.update(str(p) for p in paths if p is not None)
    if first:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "connect", _on_connect)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    import sqlite3

    if not _tuned or not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        files = {row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"}
        if files & _tuned:
            cursor.execute(f"PRAGMA busy_timeout = {creation.BUSY_TIMEOUT_MS}")
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def release(uri: str) -> None:
    """Dispose MLflow's engines for ``uri`` and clear its store caches (private attributes,
    looked up defensively: with another MLflow the store is merely kept open, not broken)."""
    try:
        import mlflow.store.model_registry.sqlalchemy_store as registry_store
        import mlflow.store.tracking.sqlalchemy_store as tracking_store
        import mlflow.tracking._model_registry.registry as registry_registry
        import mlflow.tracking._tracking_service.registry as tracking_registry
    except ImportError:  # pragma: no cover - another MLflow layout
        return
    for cls in (tracking_store.SqlAlchemyStore, registry_store.SqlAlchemyStore):
        engine = getattr(cls, "_engine_map", {}).pop(uri, None)
        if engine is not None:
            engine.dispose()
    for registry in (getattr(tracking_registry, "TrackingStoreRegistry", None),
                     getattr(registry_registry, "ModelRegistryStoreRegistry", None)):
        cached = getattr(registry, "_get_store_with_resolved_uri", None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


def forget_artifact_repos() -> None:
    """MLflow keeps each run's artifact repository in a process-wide cache: after a rebase the
    cached ones still name the old folder."""
    try:
        from mlflow.tracking._tracking_service import utils
    except ImportError:  # pragma: no cover - another MLflow layout
        return
    cache = getattr(utils, "_artifact_repos_cache", None)
    if hasattr(cache, "clear"):
        cache.clear()


def already_exists(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_ALREADY_EXISTS"


def import_mlflow(part: str) -> None:
    """Import MLflow (``"mlflow"``), its SQL tracking store (``"tracking"``) or its registry
    store (``"registry"``): the warm-up's first steps (:mod:`.warmup`), one part at a time."""
    if part == "mlflow":
        import mlflow
    elif part == "tracking":
        import mlflow.store.tracking.sqlalchemy_store
    elif part == "registry":
        import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
    else:
        raise ValueError(f"unknown part {part!r}")


def prepare_template() -> None:
    """Build the migrated template if this machine has none for this MLflow (for the warm-up
    after ``%load_ext``, :mod:`.warmup`): the first store created here then needs no
    migration either."""
    creation.template(template_key(), migrate)

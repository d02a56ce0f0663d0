"""Creating, opening and moving an embedded SQLite store safely (plain ``sqlite3``, no mlflow).

MLflow creates a missing SQLite database by running its ~60 schema migrations on it. Two
processes doing that at once on the same file race (``table already exists``, leftover
``_alembic_tmp_*`` tables, a store that never opens again), and it costs seconds. Here a store is
created only under an exclusive lock on its folder, as a copy of a migrated *template* that is
moved into place with ``os.replace``: another process sees either no database or a complete one.
The template is migrated once per machine and MLflow schema (under the cache folder's lock) in
``~/.cache/aimodel-kernel/`` (``$AIMODEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/aimodel-kernel``).

New stores use SQLite's write-ahead log (readers do not block the writer, and commits need no
``fsync`` each); a store created by older code is switched to it the first time it is opened.

MLflow records absolute artifact locations (an experiment's, every run's, every model version's
source), and turns a relative location into an absolute one itself. A store whose folder was
copied or moved is therefore *rebased* when opened for writing: every location under the old
``artifacts/`` folder is rewritten to the current one, in one transaction under the lock.
(Readers that must not write, such as the server extension, map the paths when they read: see
``tracking.Store.local_run_dir``.)

The migration itself is MLflow's and is passed in as a function (``tracking.py`` is the only
module that imports mlflow).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..core.errors import AimodelError, InputError
from ..core.files import fsync_path

CACHE_ENV = "AIMODEL_CACHE_DIR"
LOCK_TIMEOUT = 120.0
"""Seconds to wait for another process creating or rebasing the same store."""
BUSY_TIMEOUT_MS = 30_000
"""How long a connection waits for another process's write to finish before giving up."""

Migrate = Callable[[Path], None]
"""Creates a fully migrated MLflow database at the given (absent) path."""

# Columns holding artifact locations, by table (MLflow 3's schema; absent ones are skipped).
LOCATION_COLUMNS = {
    "experiments": ("artifact_location",),
    "runs": ("artifact_uri",),
    "model_versions": ("source", "storage_location"),
    "logged_models": ("artifact_location",),
}
ARTIFACTS = "artifacts"


class StoreBusy(AimodelError):
    """Another process has held a store's creation lock for longer than :data:`LOCK_TIMEOUT`."""


@contextlib.contextmanager
def locked(folder: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder`` (created if missing) for the ``with`` block.

    The lock is on the folder itself, so no lock file is left behind; it is released when the
    process ends, however it ends. Where ``fcntl`` is missing (Windows) nothing is locked.

    Raises
    ------
    StoreBusy
        The lock was not free within ``timeout`` seconds (:data:`LOCK_TIMEOUT` by default).
    """
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreBusy(
                        f"another process has been creating the store in {folder} for "
                        f"{timeout:.0f} s; if none is, remove any stale process and try again"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def cache_dir() -> Path:
    """Where migrated templates are kept: ``$AIMODEL_CACHE_DIR``, else the user cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "aimodel-kernel"


def connect(db: Path, timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A plain ``sqlite3`` connection with the store's busy timeout (autocommit mode)."""
    con = sqlite3.connect(str(db), timeout=timeout_ms / 1000, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
    return con


def is_mlflow_db(db: Path) -> bool:
    """True when ``db`` is a SQLite file holding MLflow's tables (not any file of that name)."""
    try:
        with contextlib.closing(connect(db, 2000)) as con:
            names = {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"alembic_version", "experiments", "runs"} <= names:
                return False
            return con.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    except sqlite3.DatabaseError:
        return False


def leftover_migration_tables(db: Path) -> list[str]:
    """Tables an interrupted migration left behind (``_alembic_tmp_*``); empty for a good store."""
    with contextlib.closing(connect(db)) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return sorted(n for n in names if n.startswith("_alembic_tmp_"))


def uses_wal(db: Path) -> bool:
    """Whether ``db`` is in write-ahead-log mode, from its header (bytes 18-19 are 2)."""
    try:
        with open(db, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2 and header[19] == 2


def template(key: str, migrate: Migrate) -> Path | None:
    """The migrated template database for ``key`` (an MLflow version and schema), built once.

    Returns ``None`` when the cache folder cannot be written (the caller then migrates in
    place, as slowly as before, but still under the store's lock).
    """
    folder = cache_dir()
    path = folder / f"mlflow-{key}.db"
    if path.is_file() and is_mlflow_db(path):
        return path
    try:
        with locked(folder):
            if path.is_file() and is_mlflow_db(path):
                return path
            for stale in folder.glob(f".mlflow-{key}.db.*.tmp*"):
                stale.unlink(missing_ok=True)
            tmp = folder / f".mlflow-{key}.db.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            try:
                migrate(tmp)
                _set_journal(tmp, "DELETE")  # a template is copied: keep it in one file
                fsync_path(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            return path
    except OSError:
        return None


def ensure_store(db: Path, *, key: str, migrate: Migrate, artifact_root: Path) -> bool:
    """Create the store database ``db`` if it does not exist; True when this call created it.

    A copy of the template (or, without one, a freshly migrated file) is prepared beside ``db``
    under the folder's lock, switched to WAL mode, given the default experiment's location
    ``<artifact_root>/0``, flushed to disk and moved into place with ``os.replace``.

    Raises
    ------
    InputError
        The folder cannot be created or written.
    StoreBusy
        Another process held the folder's lock for longer than :data:`LOCK_TIMEOUT`.
    """
    if _exists(db):
        return False
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise InputError(f"cannot create the store in {db.parent}: permission denied; set "
                         "AIMODEL_HOME (or MLFLOW_TRACKING_URI) to a folder you can write"
                         ) from None
    with locked(db.parent):
        if _exists(db):
            return False
        for stale in db.parent.glob(f".{db.name}.*.tmp*"):
            stale.unlink(missing_ok=True)
        tmp = db.parent / f".{db.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            same = cache_dir().expanduser().resolve() == db.parent.resolve()
            source = None if same else template(key, migrate)  # (one lock per folder)
            if source is not None:
                shutil.copyfile(source, tmp)
            else:
                migrate(tmp)
            with contextlib.closing(connect(tmp)) as con:
                con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                            (f"{artifact_root.as_uri()}/0",))
                con.execute("PRAGMA journal_mode = WAL")
            fsync_path(tmp)
            os.replace(tmp, db)
            fsync_path(db.parent)
        finally:
            tmp.unlink(missing_ok=True)
            for side in ("-wal", "-shm", "-journal"):
                Path(f"{tmp}{side}").unlink(missing_ok=True)
    return True


def prepare(db: Path, *, key: str, migrate: Migrate, artifact_root: Path) -> int:
    """Everything before MLflow opens a store it may write to; the locations rebased.

    Creates a missing store, switches an old one to WAL mode (best effort: not while another
    process holds it open in rollback mode), and rebases the artifact locations of a store that
    was copied or moved (see :func:`rebase`). An existing store in place costs one header read
    and two queries.

    Raises
    ------
    InputError
        ``db`` exists but is not an MLflow store.
    """
    if ensure_store(db, key=key, migrate=migrate, artifact_root=artifact_root):
        return 0
    if not is_mlflow_db(db):
        raise InputError(f"{db} is not an MLflow store; move it away or point AIMODEL_HOME "
                         "at another folder")
    root = artifact_root.as_uri()
    needs_wal, moved = not uses_wal(db), bool(moved_roots(db, root))
    rebased = 0
    if needs_wal or moved:
        with locked(db.parent):
            if needs_wal:
                _try_wal(db)
            if moved:
                rebased = rebase(db, root)
    return rebased


def moved_roots(db: Path, root_uri: str) -> list[str]:
    """The recorded artifact roots of ``db``'s experiments that are not ``root_uri``.

    An experiment of ours has the store's ``artifacts/`` folder as its location; one whose
    location is another ``.../artifacts`` folder was recorded before the store was copied or
    moved. (Other locations, such as MLflow's ``./mlruns``, are someone else's and left alone.)
    """
    with contextlib.closing(connect(db)) as con:
        locations = [r[0] for r in con.execute("SELECT artifact_location FROM experiments")]
    roots = set()
    for location in locations:
        if not (location or "").startswith("file:") or location == root_uri:
            continue
        path = local_path(location)
        if path is not None:
            if path.name == ARTIFACTS:
                roots.add(location)
            elif path.parent.name == ARTIFACTS and path.name.isdigit():
                roots.add(location.rsplit("/", 1)[0])  # the default experiment: <root>/0
    return sorted(r for r in roots if r != root_uri)


def rebase(db: Path, root_uri: str) -> int:
    """Rewrite every artifact location under a moved root to ``root_uri``; the rows changed.

    One ``BEGIN IMMEDIATE`` transaction, so a reader sees the old or the new locations, never a
    mix. Run under :func:`locked`; running it twice changes nothing the second time.
    """
    with contextlib.closing(connect(db)) as con:
        olds = moved_roots(db, root_uri)
        if not olds:
            return 0
        columns = _location_columns(con)
        changed = 0
        con.execute("BEGIN IMMEDIATE")
        try:
            for old in olds:
                for table, column in columns:
                    cur = con.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                        f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                        (root_uri, len(old) + 1, old, len(old) + 1, old + "/"))
                    changed += cur.rowcount
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return changed


def local_path(uri: str) -> Path | None:
    """The local path of a ``file:`` URI (or of a plain absolute path), else ``None``."""
    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    if uri.startswith("/"):
        return Path(uri)
    return None


def _location_columns(con: sqlite3.Connection) -> list[tuple[str, str]]:
    found = []
    for table, columns in LOCATION_COLUMNS.items():
        present = {r[1] for r in con.execute(f"PRAGMA table_info('{table}')")}
        found.extend((table, c) for c in columns if c in present)
    return found


def _exists(db: Path) -> bool:
    try:
        return db.stat().st_size > 0
    except OSError:
        return False


def _set_journal(db: Path, mode: str) -> None:
    with contextlib.closing(connect(db)) as con:
        con.execute(f"PRAGMA journal_mode = {mode}")


def _try_wal(db: Path) -> None:
    try:
        with contextlib.closing(connect(db, 1000)) as con:
            con.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError:  # held open by a process in rollback mode: next time
        pass

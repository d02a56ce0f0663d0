"""Creating, opening, closing and moving a store: real processes, real SQLite files, real MLflow.

Several processes using a fresh store at the same moment each record a run and a version
(MLflow's own migrations race there); a store comes from a migrated template in WAL mode with a
busy timeout; reading never creates; at most ``MAX_OPEN_STORES`` stay open; a copied or moved
store reads and writes its own files, never the original's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy
from conftest import PYTHON, subprocess_env
from sklearn.linear_model import LogisticRegression

from aimodel_kernel.config import Settings
from aimodel_kernel.engine.core.errors import InputError, NotFoundError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store import creation, mlflow_sqlite, tracking
from aimodel_kernel.engine.store.registry import load_version
from aimodel_kernel.engine.store.tracking import MAX_OPEN_STORES, get_store
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.engine.versions.diff import diff_versions
from aimodel_kernel.server.store_location import reading

WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from aimodel_kernel.config import Settings
    from aimodel_kernel.engine.store.tracking import get_store
    import mlflow.store.tracking.sqlalchemy_store, mlflow.store.model_registry.sqlalchemy_store

    base, me, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    (base / f"ready-{me}").touch()
    for r in range(rounds):
        while not (base / f"go-{r}").exists():
            time.sleep(0.002)
        try:
            store = get_store(Settings(home=base / f"round-{r}" / ".aimodel"))
            run_id = store.start_run(run_name=f"p{me}", params={"me": me}, tags={"round": r})
            store.log_metrics(run_id, [("score", float(me), None)])
            store.log_text(run_id, f"process {me}", "notes/who.txt")
            version = store.register_version("shared", run_id)
            store.end_run(run_id)
            print(json.dumps({"round": r, "ok": True, "version": version}), flush=True)
        except Exception as exc:
            print(json.dumps({"round": r, "ok": False, "error": repr(exc)[:500]}), flush=True)
""")


def locations(db: Path) -> list[str]:
    """Every artifact location the database records (experiments, runs, versions)."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        rows = [r[0] for r in con.execute("SELECT artifact_location FROM experiments")]
        rows += [r[0] for r in con.execute("SELECT artifact_uri FROM runs")]
        rows += [r[0] for r in con.execute("SELECT source FROM model_versions")]
        rows += [r[0] for r in con.execute("SELECT storage_location FROM model_versions")]
    return [r for r in rows if r]


def test_processes_using_a_fresh_store_at_once_all_record(tmp_path):
    """5 processes open a never-created store at the same moment, 3 times (the first time with
    no template on the machine either): every run and version is recorded, the store is whole."""
    n, rounds = 5, 3
    base = tmp_path / "race"
    base.mkdir()
    env = subprocess_env(AIMODEL_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("AIMODEL_HOME", None)
    procs = [subprocess.Popen([PYTHON, "-c", WORKER, str(base), str(i), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(n)]
    results, errors = [], []
    try:
        deadline = time.monotonic() + 300
        while len(list(base.glob("ready-*"))) < n:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the workers never got ready"
            time.sleep(0.05)
        for r in range(rounds):  # all at once, and the next round only once all are done
            (base / f"go-{r}").touch()
            lines = [p.stdout.readline() for p in procs]
            assert all(lines), [p.communicate()[1][-2000:] for p in procs]
            results += [json.loads(line) for line in lines]
    finally:
        for p in procs:
            if p.poll() is None:
                p.wait(timeout=60)
            errors.append(p.stderr.read()[-2000:])
    failed = [r for r in results if not r["ok"]]
    assert not failed, (failed, errors)
    assert len(results) == n * rounds
    for r in range(rounds):
        db = base / f"round-{r}" / ".aimodel" / "mlflow.db"
        assert sorted(x["version"] for x in results if x["round"] == r) == list(range(1, n + 1))
        assert creation.leftover_migration_tables(db) == []
        with contextlib.closing(sqlite3.connect(db)) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            statuses = [s for (s,) in con.execute("SELECT status FROM runs")]
            experiments = [e for (e,) in con.execute("SELECT name FROM experiments")]
        assert statuses == ["FINISHED"] * n
        assert sorted(experiments) == ["Default", "aimodel"]
        store = get_store(Settings(home=db.parent))
        assert [v.version for v in store.versions("shared")] == list(range(1, n + 1))
        notes = {store.artifact(v.run_id, "notes/who.txt").read_text()
                 for v in store.versions("shared")}
        assert notes == {f"process {i}" for i in range(n)}
        assert not list(db.parent.glob(".mlflow.db.*"))  # no half-made copy left behind
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and cached[0].name.startswith("mlflow-")  # one template, built once


def test_a_new_store_is_a_copy_of_the_template_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("AIMODEL_CACHE_DIR", str(tmp_path / "cache"))
    first = get_store(Settings(home=tmp_path / "a" / ".aimodel"))
    first.model_names()
    [template] = (tmp_path / "cache").glob("mlflow-*.db")
    built = template.stat().st_mtime_ns
    assert not creation.uses_wal(template)  # the template stays one file to copy
    second = get_store(Settings(home=tmp_path / "b" / ".aimodel"))
    second.model_names()
    assert template.stat().st_mtime_ns == built  # copied, not migrated again
    for store in (first, second):
        db = store.db_path
        assert creation.uses_wal(db) and creation.is_mlflow_db(db)
        with contextlib.closing(sqlite3.connect(db)) as con:
            [(location,)] = con.execute(
                "SELECT artifact_location FROM experiments WHERE experiment_id = 0")
        assert location == f"{store.local_artifact_root().as_uri()}/0"
        # MLflow's connections skip the fsync per commit (WAL: synchronous=NORMAL) and wait for
        # a writer (MLflow's sessions set 20 s themselves; every other connection gets 30 s)
        engine = store.client._tracking_client.store.engine
        with engine.connect() as con:
            assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 1
            assert con.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 20_000
        other = sqlalchemy.create_engine(store.uri)
        with other.connect() as con:
            assert con.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
            assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        other.dispose()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [".aimodel"]


def test_an_old_store_is_switched_to_wal_when_opened(tmp_path, template_db):
    home = tmp_path / "old" / ".aimodel"
    home.mkdir(parents=True)
    shutil.copyfile(template_db, home / "mlflow.db")
    assert not creation.uses_wal(home / "mlflow.db")
    get_store(Settings(home=home)).model_names()
    assert creation.uses_wal(home / "mlflow.db")


def test_creation_waits_for_the_lock_and_gives_up_cleanly(tmp_path, monkeypatch):
    """Another process holding the folder's lock: creation waits, then says so and leaves
    nothing behind."""
    home = tmp_path / "busy" / ".aimodel"
    home.mkdir(parents=True)
    holder = subprocess.Popen(
        [PYTHON, "-c", "import fcntl, os, sys, time\n"
                       f"fd = os.open({str(home)!r}, os.O_RDONLY)\n"
                       "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\n"
                       "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(creation, "LOCK_TIMEOUT", 0.3)
        store = get_store(Settings(home=home))
        with pytest.raises(creation.StoreBusy, match="another process"):
            store.model_names()
        assert list(home.iterdir()) == []
    finally:
        holder.kill()
        holder.wait()
    assert store.model_names() == []  # the lock is free again: the store opens
    assert creation.is_mlflow_db(home / "mlflow.db")


def test_reading_never_creates_a_store(tmp_path):
    missing = reading(Settings(home=tmp_path / "none" / ".aimodel"))
    with pytest.raises(NotFoundError, match="no store"):
        get_store(missing).model_names()
    assert not (tmp_path / "none").exists()
    # a file of that name that is not an MLflow store is left exactly as it is
    home = tmp_path / "other" / ".aimodel"
    home.mkdir(parents=True)
    (home / "mlflow.db").write_bytes(b"not a database")
    with pytest.raises(NotFoundError, match="no MLflow store"):
        get_store(reading(Settings(home=home))).model_names()
    assert (home / "mlflow.db").read_bytes() == b"not a database"
    assert sorted(p.name for p in home.iterdir()) == ["mlflow.db"]


def test_a_file_that_is_not_a_store_is_refused_and_left_alone(tmp_path):
    home = tmp_path / ".aimodel"
    home.mkdir()
    (home / "mlflow.db").write_bytes(b"my own notes")
    with pytest.raises(InputError, match="is not an MLflow store"):
        get_store(Settings(home=home)).model_names()
    assert (home / "mlflow.db").read_bytes() == b"my own notes"
    assert sorted(p.name for p in home.iterdir()) == ["mlflow.db"]


def _fds_under(folder: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)):
                found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files via /proc")
def test_at_most_max_open_stores_stay_open(tmp_path, template_db):
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking

    folders = tmp_path / "many"
    stores = []
    for i in range(MAX_OPEN_STORES + 4):
        home = folders / f"p{i}" / ".aimodel"
        home.mkdir(parents=True)
        shutil.copyfile(template_db, home / "mlflow.db")
        store = get_store(reading(Settings(home=home)))
        assert store.model_names() == []
        stores.append(store)
    open_uris = {s.uri for s in stores[-MAX_OPEN_STORES:]}
    closed = {s.uri for s in stores[:4]}
    for cls in (Tracking, Registry):
        assert closed.isdisjoint(cls._engine_map)
        assert open_uris <= set(cls._engine_map)
    files = _fds_under(folders)
    assert files and {Path(f).parents[1].name for f in files} <= {Path(u).parents[1].name
                                                                 for u in open_uris}
    assert len(tracking._stores) <= MAX_OPEN_STORES
    assert stores[0].model_names() == []  # a closed store opens again when used
    tracking._stores.clear()
    assert _fds_under(folders) == []  # clearing the cache closes every file


def _two_versions(home: Path) -> Settings:
    from sklearn.datasets import load_breast_cancer

    settings = Settings(home=home)
    X, y = load_breast_cancer(return_X_y=True)
    for C in (1.0, 0.05):
        train(LogisticRegression(C=C, solver="liblinear"), X, y,
              TrainConfig(name="m", seed=0), settings=settings)
    tracking._stores.clear()
    return settings


def test_a_moved_store_loads_and_writes_only_its_own_files(tmp_path):
    original = tmp_path / "project"
    _two_versions(original / ".aimodel")
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.copytree(original, moved)
    shutil.rmtree(original)
    settings = Settings(home=moved / ".aimodel")
    model = load_version("m/1", settings=settings)
    assert type(model).__name__ == "LogisticRegression" and model.C == 1.0
    diff = diff_versions("m/1", "m/2", settings=settings)  # logs the diff on m/2's run
    assert diff.params == {"model.C": {"a": 1.0, "b": 0.05}}
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    train(LogisticRegression(solver="liblinear"), X, y, TrainConfig(name="m"), settings=settings)
    assert not original.exists()  # nothing read from, or written to, the old place
    root = (moved / ".aimodel" / "artifacts").resolve().as_uri()
    recorded = locations(moved / ".aimodel" / "mlflow.db")
    assert recorded and all(loc.startswith(root) for loc in recorded), recorded
    store = get_store(settings)
    run_b = store.versions("m")[1].run_id
    assert store.artifact(run_b, "diffs/m_1_vs_m_2.json") is not None
    assert len(store.versions("m")) == 3


def test_a_copy_read_without_writing_never_reads_the_original(tmp_path):
    """The server's reading settings rebase nothing: the copy's files are found by mapping the
    recorded paths, and the original (tampered with here) is never read."""
    original = tmp_path / "project"
    _two_versions(original / ".aimodel")
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    before = locations(copy / ".aimodel" / "mlflow.db")
    for model_file in (original / ".aimodel" / "artifacts").rglob("model.skops"):
        model_file.write_bytes(model_file.read_bytes() + b"tampered")
    settings = reading(Settings(home=copy / ".aimodel"))
    model = load_version("m/2", settings=settings)
    assert model.C == 0.05
    diff = diff_versions("m/1", "m/2", settings=settings, log=False)
    assert diff.params == {"model.C": {"a": 1.0, "b": 0.05}}
    assert locations(copy / ".aimodel" / "mlflow.db") == before  # read only: nothing rewritten
    with pytest.raises(Exception, match=r"(?i)sha-256|checksum|changed"):
        load_version("m/2", settings=Settings(home=original / ".aimodel"))


def test_a_store_reads_no_artifact_outside_its_folder_for_reading_settings(tmp_path):
    """A run whose recorded location is elsewhere (a crafted or foreign database) is not read
    through settings that only read."""
    settings = _two_versions(tmp_path / "p" / ".aimodel")
    store = get_store(settings)
    run_id = store.versions("m")[0].run_id
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "environment.json").write_text("{}")
    db = store.db_path
    tracking._stores.clear()
    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?",
                    (outside.as_uri(), run_id))
        con.commit()
    reader = get_store(reading(settings))
    assert reader.artifact(run_id, "environment.json") is None
    with pytest.raises(NotFoundError):
        reader.download(run_id, "environment.json")
    # a kernel's store reads what its database records, as MLflow does
    assert get_store(settings).artifact(run_id, "environment.json") == outside / "environment.json"


def test_the_template_is_keyed_by_mlflow_and_its_migrations():
    import mlflow

    key = mlflow_sqlite.template_key()
    assert key.startswith(f"{mlflow.__version__}-") and len(key.split("-")[-1]) == 12


SKOPS_TYPES = textwrap.dedent("""
    import json, sys
    import sklearn
    if sys.argv[1] == "fast":
        from aimodel_kernel.engine.store.fast_imports import TORCH_COMPAT, import_skops_io
        import_skops_io()
        assert TORCH_COMPAT not in sys.modules  # put back: importable again later
    else:
        import skops.io
    import skops.io._trusted_types as t
    lists = {k: sorted(map(str, v)) for k, v in vars(t).items()
             if k.isupper() and isinstance(v, (list, set, tuple))}
    print(json.dumps({"torch": "torch" in sys.modules, "lists": lists}))
""")


def test_skops_without_torch_trusts_the_same_types():
    """Importing skops with scikit-learn's torch compatibility package skipped lists the same
    trusted types, and imports no torch."""
    got = {}
    for way in ("plain", "fast"):
        done = subprocess.run([PYTHON, "-c", SKOPS_TYPES, way], capture_output=True, text=True,
                              env=subprocess_env(), timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        got[way] = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["fast"]["lists"] == got["plain"]["lists"]
    assert len(got["fast"]["lists"]["SKLEARN_ESTIMATOR_TYPE_NAMES"]) > 100
    assert got["fast"]["torch"] is False
    assert got["plain"]["torch"] is True  # (what skops does by itself when torch is installed)

"""``%aimodel freeze`` / ``%aimodel check``: what a colleague needs to rerun a notebook and get
the same versions, written next to the notebook, and how their kernel compares.

The lock file (``<notebook-stem>.aimodel-lock.json``, or ``aimodel.lock.json`` when the notebook
is unknown) holds:

- ``python`` and ``platform`` (operating system and machine architecture);
- ``packages``: the installed versions of the packages in use: ``aimodel-kernel``, numpy,
  scikit-learn and mlflow always, and torch, pandas, scipy, shap, fairlearn, onnx ... when the
  kernel has imported them;
- ``runs``: one entry per training this kernel recorded (runs that started after the kernel
  process did, finished, and whose ``%train`` line is in this session's cells, or that the
  experiment panel made): the ``%train`` line, the seed and whether the line fixes it, the
  determinism flag, and the fingerprint (SHA-256 and shape) of the data together with the
  variable names the line trained on. Identical entries (a cell run twice) are kept once.

No timestamps or run ids: the same notebook run the same way writes the same file, so it diffs
cleanly in git. ``check`` compares python, platform and package versions at once, and the data
fingerprints of the variables the runs used as soon as they are defined in the namespace
(``pending`` until then: run ``%aimodel check`` again after the cells that load the data).
Only plain variable names are looked up; an expression such as ``X[:100]`` in a recorded line is
never evaluated (a lock file is data, not code).
"""

from __future__ import annotations

import json
import platform
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.data import check_data, fingerprint
from ..core.environment import packages_in_use
from ..core.errors import AimodelError, InputError, NotFoundError
from ..store.tracking import TAG, Store

LOCK_VERSION = 1
DEFAULT_FILE = "aimodel.lock.json"
SUFFIX = ".aimodel-lock.json"


# -- where ------------------------------------------------------------------------------------
def lock_path(path: str | None = None, *, notebook: str | None = None,
              cwd: Path | None = None) -> Path:
    """The lock file: ``path`` (a file; a folder gets the default name inside; a ``.ipynb``
    gets its own lock beside it), else beside ``notebook``, else ``aimodel.lock.json`` in
    ``cwd``."""
    cwd = cwd or Path.cwd()
    nb = Path(notebook) if notebook and notebook.endswith(".ipynb") else None
    name = nb.stem + SUFFIX if nb else DEFAULT_FILE
    if path:
        p = Path(path).expanduser()
        p = p if p.is_absolute() else cwd / p
        if p.suffix == ".ipynb":
            return p.with_name(p.stem + SUFFIX)
        if p.is_dir() or path.endswith(("/", "\\")):
            return p / name
        return p
    if nb is not None and nb.is_absolute():
        return nb.with_name(name)
    return cwd / name


def kernel_started() -> float | None:
    """When this process started (seconds since the epoch), or ``None`` if unknown."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:
        return None


# -- what -------------------------------------------------------------------------------------
def line_names(line: str) -> dict[str, str | None]:
    """``model``, ``X`` and ``y`` as written in a ``%train`` line (``{}`` for other lines)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        tokens = line.split()
    if not tokens or tokens[0] != "%train":
        return {}
    positional = []
    for token in tokens[1:]:
        if token.startswith("-"):
            break
        positional.append(token)
    if len(positional) < 2:
        return {}
    return {"model": positional[0], "X": positional[1],
            "y": positional[2] if len(positional) > 2 else None}


def _seed_in_line(line: str) -> bool:
    return any(t == "--seed" or t.startswith("--seed=") for t in line.split())


def _entry(tags: Mapping[str, str]) -> dict[str, Any]:
    line = tags[f"{TAG}magic"]
    names = line_names(line)
    seed = tags.get(f"{TAG}seed")
    entry: dict[str, Any] = {
        "magic": line,
        "framework": tags.get(f"{TAG}framework"),
        "model_class": tags.get(f"{TAG}model_class"),
        "name": tags.get(f"{TAG}name"),
        "seed": int(seed) if seed and seed.lstrip("-").isdigit() else None,
        "seed_in_line": _seed_in_line(line),
        "deterministic": tags.get(f"{TAG}deterministic") == "true",
        "data": {"X": names.get("X"), "y": names.get("y"),
                 "sha256": tags.get(f"{TAG}data.sha256"),
                 "shape": json.loads(tags.get(f"{TAG}data.shape", "null"))},
    }
    if tags.get(f"{TAG}panel.params"):
        entry["panel"] = json.loads(tags[f"{TAG}panel.params"])
    return entry


def recorded_runs(store: Store, *, since: float | None,
                  cells: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The lock entries of the finished runs recorded since ``since`` whose ``%train`` line is
    in one of ``cells`` (all when ``cells`` is None) or that an experiment panel made."""
    if store.settings.uses_embedded_store() and not (store.home / "mlflow.db").exists():
        return []  # no store yet: nothing recorded (and none is created here)
    experiment = store.client.get_experiment_by_name(store.settings.experiment)
    if experiment is None:
        return []
    query = f"attributes.start_time >= {int(since * 1000)}" if since else ""
    runs = store.client.search_runs([experiment.experiment_id], query, max_results=5000,
                                    order_by=["attributes.start_time ASC"])
    sources = list(cells) if cells is not None else None
    entries, seen = [], set()
    for run in runs:
        tags = run.data.tags
        line = tags.get(f"{TAG}magic")
        if run.info.status != "FINISHED" or not line:
            continue
        if sources is not None and f"{TAG}panel" not in tags and not any(
                line in cell for cell in sources):
            continue
        entry = _entry(tags)
        key = json.dumps(entry, sort_keys=True)
        if key not in seen:
            seen.add(key)
            entries.append(entry)
    return entries


@dataclass
class FreezeResult:
    """A written lock file and what to know about it."""

    path: str
    lock: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "lock": self.lock, "notes": self.notes}


def build_lock(*, runs: list[dict[str, Any]], notebook: str | None,
               modules: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The lock's content (see the module docstring)."""
    return {
        "aimodel_lock": LOCK_VERSION,
        "notebook": Path(notebook).name if notebook else None,
        "python": platform.python_version(),
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "packages": packages_in_use(modules),
        "runs": runs,
    }


def write_lock(lock: dict[str, Any], path: Path) -> None:
    """Sorted keys, two-space indent, a final newline: stable and diff-friendly.

    Raises
    ------
    InputError
        The folder cannot be made or the file cannot be written there.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the lock file {path}: {exc.strerror or exc}; pick a "
                         "writable folder") from None


def freeze(path: Path, *, store: Store, notebook: str | None, since: float | None,
           cells: Iterable[str] | None = None) -> FreezeResult:
    """Collect and write the lock file at ``path``."""
    runs = recorded_runs(store, since=since, cells=cells)
    lock = build_lock(runs=runs, notebook=notebook)
    write_lock(lock, path)
    notes = []
    if since is None:
        notes.append("the kernel's start time is unknown: every recorded run in the store "
                     "with its line in this session's cells was included")
    if not runs:
        notes.append("no training recorded by this kernel yet: only versions are locked; "
                     "run the notebook, then freeze again")
    for run in runs:
        if not run["seed_in_line"] and run["seed"] is not None:
            notes.append(f"{run['magic']!r} drew seed {run['seed']} at random: add --seed "
                         f"{run['seed']} to that line so a rerun trains the same model")
    return FreezeResult(str(path), lock, notes)


# -- check ------------------------------------------------------------------------------------
@dataclass
class CheckRow:
    """One comparison. ``status``: ``ok``, ``mismatch``, ``pending`` (cannot tell yet) or
    ``note`` (nothing to compare, but worth knowing)."""

    what: str
    name: str
    locked: Any
    current: Any
    status: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "name": self.name, "locked": self.locked,
                "current": self.current, "status": self.status, "detail": self.detail}


@dataclass
class CheckResult:
    """Every comparison of a lock file with this kernel."""

    path: str
    notebook: str | None
    rows: list[CheckRow]

    @property
    def mismatches(self) -> list[CheckRow]:
        return [r for r in self.rows if r.status == "mismatch"]

    @property
    def pending(self) -> list[CheckRow]:
        return [r for r in self.rows if r.status == "pending"]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "notebook": self.notebook,
                "mismatches": len(self.mismatches), "pending": len(self.pending),
                "rows": [r.to_dict() for r in self.rows]}


def read_lock(path: Path) -> dict[str, Any]:
    """The lock at ``path``; :class:`NotFoundError` when missing, :class:`InputError` when it is
    not a lock file."""
    if not path.is_file():
        raise NotFoundError(f"no lock file at {path}; run %aimodel freeze in the notebook's "
                            "original kernel first (or give the lock's path)")
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable lock file: {exc}") from None
    if not isinstance(lock, dict) or lock.get("aimodel_lock") != LOCK_VERSION:
        raise InputError(f"{path} is not an aimodel lock file (version {LOCK_VERSION})")
    return lock


def _compare(what: str, name: str, locked: Any, current: Any, missing: str = "") -> CheckRow:
    if current is None and missing:
        return CheckRow(what, name, locked, None, "mismatch", missing)
    return CheckRow(what, name, locked, current, "ok" if locked == current else "mismatch")


def check(lock: dict[str, Any], namespace: Mapping[str, Any], *, path: str = "") -> CheckResult:
    """Compare a lock with this kernel: python, platform, packages, data fingerprints, seeds."""
    rows = [_compare("python", "python", lock.get("python"), platform.python_version())]
    here = {"system": platform.system(), "machine": platform.machine()}
    for key, value in sorted((lock.get("platform") or {}).items()):
        rows.append(_compare("platform", key, value, here.get(key)))
    for name, version in sorted((lock.get("packages") or {}).items()):
        try:
            current = metadata.version(name)
        except metadata.PackageNotFoundError:
            current = None
        rows.append(_compare("package", name, version, current, "not installed"))
    rows += _data_rows(lock.get("runs") or [], namespace)
    rows += _seed_rows(lock.get("runs") or [])
    return CheckResult(path, lock.get("notebook"), rows)


def _data_rows(runs: list[dict[str, Any]], ns: Mapping[str, Any]) -> list[CheckRow]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        data = run.get("data") or {}
        if data.get("X") and data.get("sha256"):
            groups.setdefault((data["X"], data.get("y"), data["sha256"]), []).append(run)
    rows, cache = [], {}
    for (x, y, sha), used in groups.items():
        label = f"{x}, {y}" if y else x
        uses = f"used by {len(used)} run{'s' if len(used) != 1 else ''}"
        names = [n for n in (x, y) if n]
        if not all(n.isidentifier() for n in names):
            rows.append(CheckRow("data", label, sha[:12], None, "note",
                                 f"an expression, never evaluated from a lock file ({uses})"))
            continue
        absent = [n for n in names if n not in ns]
        if absent:
            rows.append(CheckRow("data", label, sha[:12], None, "pending",
                                 f"{absent[0]} is not defined yet: run the cells that load the "
                                 f"data, then %aimodel check again ({uses})"))
            continue
        if (x, y) not in cache:
            try:
                data = check_data(ns[x], ns[y] if y else None, numeric=False, allow_nan=True,
                                  x_name=x, y_name=y or "y")
                cache[(x, y)] = (fingerprint(data), "")
            except AimodelError as exc:
                cache[(x, y)] = (None, str(exc))
        fp, error = cache[(x, y)]
        if fp is None:
            rows.append(CheckRow("data", label, sha[:12], None, "mismatch", error))
            continue
        same = fp["sha256"] == sha
        shape = used[0]["data"].get("shape")
        detail = uses if same else (f"different data ({uses}): shape {fp['shape']} here, "
                                    f"{shape} when frozen")
        rows.append(CheckRow("data", label, sha[:12], fp["sha256"][:12],
                             "ok" if same else "mismatch", detail))
    return rows


def _seed_rows(runs: list[dict[str, Any]]) -> list[CheckRow]:
    rows = []
    for run in runs:
        seed, line = run.get("seed"), run.get("magic", "")
        if run.get("seed_in_line"):
            detail = "" if run.get("deterministic") or run.get("framework") != "torch" else \
                "PyTorch without --deterministic: weights may differ slightly"
            rows.append(CheckRow("seed", line, seed, seed, "ok", detail))
        else:
            rows.append(CheckRow("seed", line, seed, None, "note",
                                 f"drawn at random; add --seed {seed} to reproduce it"))
    return rows

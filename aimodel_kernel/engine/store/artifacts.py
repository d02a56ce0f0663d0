"""Where a run keeps its files (one table of artifact paths), and the one reader of them.

Every module that writes or reads a run's artifacts names the path through these constants,
so a path cannot drift between the writer and its readers (``%diff``, ``%reproduce``, the
server extension).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_DIR = "model"
"""The model's files (``manifest.json`` and the model file); a registered version points here."""
FINGERPRINT = "data/fingerprint.json"
ENVIRONMENT = "environment.json"
SOURCE_LINE = "source/magic.txt"
SOURCE_CELL = "source/cell.py"
EVALUATION = "evaluation/report.json"
IMPORTANCE = "explain/importance.json"
FAIRNESS = "fairness/report.json"
COMPRESSION = "compress/report.json"
DIFFS = "diffs"

RECORDED = {
    "fingerprint": FINGERPRINT,
    "environment": ENVIRONMENT,
    "evaluation": EVALUATION,
    "importance": IMPORTANCE,
    "fairness": FAIRNESS,
    "compression": COMPRESSION,
}
"""The JSON documents ``%diff`` compares, by the name it shows them under."""


class RunFiles:
    """A run's artifacts: read in place from a local artifact store, downloaded otherwise.

    A local store's files are read under its current ``artifacts/`` folder even when the run
    recorded another (the store's folder was copied or moved: ``Store.local_run_dir``), and a
    store that never creates (the server's) reads nothing outside that folder.

    Parameters
    ----------
    store : tracking.Store
        The store holding the run.
    run_id : str
        The run whose artifacts are read.
    artifact_uri : str, optional
        The run's artifact URI when the caller has it (saves a lookup).
    """

    def __init__(self, store: Any, run_id: str, artifact_uri: str | None = None) -> None:
        self.store, self.run_id = store, run_id
        self.root: Path | None = store.local_run_dir(run_id, artifact_uri)

    def path(self, rel: str) -> Path | None:
        """A local path of artifact ``rel``, or ``None`` when the run has none."""
        if self.root is not None:
            local = self.root / rel
            return local if self.store.readable(local) else None
        try:
            local = self.store.download(self.run_id, rel)
        except Exception as exc:  # the artifact is absent from a remote store
            if type(exc).__name__ in ("MlflowException", "FileNotFoundError", "OSError",
                                      "RestException"):
                return None
            raise
        return local if local.exists() else None

    def json(self, rel: str, notes: list[str] | None = None, ref: str = "") -> Any:
        """Artifact ``rel`` parsed as JSON; ``None`` when absent or unreadable (with a note)."""
        local = self.path(rel)
        if local is None:
            return None
        try:
            return json.loads(local.read_text())
        except (OSError, ValueError) as exc:
            if notes is not None:
                notes.append(f"{ref or self.run_id}: {rel} could not be read ({exc}); left out")
            return None

    def text(self, rel: str) -> str | None:
        """Artifact ``rel`` as text, or ``None`` when the run has none."""
        local = self.path(rel)
        return local.read_text() if local is not None else None

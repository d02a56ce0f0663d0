"""Durable file writes shared by the store and the checkpoints."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_path(path: str | Path) -> None:
    """Flush a file (or a folder's entries) to disk; a no-op where the OS does not allow it
    (some file systems refuse ``fsync`` on a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)

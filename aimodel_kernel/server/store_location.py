"""Which MLflow store a notebook's kernel uses, from the notebook's directory in a request.

A request names a directory relative to the server's root (``dir=projects/churn``). It is checked
as text first (no ``..``, no absolute or home paths, no backslashes or control characters), then
resolved and required to stay inside the root and to exist, so no request path reaches the file
system unchecked. The store is then chosen as the kernel would: ``$MLFLOW_TRACKING_URI``, else
``$AIMODEL_HOME``, else ``<dir>/.aimodel/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..config import HOME_ENV, TRACKING_ENV, Settings
from ..engine.core.errors import InputError

MAX_DIR_CHARS = 1024
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def check_relative_dir(rel: str) -> list[str]:
    """The parts of a request's relative directory, or :class:`InputError` when it is unsafe."""
    if len(rel) > MAX_DIR_CHARS:
        raise InputError(f"dir is longer than {MAX_DIR_CHARS} characters")
    if _BAD_CHARS.search(rel):
        raise InputError("dir contains a backslash or a control character")
    if rel.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", rel):
        raise InputError("dir must be relative to the server's root")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InputError("dir must not contain '..'")
    return parts


def settings_for(root_dir: str | Path, rel: str) -> Settings:
    """The store settings of a kernel whose notebook lives in ``rel`` under ``root_dir``.

    Raises
    ------
    InputError
        ``rel`` is unsafe, leaves the root through a link, or is not a directory.
    """
    root = Path(root_dir).expanduser().resolve()  # the server may abbreviate it as ~/...
    folder = root.joinpath(*check_relative_dir(rel)).resolve()
    if folder != root and root not in folder.parents:
        raise InputError("dir is outside the server's root")
    if not folder.is_dir():
        raise InputError(f"no directory {rel!r} under the server's root")
    if os.environ.get(TRACKING_ENV):
        return Settings(tracking_uri=os.environ[TRACKING_ENV])
    if os.environ.get(HOME_ENV):
        return Settings(home=Path(os.environ[HOME_ENV]))
    return Settings(home=folder / ".aimodel")


def store_exists(settings: Settings) -> bool:
    """False for an embedded store that was never created (reading must not create one)."""
    uri = settings.resolved_tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).is_file()
    return True

"""Which MLflow store a notebook's kernel uses, from the notebook's directory in a request.

A request names a directory relative to the server's root (``dir=projects/churn``). It is checked
as text first (no ``..``, no absolute or home paths, no backslashes or control characters), then
resolved and required to stay inside the root and to exist, so no request path reaches the file
system unchecked. The store is then chosen as the kernel would: ``$MLFLOW_TRACKING_URI``, else
``$AIMODEL_HOME``, else ``<dir>/.aimodel/``; a ``<dir>/.aimodel`` (or its ``mlflow.db`` or
``artifacts/``) that is a link leading out of the root is refused like a linked directory.

The handlers read through :func:`reading_settings_for`, whose settings never create a store
(:class:`ServerSettings`): reading a folder without one lists nothing and leaves nothing
behind, and the engine reads only files inside the store's ``artifacts/`` folder for them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
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


STORE_DIR = ".aimodel"
STORE_PARTS = ("mlflow.db", "artifacts")


@dataclass
class ServerSettings(Settings):
    """Store settings that never create, rebase or convert a store (see
    ``engine/store/tracking.py: creates_store``): the server only reads."""

    create_store: bool = False


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def settings_for(root_dir: str | Path, rel: str) -> Settings:
    """The store settings of a kernel whose notebook lives in ``rel`` under ``root_dir``.

    Raises
    ------
    InputError
        ``rel`` is unsafe, leaves the root through a link, or is not a directory; or the
        folder's ``.aimodel`` store (or its database or artifacts) is a link leaving the root.
    """
    root = Path(root_dir).expanduser().resolve()  # the server may abbreviate it as ~/...
    folder = root.joinpath(*check_relative_dir(rel)).resolve()
    if not _inside(folder, root):
        raise InputError("dir is outside the server's root")
    if not folder.is_dir():
        raise InputError(f"no directory {rel!r} under the server's root")
    if os.environ.get(TRACKING_ENV):
        return Settings(tracking_uri=os.environ[TRACKING_ENV])
    if os.environ.get(HOME_ENV):
        return Settings(home=Path(os.environ[HOME_ENV]))
    home = folder / STORE_DIR
    for path in (home, *(home / part for part in STORE_PARTS)):
        if (path.is_symlink() or path.exists()) and not _inside(path.resolve(), root):
            raise InputError(f"the store {STORE_DIR}/ of {rel or '.'!r} links outside the "
                             "server's root; the server reads only stores inside it")
    return Settings(home=home)


def reading_settings_for(root_dir: str | Path, rel: str) -> ServerSettings:
    """:func:`settings_for`, as settings that never create, rebase or convert the store.

    Raises
    ------
    InputError
        As :func:`settings_for`.
    """
    return reading(settings_for(root_dir, rel))


def reading(settings: Settings) -> ServerSettings:
    """The same store settings, as ones that never create, rebase or convert the store."""
    if isinstance(settings, ServerSettings):
        return settings
    return ServerSettings(**{f.name: getattr(settings, f.name) for f in fields(Settings)})


def store_exists(settings: Settings) -> bool:
    """False for an embedded store that was never created (reading must not create one)."""
    uri = settings.resolved_tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).is_file()
    return True

"""Importing skops without torch.

``import skops.io`` lists scikit-learn's estimators with ``sklearn.utils.all_estimators``,
which walks every scikit-learn package with ``pkgutil.walk_packages``; the walk imports each
package to look inside it, ``sklearn.externals.array_api_compat.torch`` among them, and that
imports torch (seconds, and hundreds of MB, for a scikit-learn-only user). ``all_estimators``
then ignores everything under ``externals``, so skops's lists of trusted types are the same
without it (checked by ``tests/engine/test_store_creation.py``). :func:`import_skops_io` makes
that one package unimportable while skops is first imported (``walk_packages`` skips a package
that raises ``ImportError``) and puts everything back afterwards.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

TORCH_COMPAT = "sklearn.externals.array_api_compat.torch"


def import_skops_io() -> ModuleType:
    """``skops.io``, imported without importing torch when it is not imported yet.

    Raises
    ------
    ImportError
        skops is not installed.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    blocked = TORCH_COMPAT not in sys.modules
    if blocked:
        sys.modules[TORCH_COMPAT] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("skops.io")
    finally:
        if blocked and sys.modules.get(TORCH_COMPAT, 0) is None:
            del sys.modules[TORCH_COMPAT]


def require_skops_io(purpose: str) -> ModuleType:
    """``skops.io`` for ``purpose``: imported without torch when possible, else as usual (a
    missing skops is a one-line :class:`~..core.errors.MissingDependency`)."""
    from ..core.errors import require

    try:
        return import_skops_io()
    except ImportError:
        return require("skops.io", package="skops", purpose=purpose)

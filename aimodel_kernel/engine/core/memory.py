"""Giving memory back after a large job: a notebook kernel lives on, and its resident size is
what a container limit (Binder's, a JupyterHub's) counts.

glibc keeps freed blocks of a process's heap for reuse instead of returning them to the system,
so after training a transformer the kernel can stay hundreds of megabytes above what it holds.
:func:`release_memory` collects garbage and asks the C library to trim (``malloc_trim``, glibc
only; a no-op elsewhere).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@cache
def _trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def release_memory() -> None:
    """Collect garbage and return the freed heap to the operating system where the C library
    allows it (glibc's ``malloc_trim``)."""
    gc.collect()
    trim = _trim()
    if trim is not None:
        trim(0)


def releases_memory(fn: F) -> F:
    """Decorate an engine function that holds large temporaries (models loaded from the store,
    ONNX sessions, exported programs): :func:`release_memory` once it returns or raises."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            release_memory()

    return wrapper  # type: ignore[return-value]

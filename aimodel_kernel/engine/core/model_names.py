"""Registered model names, checked before anything is written (the MLflow registry's rules)."""

from __future__ import annotations

import re

from .errors import InputError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_model_name(name: str) -> str:
    """Registered model names: letters, digits, ``_ . -``; at most 128 characters."""
    if not _NAME_RE.match(name or ""):
        raise InputError(
            f"invalid model name {name!r}: use letters, digits, '_', '.' or '-' (at most 128)"
        )
    return name

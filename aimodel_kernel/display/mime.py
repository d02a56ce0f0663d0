"""MIME type names of our reports (rendered by the JupyterLab extension) and bundle helpers."""

from __future__ import annotations

import base64

VENDOR_PREFIX = "application/vnd.aimodel."
SCHEMA_VERSION = 1


def mime_type(kind: str) -> str:
    """``application/vnd.aimodel.<kind>.v1+json`` for a report kind such as ``evaluation``."""
    return f"{VENDOR_PREFIX}{kind}.v{SCHEMA_VERSION}+json"


def png_base64(png: bytes) -> str:
    """PNG bytes as the base64 text a MIME bundle carries."""
    return base64.b64encode(png).decode("ascii")


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inlined, so saved notebooks and nbconvert HTML keep the plot."""
    from html import escape

    return (
        f'<img alt="{escape(alt)}" style="max-width:100%" '
        f'src="data:image/png;base64,{png_base64(png)}"/>'
    )

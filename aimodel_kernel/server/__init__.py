"""The Jupyter server extension: REST handlers the JupyterLab frontend reads models and diffs from.

Enabled by the ``jupyter-config/server-config/aimodel_kernel.json`` file the package installs;
``jupyter server extension list`` shows it.
"""

from __future__ import annotations

from typing import Any


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .handlers import setup_handlers

    setup_handlers(serverapp.web_app)
    serverapp.log.info("aimodel_kernel server extension: /aimodel/api ready")

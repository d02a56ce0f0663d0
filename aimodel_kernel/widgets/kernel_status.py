"""Training status pushed to the JupyterLab status bar over a comm (no polling from anywhere).

When a ``%train`` starts in a kernel, a comm with target ``aimodel.status`` is opened; its open
message and every later message carry one status dict::

    {"event": "start" | "progress" | "end", "run": str, "epoch": int, "epochs": int,
     "fraction": float, "eta_seconds": float | None, "line": str, "status": str}

The lab extension registers that target on every notebook kernel; without it (classic Notebook,
VS Code, a plain IPython) the frontend closes the comm and nothing else happens.
"""

from __future__ import annotations

import math
from typing import Any

TARGET = "aimodel.status"


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class StatusChannel:
    """Sends a run's status to the frontend; every method is a no-op outside a kernel."""

    def __init__(self, run: str) -> None:
        self.run = run
        self._comm: Any = None

    def _message(self, event: str, epoch: int, epochs: int, fraction: float, eta: float,
                 line: str, status: str) -> dict[str, Any]:
        return {"event": event, "run": self.run, "epoch": int(epoch), "epochs": int(epochs),
                "fraction": round(float(fraction), 4),
                "eta_seconds": round(eta, 1) if math.isfinite(eta) else None,
                "line": line, "status": status}

    def start(self, epoch: int, epochs: int) -> None:
        if not _in_kernel():
            return
        from comm import create_comm

        data = self._message("start", epoch, epochs, 0.0, math.nan, "starting", "RUNNING")
        self._comm = create_comm(target_name=TARGET, data=data)

    def progress(self, epoch: int, epochs: int, fraction: float, eta: float, line: str) -> None:
        if self._comm is not None:
            self._comm.send(self._message("progress", epoch, epochs, fraction, eta, line,
                                          "RUNNING"))

    def end(self, epoch: int, epochs: int, fraction: float, line: str, status: str) -> None:
        if self._comm is None:
            return
        self._comm.send(self._message("end", epoch, epochs, fraction, 0.0, line, status))
        self._comm.close()
        self._comm = None

    def announce(self, line: str, status: str) -> None:
        """A run that finished without live progress (scikit-learn): one ``end`` message, so
        the Models sidebar refreshes."""
        if not _in_kernel():
            return
        from comm import create_comm

        create_comm(target_name=TARGET,
                    data=self._message("end", 0, 0, 1.0, 0.0, line, status)).close()

"""``%aimodel freeze`` and ``%aimodel check``: a lock file next to the notebook, and how a kernel
compares with it (see :mod:`aimodel_kernel.engine.versions.lock`)."""

from __future__ import annotations

import os
from typing import Any

from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .base import AimodelMagicsBase
from .resolve import parse, usage_errors


@magics_class
class NotebookMagics(AimodelMagicsBase):
    """Shareable, reproducible notebooks."""

    def notebook(self) -> str | None:
        """The notebook's path when the frontend tells the kernel (Jupyter Server sets
        ``JPY_SESSION_NAME``; VS Code defines ``__vsc_ipynb_file__``)."""
        for candidate in (os.environ.get("JPY_SESSION_NAME"),
                          self.shell.user_ns.get("__vsc_ipynb_file__")):
            if isinstance(candidate, str) and candidate.endswith(".ipynb"):
                return candidate
        return None

    def _cells(self) -> list[str]:
        try:
            return [c for c in self.shell.history_manager.input_hist_raw if c]
        except AttributeError:
            return []

    @magic_arguments()
    @argument("action", choices=["freeze", "check"],
              help="freeze: write the lock file; check: compare this kernel with it")
    @argument("path", nargs="?",
              help="the lock file, a folder for it, or the notebook (default: "
                   "<notebook>.aimodel-lock.json beside the notebook, else aimodel.lock.json)")
    @line_magic
    @usage_errors
    def aimodel(self, line: str) -> Any:
        """Lock what a colleague needs to rerun this notebook, or check a kernel against it.

        ``freeze`` writes ``<notebook>.aimodel-lock.json`` next to the notebook (or
        ``aimodel.lock.json`` in the working directory when the notebook is unknown): python,
        platform, the versions of the packages in use, and for every training this kernel
        recorded its ``%train`` line, seed and data fingerprint. The JSON has sorted keys and no
        timestamps, so it diffs well in git. ``check`` reports every difference between this
        kernel and the lock (package versions, python, platform; data fingerprints of the
        recorded variables once they are defined), before anything runs.

        Examples
        --------
        ::

            %aimodel freeze                       # at the end of the notebook, then commit it
            %aimodel check                        # first cell, in a colleague's kernel
            %aimodel check ../shared/aimodel.lock.json
            r = %aimodel check; r.mismatches
        """
        from ..engine.versions.lock import lock_path

        args = parse(self.aimodel, line)
        path = lock_path(args.path, notebook=self.notebook())
        if args.action == "freeze":
            return self._freeze(path)
        return self._check(path)

    def _freeze(self, path: Any) -> Any:
        from ..display.lock_report import FreezeReport
        from ..engine.store.tracking import get_store
        from ..engine.versions.lock import freeze, kernel_started

        result = freeze(path, store=get_store(self.settings()), notebook=self.notebook(),
                        since=kernel_started(), cells=self._cells())
        return FreezeReport(result)

    def _check(self, path: Any) -> Any:
        from ..display.lock_report import CheckReport
        from ..engine.versions.lock import check, read_lock

        return CheckReport(check(read_lock(path), self.shell.user_ns, path=str(path)))

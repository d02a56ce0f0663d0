"""What every aimodel Magics class shares: the store settings of ``%config AimodelMagics``, the
recorded source of a magic, namespace lookups, and logging a report's plots to its run.

Only :class:`~.core.AimodelMagics` declares the configurable traits (``home``,
``tracking_uri``, ``progress_interval`` and what loading trusts: ``signing_key``,
``trusted_keys``, ``require_signed``, ``trusted_types``), so ``%config AimodelMagics.home =
'path'`` sets them in one place, and ``%config`` lists one configurable; every other class
reads them from the registered ``AimodelMagics`` when a magic runs, so a change applies to the
next magic of any class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics

from .resolve import cell_source, resolve

if TYPE_CHECKING:
    from ..config import Settings

CONFIG_CLASS = "AimodelMagics"  # the Magics class whose traits %config sets


class AimodelMagicsBase(Magics):
    """Base of the aimodel-kernel Magics classes (not registered itself)."""

    def _configured(self) -> Any:
        """The object holding the ``%config AimodelMagics.*`` traits: the registered
        ``AimodelMagics``."""
        return self.shell.magics_manager.registry[CONFIG_CLASS]

    def settings(self) -> Settings:
        """The store settings as configured now (read at every call: ``%config`` may change
        them between two magics)."""
        from ..config import Settings

        configured = self._configured()
        keys = configured.trusted_keys
        return Settings(home=configured.home or None,
                        tracking_uri=configured.tracking_uri or None,
                        progress_interval=configured.progress_interval,
                        signing_key=configured.signing_key or None,
                        trusted_keys=None if keys is None else tuple(keys),
                        require_signed=configured.require_signed,
                        trusted_types=tuple(configured.trusted_types))

    def source(self, magic: str, line: str) -> dict[str, str]:
        """What a run records as its code: the magic line and the cell it ran in."""
        return {"line": f"%{magic} {line}".strip(), "cell": cell_source(self.shell, line)}

    def resolve(self, expr: str, role: str) -> Any:
        """``expr`` evaluated in the notebook's namespace (see :func:`.resolve.resolve`)."""
        return resolve(self.shell, expr, role)

    @staticmethod
    def log_plots(result: Any, report: Any) -> None:
        """Log the report's PNG as ``plots.png`` beside a result that was logged to a run."""
        if not result.logged:
            return
        png = report.png()
        if png:
            from ..engine.store.tracking import log_result_artifact

            log_result_artifact(result, "plots.png", png)

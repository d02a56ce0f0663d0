"""``%diff``, ``%reproduce`` and ``%promote``: what changed between versions, and can we redo it."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .arguments import name_arg, no_log_arg
from .base import AimodelMagicsBase
from .resolve import parse, usage_errors


@magics_class
class LifecycleMagics(AimodelMagicsBase):
    """Version diffs, reproduction and registry aliases."""

    def _data(self, names: list[str] | None) -> tuple[Any, Any]:
        """``--data X [y]`` resolved; ``(None, None)`` when not given."""
        if not names:
            return None, None
        if len(names) > 2:
            raise UsageError("--data takes X and optionally y: --data X_test y_test")
        X = self.resolve(names[0], "--data X")
        y = self.resolve(names[1], "--data y") if len(names) == 2 else None
        return X, y

    # -- %diff -------------------------------------------------------------------------------
    @magic_arguments()
    @argument("a", help="the old version: NAME/VERSION, NAME@ALIAS or NAME (newest)")
    @argument("b", help="the new version")
    @argument("--data", nargs="+", metavar="NAME",
              help="X [y] to compare predictions on: flips, fixed vs broke")
    @no_log_arg.but(help="do not log the diff on B's run")
    @line_magic
    @usage_errors
    def diff(self, line: str) -> Any:
        """What changed between two model versions, and what it did to the model's behaviour.

        Parameters, code (the recorded cell and magic line), training data, package versions
        and lineage that differ; every metric's delta; per-class and confusion-matrix change;
        with ``--data``, the predictions that flipped and whether each flip fixed or broke a
        correct prediction. Versions load pickle-free with their SHA-256 checked.

        Examples
        --------
        ::

            %diff digits-mlp/3 digits-mlp/5 --data X_test y_test
            %diff digits-mlp@champion digits-mlp/5
            d = %diff cancer-rf/1 cancer-lr/1          # d.summary, d.to_dict()
        """
        from ..display.diff_report import DiffReport
        from ..engine.versions.diff import diff_versions

        args = parse(self.diff, line)
        X, y = self._data(args.data)
        return DiffReport(diff_versions(args.a, args.b, X=X, y=y, settings=self.settings(),
                                        log=not args.no_log))

    # -- %reproduce --------------------------------------------------------------------------
    @magic_arguments()
    @argument("version", help="NAME/VERSION (or NAME@ALIAS) to retrain from its record")
    @argument("--data", nargs="+", metavar="NAME",
              help="the training data X [y] (default: the names in the recorded %%train line)")
    @argument("--model", metavar="NAME",
              help="PyTorch: a module of the same architecture (default: the recorded name); "
                   "scikit-learn: an estimator of the same class to retrain instead of the "
                   "stored one")
    @name_arg.but(help="register the reproduction under this name (default: the same)")
    @argument("--tolerance", type=float, default=1e-6,
              help="largest weight difference accepted when not identical (1e-6)")
    @line_magic
    @usage_errors
    def reproduce(self, line: str) -> Any:
        """Retrain a version from its record, prove it matches, and register it as a new version.

        Uses the recorded parameters, seed and initial weights, on the same data (refused if
        its fingerprint differs). A deterministic CPU run, and any scikit-learn fit (``%train``
        seeds every ``random_state`` left ``None``), gives identical weights and metrics:
        "reproduced: identical weights, identical metrics", and the report ends with the diff.
        A retrained model that differs registers nothing; the report says what differs, e.g.
        "not reproduced: coef_ differs by up to 3.2e-05; n_iter_ differs (12 vs 14)".

        Examples
        --------
        ::

            %reproduce digits-mlp/3
            %reproduce cancer-rf/1 --data X_train y_train
            %reproduce cancer-rf/1 --model rf        # retrain the notebook's rf instead
        """
        from ..display.reproduce_report import ReproduceReport
        from ..engine.store.registry import resolve as resolve_version
        from ..engine.versions.diff import diff_versions
        from ..engine.versions.reproduce import reproduce

        args = parse(self.reproduce, line)
        settings = self.settings()
        record = resolve_version(args.version, settings=settings)
        recorded = self._recorded_names(record)
        X, y = self._data(args.data)
        if X is None:
            X = self._need(recorded.get("X"), record.ref, "X")
            y = self._need(recorded.get("y"), record.ref, "y") if recorded.get("y") else None
        model = None
        if record.run_tags.get("aimodel.framework") == "torch":
            model = self._need(args.model or recorded.get("model"), record.ref, "model")
        elif args.model:
            model = self._need(args.model, record.ref, "model")
        result = reproduce(record.ref, X, y, model=model, name=args.name, settings=settings,
                           source=self.source("reproduce", line), tolerance=args.tolerance)
        if result.reproduction:
            result.diff = diff_versions(record.ref, result.reproduction, settings=settings)
        return ReproduceReport(result)

    def _recorded_names(self, record: Any) -> dict[str, str]:
        """MODEL, X and y as written in the version's recorded ``%train`` line."""
        from .core import AimodelMagics

        line = record.run_tags.get("aimodel.magic", "")
        if not line.startswith("%train "):
            return {}
        try:
            parsed = parse(AimodelMagics.train, line[len("%train "):])
        except UsageError:
            return {}
        return {"model": parsed.model, "X": parsed.X, "y": parsed.y or ""}

    def _need(self, name: str | None, ref: str, role: str) -> Any:
        if not name:
            raise UsageError(f"the record of {ref} does not name its {role}; pass "
                             + ("--model NAME" if role == "model" else "--data X y"))
        if name.isidentifier() and name not in self.shell.user_ns:
            flag = "--model NAME" if role == "model" else "--data X y"
            raise UsageError(f"reproducing {ref} needs {name!r} ({role}), which is not defined "
                             f"here; run the cell that creates it, or pass {flag}")
        return self.resolve(name, role)

    # -- %promote ----------------------------------------------------------------------------
    @magic_arguments()
    @argument("version", help="NAME/VERSION to point the alias at")
    @argument("alias", help="registry alias, e.g. champion or staging")
    @line_magic
    @usage_errors
    def promote(self, line: str) -> Any:
        """Point a registry alias (``champion``, ``staging`` ...) at a version.

        Examples
        --------
        ::

            %promote digits-mlp/5 champion
            %diff digits-mlp@champion digits-mlp/6
        """
        from ..display.versions_report import VersionsReport
        from ..engine.store.registry import list_versions, promote

        args = parse(self.promote, line)
        settings = self.settings()
        record = promote(args.version, args.alias, settings=settings)
        return VersionsReport(list_versions(record.name, settings=settings))

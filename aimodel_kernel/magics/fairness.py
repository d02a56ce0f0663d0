"""``%fairness``: audit a model by sensitive groups and, on request, mitigate and register."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..engine.core.options import FAIRNESS_CONSTRAINTS, FAIRNESS_TASKS, MITIGATIONS
from .arguments import ci_arg, n_boot_arg, name_arg, no_log_arg, seed_arg, task_arg
from .base import AimodelMagicsBase
from .resolve import parse, usage_errors


@magics_class
class FairnessMagics(AimodelMagicsBase):
    """Fairness audits and mitigation."""

    def _sensitive(self, X: Any, spec: str) -> list[Any]:
        """Column names of X stay names; other names are array variables of the notebook."""
        names = [s.strip() for s in spec.split(",") if s.strip()]
        if not names:
            raise UsageError("--sensitive needs a column of X or an array variable, e.g. "
                             "--sensitive sex")
        columns = getattr(X, "columns", None)
        out: list[Any] = []
        for name in names:
            if columns is not None and name in columns:
                out.append(name)
            elif name.isidentifier() and name in self.shell.user_ns:
                out.append((name, self.resolve(name, "--sensitive")))
            else:
                out.append(name)  # the engine says which columns X has
        return out

    @magic_arguments()
    @argument("model", help="a fitted classifier (binary) or regressor from the namespace")
    @argument("X", help="features to audit on (a DataFrame holding the sensitive columns)")
    @argument("y", help="true labels or values of those rows")
    @argument("--sensitive", required=True, metavar="COL[,COL]",
              help="sensitive features: columns of X or array variables; several give "
                   "intersectional groups")
    @task_arg.but(choices=FAIRNESS_TASKS, default="auto", help="the task (default: the model's)")
    @argument("--mitigate", choices=MITIGATIONS,
              help="register a mitigated model: per-group thresholds (fairlearn "
                   "ThresholdOptimizer) or a reweighted retrained mixture (ExponentiatedGradient)")
    @argument("--constraint", choices=FAIRNESS_CONSTRAINTS,
              help="what --mitigate equalises (default demographic_parity)")
    @name_arg.but(help="registered name of the mitigated model (default: NAME-fair)")
    @argument("--fit-data", nargs="+", metavar="NAME",
              help="X_train y_train [s_train]: rows to fit the mitigation on (default: the audit "
                   "rows, which makes the 'after' numbers optimistic)")
    @ci_arg
    @n_boot_arg
    @argument("--min-group", type=int, default=20,
              help="smallest group measured, in rows (20)")
    @argument("--ratio-threshold", type=float, default=0.8,
              help="lowest acceptable selection-rate ratio (0.8: the four-fifths rule)")
    @argument("--difference-threshold", type=float, default=0.1,
              help="largest acceptable difference of rates between groups (0.1)")
    @seed_arg.but(default=0,
                  help="seed of the bootstrap and of a mitigated model's randomized predictions")
    @no_log_arg.but(help="write nothing: no logging to the model's run, no mitigated version")
    @line_magic
    @usage_errors
    def fairness(self, line: str) -> Any:
        """Audit MODEL on X, y by sensitive groups; optionally mitigate into a new version.

        Per group (fairlearn's ``MetricFrame``): count, selection rate, accuracy, TPR, FPR, FNR
        and precision (regression: MAE, RMSE, mean prediction). Checks: demographic parity
        ratio (the four-fifths rule, ``--ratio-threshold``), demographic parity, equal
        opportunity and equalized odds differences (``--difference-threshold``); failing ones
        are highlighted. ``--ci`` adds bootstrap intervals. When MODEL came from ``%train``,
        ``fairness.*`` metrics, ``fairness/report.json`` and the plots are logged to its run.

        ``--mitigate`` fits a mitigated model, shows accuracy and every disparity before and
        after on the same rows, and registers it as a new version whose parent is MODEL's
        version. It predicts with seeded randomization (as fairlearn does); a threshold model
        reads the sensitive columns from X at predict time.

        Examples
        --------
        ::

            %fairness clf X_test y_test --sensitive sex
            %fairness clf X_test y_test --sensitive sex,age_band --ci
            %fairness clf X_test y_test --sensitive sex --mitigate threshold --name credit-fair
            %fairness clf X_test y_test --sensitive sex --mitigate reduction \\
                --constraint equalized_odds --fit-data X_train y_train
            r = %fairness clf X_test y_test --sensitive group_array   # an array variable
            r.summary, r.failed, r.mitigation.model                   # values and the model
        """
        from ..display.fairness_report import FairnessReport
        from ..engine.fairness.audits import audit

        args = parse(self.fairness, line)
        if not args.mitigate:
            for flag, value in (("--constraint", args.constraint), ("--name", args.name),
                                ("--fit-data", args.fit_data)):
                if value:
                    raise UsageError(f"{flag} applies with --mitigate threshold|reduction")
        model = self.resolve(args.model, "model")
        X = self.resolve(args.X, "X")
        y = self.resolve(args.y, "y")
        sensitive = self._sensitive(X, args.sensitive)
        options = {"ci": args.ci, "n_boot": args.n_boot, "seed": args.seed,
                   "ratio_threshold": args.ratio_threshold,
                   "difference_threshold": args.difference_threshold,
                   "min_group": args.min_group}
        if not args.mitigate:
            result = audit(model, X, y, sensitive=sensitive, task=args.task,
                           log=not args.no_log, name=args.model, x_name=args.X, **options)
        else:
            result = self._mitigate(args, model, X, y, sensitive, line, options)
        report = FairnessReport(result)
        self.log_plots(result, report)
        after = result.mitigation.after_audit if result.mitigation is not None else None
        if after is not None and after.logged:
            self.log_plots(after, FairnessReport(after))
        return report

    def _mitigate(self, args: Any, model: Any, X: Any, y: Any, sensitive: list[Any],
                  line: str, options: dict[str, Any]) -> Any:
        from ..engine.fairness.mitigation import mitigate

        fit_data = None
        if args.fit_data:
            if len(args.fit_data) not in (2, 3):
                raise UsageError("--fit-data takes X_train y_train, and the sensitive array "
                                 "s_train when --sensitive names an array")
            fit_data = tuple(self.resolve(n, "--fit-data") for n in args.fit_data)
        return mitigate(model, X, y, sensitive=sensitive, task=args.task, method=args.mitigate,
                        constraint=args.constraint or "demographic_parity", name=args.name,
                        fit_data=fit_data, log=not args.no_log, settings=self.settings(),
                        source=self.source("fairness", line), model_name=args.model,
                        x_name=args.X, **options)

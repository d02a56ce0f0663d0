"""``%explain``: SHAP (and LIME) explanations of a model, shown in the cell, logged to its run."""

from __future__ import annotations

import warnings
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .resolve import parse, resolve, usage_errors

METHODS = ["auto", "tree", "linear", "gradient", "permutation", "kernel", "lime", "both"]



@magics_class
class ExplainMagics(Magics):
    """Model explanations with SHAP and LIME."""

    def _settings(self):
        from .core import AimodelMagics

        return self.shell.magics_manager.registry[AimodelMagics.__name__]._settings()

    @magic_arguments()
    @argument("model", help="a trained model from the namespace")
    @argument("X", help="rows to explain (array, DataFrame or tensor)")
    @argument("--row", type=int, metavar="N",
              help="explain only row N of X (0-based): why the model predicts what it does")
    @argument("--method", choices=METHODS, default="auto",
              help="auto (the explainer for the model), tree, linear, gradient (PyTorch), "
                   "permutation or kernel (model-agnostic), lime or both (SHAP beside LIME; "
                   "need --row)")
    @argument("--class", dest="target", metavar="C",
              help="the class to explain (default: the positive class of a binary model, else "
                   "each row's predicted class)")
    @argument("--max-rows", type=int, metavar="N",
              help="rows of a global view, a seeded sample (1000; 200 for per-row explainers)")
    @argument("--background", type=int, metavar="N",
              help="background rows, a seeded sample of X (100 linear/gradient, 50 "
                   "permutation/kernel, 500 LIME)")
    @argument("--seed", type=int, default=0, help="seed of the samples (0)")
    @argument("--top", type=int, default=10, help="features shown and logged (10)")
    @argument("--no-log", action="store_true", help="do not log to the model's MLflow run")
    @line_magic
    @usage_errors
    def explain(self, line: str) -> Any:
        """Explain MODEL's predictions on X with SHAP: which features matter, and how.

        The explainer suits the model and the result names it: TreeExplainer for tree models
        (scikit-learn trees, forests and boosting; XGBoost/LightGBM), LinearExplainer for linear
        models, DeepExplainer (DeepLIFT gradients) for PyTorch modules, and a model-agnostic
        PermutationExplainer on a seeded background sample otherwise; ``--method`` overrides.
        A Pipeline is explained in the features its final step sees. Without ``--row``: mean
        |SHAP| bars and a beeswarm over a seeded sample of rows; with ``--row N``: a waterfall
        for that row (``--method both`` adds LIME beside it). Before a slow explainer runs on
        many rows, a warning gives the expected time. When MODEL came from ``%train`` the
        explanation is logged to its run (``explain.*`` metrics, ``explain/importance.json``
        and the plots), so ``%diff`` can compare versions on it.

        Examples
        --------
        ::

            %explain clf X_test                          # global: which features matter
            %explain clf X_test --row 17                 # local: why this prediction
            %explain net X_test --method lime --row 3
            %explain clf X_test --row 17 --method both   # SHAP and LIME side by side
            %explain clf X_test --class virginica --top 5
            r = %explain clf X_test                      # r.values, r.importance, r.to_dict()
        """
        from ..display.explain_report import ExplainReport
        from ..engine.explain import SlowExplanationWarning, explain
        from ..engine.tracking import log_result_artifact

        args = parse(self.explain, line)
        model = resolve(self.shell, args.model, "model")
        X = resolve(self.shell, args.X, "X")
        with warnings.catch_warnings():
            warnings.simplefilter("always", SlowExplanationWarning)  # every time, not once
            result = explain(model, X, row=args.row, method=args.method, target=args.target,
                             max_rows=args.max_rows, background=args.background, seed=args.seed,
                             top=args.top, log=not args.no_log, name=args.model, x_name=args.X)
        report = ExplainReport(result)
        if result.logged:
            png = report.png()
            if png:
                log_result_artifact(result, "plots.png", png)
        return report

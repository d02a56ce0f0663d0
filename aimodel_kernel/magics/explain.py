"""``%explain``: SHAP (and LIME) explanations of a model, shown in the cell, logged to its run."""

from __future__ import annotations

import warnings
from typing import Any

from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..engine.core.options import EXPLAIN_METHODS
from .arguments import model_arg, no_log_arg, seed_arg
from .base import AimodelMagicsBase
from .resolve import parse, usage_errors


@magics_class
class ExplainMagics(AimodelMagicsBase):
    """Model explanations with SHAP and LIME."""

    @magic_arguments()
    @model_arg
    @argument("X", help="rows to explain (array, DataFrame or tensor)")
    @argument("--row", type=int, metavar="N",
              help="explain only row N of X (0-based): why the model predicts what it does")
    @argument("--method", choices=EXPLAIN_METHODS, default="auto",
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
    @seed_arg.but(default=0, help="seed of the samples (0)")
    @argument("--top", type=int, default=10, help="features shown and logged (10)")
    @argument("--tokenizer", metavar="TOK",
              help="token models: a tokenizer in the namespace; tokens are shown as its text "
                   "(convert_ids_to_tokens) instead of ids")
    @argument("--steps", type=int, metavar="N", dest="n_steps",
              help="token and image models: steps of the Integrated Gradients integral (50)")
    @no_log_arg
    @line_magic
    @usage_errors
    def explain(self, line: str) -> Any:
        """Explain MODEL's predictions on X with SHAP: which features matter, and how.

        The explainer suits the model and the result names it: TreeExplainer for tree models
        (scikit-learn trees, forests and boosting; XGBoost/LightGBM), LinearExplainer for linear
        models, DeepExplainer (DeepLIFT gradients) for PyTorch modules, and a model-agnostic
        PermutationExplainer on a seeded background sample otherwise; ``--method`` overrides.
        A PyTorch model given token ids (an int tensor, a dict with ``input_ids``, a Dataset of
        them) gets per-token Integrated Gradients on its embedding layer (Captum), the text
        shown with each token coloured; given images (N, C, H, W) or (N, H, W), a heat map of
        Integrated Gradients over each image.
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
            %explain bert enc --tokenizer tok            # enc: dict of input_ids, attention_mask
            r = %explain cnn images --steps 32 --max-rows 20   # r.heatmaps
        """
        from ..display.attribution_report import report_for
        from ..engine.explanation.entry import SlowExplanationWarning, explain

        args = parse(self.explain, line)
        model = self.resolve(args.model, "model")
        X = self.resolve(args.X, "X")
        tokenizer = self.resolve(args.tokenizer, "tokenizer") if args.tokenizer else None
        with warnings.catch_warnings():
            warnings.simplefilter("always", SlowExplanationWarning)  # every time, not once
            result = explain(model, X, row=args.row, method=args.method, target=args.target,
                             max_rows=args.max_rows, background=args.background, seed=args.seed,
                             top=args.top, log=not args.no_log, name=args.model, x_name=args.X,
                             tokenizer=tokenizer, tokenizer_name=args.tokenizer,
                             n_steps=args.n_steps)
        report = report_for(result)
        self.log_plots(result, report)
        return report

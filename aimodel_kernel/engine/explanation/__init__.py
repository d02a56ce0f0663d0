"""``%explain``: ``explain()`` (``entry``), its result, the explainer choice, the inputs an
explainer sees, SHAP values, LIME values, and recording on the model's run."""

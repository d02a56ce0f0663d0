"""The MLflow store and what lives in it: the only package importing mlflow
(``tracking``), the registry (``registry``: listing, resolving, verified loading, aliases),
what a run records (``records``), pickle-free model files with digests (``serialize``,
``onnx_model``), the table of artifact paths and their reader (``artifacts``), and the one way a
version is recorded (``recorder``)."""

"""``%evaluate``: metrics with scikit-learn's functions, curves, cross-validation and bootstrap
intervals (``metrics``)."""

from ..legacy import forwarder

__getattr__ = forwarder(__name__, "metrics")  # this package was the module evaluation.py

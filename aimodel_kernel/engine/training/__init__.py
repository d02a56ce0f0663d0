"""``%train``: ``train()`` (``entry``), where it runs (``jobs``), the scikit-learn fit
(``fit``), the PyTorch plan, loop, checkpoints and resume, sweeps, and ``distributed/`` for
several processes and nodes."""

from ..legacy import forwarder

__getattr__ = forwarder(__name__, "entry")  # this package was the module training.py

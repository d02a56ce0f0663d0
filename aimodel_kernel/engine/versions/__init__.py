"""``%diff``, ``%reproduce`` and ``%aimodel freeze/check``: what changed between two versions
(``changes``, ``deltas``, ``flips``, ``diff``), retraining a version from its record
(``reproduce``), and lock files (``lock``)."""

from ..legacy import forwarder

# this name was the module versions.py (listing, resolving, loading versions): store/registry.py
__getattr__ = forwarder(__name__, "..store.registry")

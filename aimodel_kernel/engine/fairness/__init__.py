"""``%fairness``: the audit (``audit``), bootstrap intervals, sensitive groups, mitigation into
pickle-free estimators (``mitigation``, ``mitigated_models``), the synthetic disparity generator
and the offline German credit data."""

from ..legacy import forwarder

__getattr__ = forwarder(__name__, "audits")  # this package was the module fairness.py

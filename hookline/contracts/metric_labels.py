"""Bounds on metric label values that clients choose: a label must not grow without end.

Every distinct label value is a time series a Prometheus server keeps; a tenant sending
events of ever new types must not be able to grow a worker's ``/metrics`` without bound.
"""

from __future__ import annotations

OTHER = "other"
"""The label value of everything past a bound."""


class BoundedLabelValues:
    """The first ``limit`` distinct values keep their own label value; later ones read
    ``other``. Per process: each worker remembers the values it saw first."""

    def __init__(self, limit: int) -> None:
        """
        Args:
            limit: How many distinct values keep their own label (0: all read ``other``).
        """
        self._limit = limit
        self._kept: set[str] = set()

    def set_limit(self, limit: int) -> None:
        """Change the bound (the worker applies ``metrics_max_event_types`` at start)."""
        self._limit = limit
        if len(self._kept) > limit:
            self._kept.clear()

    def __call__(self, value: str) -> str:
        """The label value to record for ``value``."""
        if value in self._kept:
            return value
        if len(self._kept) < self._limit:
            self._kept.add(value)
            return value
        return OTHER


EVENT_TYPES = BoundedLabelValues(50)
"""The ``event_type`` label of the worker's delivery metrics (attempts and deliveries)."""

"""Endpoint configuration for attempts, read from the registry at most once per TTL.

Every attempt needs its endpoint's URL, headers, secrets and state. Reading them from the
registry each time costs a query and a decryption per attempt; this cache keeps what it read
for ``ttl_s`` seconds per endpoint (``HOOKLINE_ENDPOINT_CACHE_TTL_S``), so a change made
through the API (new URL, rotated secret, disabled endpoint) reaches attempts within that
time. When the registry cannot be reached, attempts go on with the last configuration read,
whatever its age, and the worker logs that it does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity

from hookline.storage.entities import Endpoint
from hookline.storage.registry import Registry

log = logging.getLogger(__name__)

REGISTRY_TIMEOUT_S = 5.0
"""How long a read may stall before a stalled registry counts as unreachable."""
MAX_ENTRIES = 10_000
"""Endpoints remembered at once; the least recently used are forgotten first."""


@dataclass(frozen=True)
class _Entry:
    endpoint: Endpoint | None
    read_at: float
    expired: bool = False
    """Read again at the next lookup, whatever its age (kept for when the registry is down)."""


class EndpointCache:
    """Endpoints by (app, id), each read from ``registry`` at most once per ``ttl_s``."""

    def __init__(
        self,
        registry: Registry,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            registry: Where endpoints are read.
            ttl_s: How long a copy answers attempts; 0 reads the registry every time (and
                keeps the copy only for when the registry is down).
            clock: Seconds, monotonic (tests pass their own).
        """
        self._registry = registry
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    async def get(self, app_id: str, endpoint_id: str) -> Endpoint | None:
        """The endpoint, or ``None`` if it does not exist (or not in ``app_id``).

        Raises:
            SQLAlchemyError: the registry is unreachable and the endpoint was never read.
        """
        key = (app_id, endpoint_id)
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and not entry.expired and now - entry.read_at < self._ttl_s:
            self._entries.move_to_end(key)
            _count("hit")
            return entry.endpoint
        try:
            endpoint = await asyncio.wait_for(
                self._registry.endpoints.get(endpoint_id, app_id), REGISTRY_TIMEOUT_S
            )
        except (SQLAlchemyError, OSError) as err:  # TimeoutError is an OSError
            if entry is None:
                raise
            _count("stale")
            # Names the endpoint and the error type only: never its URL or secrets.
            log.warning(
                "registry unreachable (%s): delivering to endpoint %s with its configuration "
                "read %.0f s ago",
                type(err).__name__,
                endpoint_id,
                now - entry.read_at,
                extra={"endpoint_id": endpoint_id, "config_age_s": round(now - entry.read_at)},
            )
            return entry.endpoint
        _count("miss")
        self._entries[key] = _Entry(endpoint, now)
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
        return endpoint

    def expire(self, app_id: str, endpoint_id: str) -> None:
        """Make the next lookup of an endpoint read the registry, whose copy this worker has
        reason to doubt (it may predate a change), keeping the copy in case it is down."""
        key = (app_id, endpoint_id)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = _Entry(entry.endpoint, entry.read_at, expired=True)

    def forget(self, app_id: str, endpoint_id: str) -> None:
        """Drop the copy of an endpoint whose state this worker just changed."""
        self._entries.pop((app_id, endpoint_id), None)


def _count(outcome: str) -> None:
    """Count a lookup (``hookline_endpoint_cache_lookups`` on the worker's metrics)."""
    if activity.in_activity():
        activity.metric_meter().create_counter(
            "hookline_endpoint_cache_lookups",
            "Endpoint lookups by attempts: hit (cached copy), miss (registry read), "
            "stale (older copy, registry unreachable)",
        ).add(1, {"outcome": outcome})

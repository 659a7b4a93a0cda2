"""Each app's endpoints, as the API reads them to find an event's subscribers, read from the
registry at most once per TTL.

Finding the endpoints an event goes to is one registry read per event; with this copy, an
app's list is read once per ``ttl_s`` (``HOOKLINE_ENDPOINT_CACHE_TTL_S``, as for workers)
however many events it gets. A change made through this API process (a new, changed,
disabled or deleted endpoint) is seen by the next event; one made elsewhere (another API
process, a worker disabling a failing endpoint) within ``ttl_s``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from hookline.storage.entities import Endpoint
from hookline.storage.registry import Registry

MAX_APPS = 10_000
"""Apps whose lists are remembered at once; the least recently used are forgotten first."""


@dataclass(frozen=True)
class _Entry:
    endpoints: tuple[Endpoint, ...]
    read_at: float
    writes_before: int
    """``EndpointRepository.writes`` when the read began."""


class EndpointLists:
    """Endpoints by app, each list read from ``registry`` at most once per ``ttl_s``."""

    def __init__(
        self,
        registry: Registry,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            registry: Where endpoints are read and, through the API, written.
            ttl_s: How long a list answers; 0 reads the registry for every event.
            clock: Seconds, monotonic (tests pass their own).
        """
        self._registry = registry
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def of_app(self, app_id: str) -> list[Endpoint]:
        """Every endpoint of ``app_id``, oldest first, as the registry had it at most
        ``ttl_s`` ago and after every write made through ``registry``."""
        writes = self._registry.endpoints.writes
        entry = self._entries.get(app_id)
        now = self._clock()
        if entry and entry.writes_before == writes and now - entry.read_at < self._ttl_s:
            self._entries.move_to_end(app_id)
            return list(entry.endpoints)
        endpoints = await self._registry.endpoints.list(app_id)
        if self._ttl_s > 0:
            self._entries[app_id] = _Entry(tuple(endpoints), now, writes)
            self._entries.move_to_end(app_id)
            while len(self._entries) > MAX_APPS:
                self._entries.popitem(last=False)
        return endpoints

"""At most N POSTs in flight to one endpoint, per worker process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class EndpointSlots:
    """A semaphore per endpoint, made on first use and dropped when no attempt holds it."""

    def __init__(self, per_endpoint: int) -> None:
        self._per_endpoint = per_endpoint
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    def all_taken(self, endpoint_id: str) -> bool:
        """Whether an attempt to the endpoint would have to wait for a slot now."""
        held = self._slots.get(endpoint_id)
        return held is not None and held[0].locked()

    @asynccontextmanager
    async def slot(self, endpoint_id: str) -> AsyncIterator[None]:
        """Hold one of the endpoint's slots for the ``async with`` block (waiting for one)."""
        semaphore, users = self._slots.get(endpoint_id, (asyncio.Semaphore(self._per_endpoint), 0))
        self._slots[endpoint_id] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._slots[endpoint_id]
            if users == 1:
                del self._slots[endpoint_id]
            else:
                self._slots[endpoint_id] = (semaphore, users - 1)

"""POSTs in flight to one endpoint: at most a limit across the workers, each taking its share.

``HOOKLINE_ENDPOINT_MAX_CONCURRENT_ATTEMPTS`` bounds an endpoint without a lane across every
worker on the task queue: each worker opens at most its share of it, the limit divided by
the workers it counted (``hookline.worker.worker_count``), and at least one. An attempt
under a lane's permit (the lane holds the endpoint's own limit across the workers) is bounded
by the whole limit in each worker, as a safeguard only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Gate:
    """One endpoint's POSTs in flight in this worker, and the attempts waiting for a slot
    (whether each is under a permit), first come first served."""

    in_flight: int = 0
    waiting: deque[tuple[bool, asyncio.Future[None]]] = field(default_factory=deque)


class EndpointSlots:
    """A slot per POST to an endpoint, made on first use and dropped when none is held."""

    def __init__(self, per_endpoint: int, workers: int = 1) -> None:
        self._per_endpoint = per_endpoint
        self._workers = max(1, workers)
        self._gates: dict[str, _Gate] = {}

    @property
    def share(self) -> int:
        """Slots this worker has per endpoint without a lane: its share of the limit."""
        return max(1, self._per_endpoint // self._workers)

    def workers_counted(self, workers: int) -> None:
        """The workers on the task queue now (this one included): their shares change, and
        attempts waiting for a slot go if the new share has room for them."""
        self._workers = max(1, workers)
        for gate in self._gates.values():
            self._wake(gate)

    def all_taken(self, endpoint_id: str, *, permitted: bool = False) -> bool:
        """Whether an attempt to the endpoint would have to wait for a slot now (``permitted``:
        under a lane's permit)."""
        gate = self._gates.get(endpoint_id)
        return gate is not None and (bool(gate.waiting) or gate.in_flight >= self._limit(permitted))

    @asynccontextmanager
    async def slot(self, endpoint_id: str, *, permitted: bool = False) -> AsyncIterator[None]:
        """Hold one of the endpoint's slots for the ``async with`` block (waiting for one)."""
        gate = self._gates.setdefault(endpoint_id, _Gate())
        if gate.waiting or gate.in_flight >= self._limit(permitted):
            turn = asyncio.get_running_loop().create_future()
            entry = (permitted, turn)
            gate.waiting.append(entry)
            try:
                await turn  # _wake counts it in flight before it resolves the future
            except BaseException:
                if turn.done() and not turn.cancelled():
                    self._release(endpoint_id, gate)  # it had its slot: give it back
                else:
                    if entry in gate.waiting:  # (_wake drops a cancelled one it meets)
                        gate.waiting.remove(entry)
                    self._wake(gate)  # the next one may go now (a permit's larger limit)
                    self._forget_if_unused(endpoint_id, gate)
                raise
        else:
            gate.in_flight += 1
        try:
            yield
        finally:
            self._release(endpoint_id, gate)

    def _limit(self, permitted: bool) -> int:
        return self._per_endpoint if permitted else self.share

    def _release(self, endpoint_id: str, gate: _Gate) -> None:
        gate.in_flight -= 1
        self._wake(gate)
        self._forget_if_unused(endpoint_id, gate)

    def _wake(self, gate: _Gate) -> None:
        """Let the first waiting attempts go while their limits have room (in order: a later
        one under a larger limit does not pass an earlier one; the two kinds meet only while
        an endpoint moves to its lane)."""
        while gate.waiting and gate.in_flight < self._limit(gate.waiting[0][0]):
            _, turn = gate.waiting.popleft()
            if not turn.done():
                gate.in_flight += 1
                turn.set_result(None)

    def _forget_if_unused(self, endpoint_id: str, gate: _Gate) -> None:
        if gate.in_flight == 0 and not gate.waiting and self._gates.get(endpoint_id) is gate:
            del self._gates[endpoint_id]

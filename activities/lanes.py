"""A lane's steps with side effects: a delivery asking its endpoint's lane for a permit (a
workflow cannot start another workflow with a signal), a lane looking at whether its silent
queue heads' deliveries still run, and a recovered lane clearing its endpoint's tripped
breaker in the registry."""

from __future__ import annotations

import asyncio
import time
import zlib
from datetime import datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from hookline.activities.endpoint_cache import EndpointCache
from hookline.config.settings import Settings
from hookline.contracts.lane_permits import Seen
from hookline.contracts.lanes import LaneAsk, LaneBreakerReset, LaneInput
from hookline.contracts.names import LANE_ASK_SIGNAL
from hookline.contracts.search_attributes import STATUS
from hookline.delivery.lanes import lane_settings, signal_lane, winding_down_settings
from hookline.storage.registry import Registry


class LaneRequest(BaseModel):
    """A delivery's ask for a permit of its endpoint's lane."""

    app_id: str
    endpoint_id: str
    delivery: str
    """The delivery's workflow id."""
    key: str = ""
    timeout_s: float
    """The delivery's attempt timeout (a permit's lease outlives it)."""
    ask: int = 0
    """The delivery's count of its asks, which the grant echoes."""
    accepted_at: datetime | None = None
    lead_s: float = 0.0
    """Plan the permit's start at least this long after its grant (the last one expired)."""


class HeadsToCheck(BaseModel):
    """Silent queue heads of a ``fifo`` lane: their deliveries' workflow ids."""

    deliveries: list[str]


class HeadsSeen(BaseModel):
    """What each silent queue head's workflow was found to be."""

    seen: dict[str, Seen]


ENDED_STATUSES = ("succeeded", "failed")
"""A running delivery reading one of these has left its lane (a failed one is held open for a
manual retry, which would queue it again)."""
LOOKS_AT_ONCE = 20
"""Describe calls in flight at once for one lane."""
ASKS_TOGETHER_EVERY_S = 1.0
"""Asks to the lane of an endpoint whose breaker is tripped go out together, once a second
of the worker's clock, at the endpoint's own point in the second (``asks_phase_s``): such a
delivery waits for a probe anyway, and asks that reach a lane at once take one of its
workflow tasks, not one each."""


class LaneActivities:
    """Lane activities, sharing the worker's Temporal client and settings."""

    def __init__(
        self, client: Client, settings: Settings, registry: Registry, endpoints: EndpointCache
    ) -> None:
        self._client = client
        self._settings = settings
        self._registry = registry
        self._endpoints = endpoints

    @activity.defn(name="ask_lane")
    async def ask_lane(self, request: LaneRequest) -> None:
        """Signal the ask to the endpoint's lane, starting it, with the endpoint's settings as
        they are now, if it is not running (a running lane has them: the API tells it of every
        change). To an endpoint whose breaker is tripped, at the endpoint's next point in the
        second (``asks_phase_s``)."""
        endpoint = await self._endpoints.get(request.app_id, request.endpoint_id)
        if endpoint is None:  # deleted: let the attempt go, and meet the deletion
            lane = winding_down_settings(request.timeout_s)
        else:
            lane = lane_settings(endpoint, self._settings, request.timeout_s)
            if endpoint.breaker_tripped_at is not None:
                await asyncio.sleep(until_asks_go_together(request.endpoint_id, time.time()))
        ask = LaneAsk(
            delivery=request.delivery,
            key=request.key,
            accepted_at=request.accepted_at,
            ask=request.ask,
            lead_s=request.lead_s,
        )
        await signal_lane(
            self._client,
            self._settings.task_queue,
            LaneInput(app_id=request.app_id, endpoint_id=request.endpoint_id, settings=lane),
            LANE_ASK_SIGNAL,
            ask,
        )

    @activity.defn(name="look_at_queue_heads")
    async def look_at_queue_heads(self, heads: HeadsToCheck) -> HeadsSeen:
        """Whether each silent queue head's delivery still runs (a failed one held open for a
        manual retry does not count), has ended, or never started."""
        semaphore = asyncio.Semaphore(LOOKS_AT_ONCE)

        async def look(delivery: str) -> Seen:
            async with semaphore:
                try:
                    described = await self._client.get_workflow_handle(delivery).describe()
                except RPCError as err:
                    if err.status == RPCStatusCode.NOT_FOUND:
                        return "not_found"
                    raise
            if described.status != WorkflowExecutionStatus.RUNNING:
                return "ended"
            status = described.typed_search_attributes.get(STATUS)
            return "ended" if status in ENDED_STATUSES else "running"

        seen = await asyncio.gather(*(look(delivery) for delivery in heads.deliveries))
        return HeadsSeen(seen=dict(zip(heads.deliveries, seen, strict=True)))

    @activity.defn(name="reset_endpoint_breaker")
    async def reset_endpoint_breaker(self, endpoint: LaneBreakerReset) -> None:
        """A tripped endpoint's lane saw it recover: its deliveries take the usual path again
        (in this worker at once, in the others within the endpoint cache's TTL)."""
        await self._registry.endpoints.reset_breaker(endpoint.endpoint_id)
        self._endpoints.forget(endpoint.app_id, endpoint.endpoint_id)


def asks_phase_s(endpoint_id: str) -> float:
    """Where in each ``ASKS_TOGETHER_EVERY_S`` the asks to the endpoint's lane go out, the
    same in every worker process (a hash of the endpoint id, not Python's, which differs
    from process to process): the asks of several tripped endpoints, and the workflow tasks
    they hold, are spread over the second instead of all landing on the whole second."""
    return zlib.crc32(endpoint_id.encode()) / 2**32 * ASKS_TOGETHER_EVERY_S


def until_asks_go_together(endpoint_id: str, now: float) -> float:
    """Seconds from ``now`` (the wall clock, which the workers share: clocks in sync) until
    the endpoint's next point in the second; in ``(0, ASKS_TOGETHER_EVERY_S]``."""
    return ASKS_TOGETHER_EVERY_S - (now - asks_phase_s(endpoint_id)) % ASKS_TOGETHER_EVERY_S

"""The circuit breaker of endpoints without a lane, in one worker: count each endpoint's
failed attempts in a row, and trip its breaker (in the registry, and in its lane) after
``endpoint_breaker_failures`` of them or a ``Retry-After`` on a 429 or 503. From then on the
endpoint's deliveries take permits from its lane, whose breaker probes and drains the
backlog with a slow start, and which clears the trip once the endpoint recovered."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client

from hookline.activities.endpoint_cache import EndpointCache
from hookline.config.settings import Settings
from hookline.delivery.lanes import lane_settings, trip_lane
from hookline.storage.registry import Registry

log = logging.getLogger(__name__)


class EndpointBreaker:
    """Failed attempts in a row per endpoint in this worker, and the trip."""

    def __init__(
        self, client: Client, settings: Settings, registry: Registry, endpoints: EndpointCache
    ) -> None:
        self._client = client
        self._settings = settings
        self._registry = registry
        self._endpoints = endpoints
        self._failures: dict[str, int] = {}
        """Failed attempts in a row, by endpoint id (only endpoints failing now)."""

    def succeeded(self, endpoint_id: str) -> None:
        """An attempt to the endpoint was answered 2xx."""
        self._failures.pop(endpoint_id, None)

    async def failed(
        self, app_id: str, endpoint_id: str, timeout_s: float, retry_after: timedelta | None
    ) -> None:
        """An attempt to the endpoint failed for want of the receiver (no answer, a timeout,
        a 5xx or a 429; ``retry_after`` if a 429 or 503 named one): trip the breaker when
        that makes too many in a row, or at once for a ``Retry-After``. A trip that cannot
        be made now (the registry or Temporal is down) is left to the next failure."""
        threshold = self._settings.endpoint_breaker_failures
        if not threshold:
            return  # off, and with it the endpoint-wide Retry-After
        count = self._failures.get(endpoint_id, 0) + 1
        self._failures[endpoint_id] = count
        if retry_after is None and count < threshold:
            return
        hold_until = datetime.now(UTC) + retry_after if retry_after is not None else None
        try:
            await self._trip(app_id, endpoint_id, timeout_s, hold_until)
        except Exception:  # the attempt's own failure stands whatever happens here
            log.warning("could not trip the breaker of endpoint %s", endpoint_id, exc_info=True)
            return
        self._failures.pop(endpoint_id, None)

    async def _trip(
        self, app_id: str, endpoint_id: str, timeout_s: float, hold_until: datetime | None
    ) -> None:
        if not await self._registry.endpoints.trip_breaker(endpoint_id) and hold_until is None:
            return  # another worker tripped it: its lane knows
        self._endpoints.forget(app_id, endpoint_id)  # this worker's next attempts see it
        endpoint = await self._endpoints.get(app_id, endpoint_id)
        if endpoint is None:
            return
        lane = lane_settings(endpoint, self._settings, timeout_s)
        await trip_lane(self._client, self._settings.task_queue, endpoint, lane, hold_until)
        activity.metric_meter().create_counter(
            "hookline_endpoint_breaker_trips",
            "Endpoints a worker moved into their lane: failed attempts in a row, or Retry-After",
        ).add(1, {"cause": "retry_after" if hold_until else "failures"})
        log.info(
            "endpoint %s: breaker tripped (%s)",
            endpoint_id,
            "Retry-After" if hold_until else "failed attempts in a row",
        )

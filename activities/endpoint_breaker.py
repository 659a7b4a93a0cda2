"""The circuit breaker of endpoints without a lane, in one worker: count each endpoint's
failed attempts in a row, and trip its breaker (in the registry, and in its lane) after
``endpoint_breaker_failures`` of them or a ``Retry-After`` on a 429 or 503. From then on the
endpoint's deliveries take permits from its lane, whose breaker probes and drains the
backlog with a slow start, and which clears the trip once the endpoint recovered."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client

from hookline.activities.endpoint_cache import EndpointCache
from hookline.config.settings import Settings
from hookline.delivery.lanes import lane_settings, trip_lane
from hookline.storage.registry import Registry

log = logging.getLogger(__name__)


MAX_COUNTED = 10_000
"""Endpoints whose failures one worker counts at once (bounded memory)."""
TRIP_TIMEOUT_S = 5.0
"""How long a failing attempt waits for its trip (the registry and Temporal) before going on
without it."""
HOLD_AGAIN_AFTER = timedelta(seconds=1)
"""A worker tells a lane of a ``Retry-After`` again only when it holds this much longer than
the last it told: a receiver answering every attempt with 429 must not flood the lane."""


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
        self._held_until: dict[str, datetime] = {}
        """The last ``Retry-After`` hold this worker told each endpoint's lane (until then)."""

    @property
    def on(self) -> bool:
        """Whether failures are counted and trip breakers (``endpoint_breaker_failures``)."""
        return bool(self._settings.endpoint_breaker_failures)

    def succeeded(self, endpoint_id: str) -> None:
        """An attempt to the endpoint was answered 2xx."""
        self._failures.pop(endpoint_id, None)

    async def failed(
        self, app_id: str, endpoint_id: str, timeout_s: float, retry_after_s: float | None
    ) -> None:
        """An attempt to the endpoint failed for want of the receiver (no answer, a timeout,
        a 5xx or a 429; ``retry_after_s`` if a 429 or 503 named a ``Retry-After``): trip the
        breaker when that makes too many in a row, or at once for a ``Retry-After`` (held at
        least 1 s, at most the endpoint's ``max_interval_s``). A trip that cannot be made
        within ``TRIP_TIMEOUT_S`` (the registry or Temporal is down) is left to a later
        failure: the attempt's own failure stands whatever happens here."""
        threshold = self._settings.endpoint_breaker_failures
        if not threshold:
            return  # off, and with it the endpoint-wide Retry-After
        count = self._failures.get(endpoint_id, 0) + 1
        if len(self._failures) >= MAX_COUNTED and endpoint_id not in self._failures:
            self._failures.clear()  # endpoints that failed and went quiet: start afresh
        self._failures[endpoint_id] = count
        hold_until = None
        if retry_after_s is not None:
            held = min(max(retry_after_s, 1.0), await self._max_interval_s(app_id, endpoint_id))
            hold_until = datetime.now(UTC) + timedelta(seconds=held)
            told = self._held_until.get(endpoint_id)
            if told is not None and hold_until < told + HOLD_AGAIN_AFTER:
                hold_until = None  # its lane holds already
        if hold_until is None and count < threshold:
            return
        self._failures.pop(endpoint_id, None)
        try:
            await asyncio.wait_for(
                self._trip(app_id, endpoint_id, timeout_s, hold_until), TRIP_TIMEOUT_S
            )
        except Exception as err:
            log.warning("could not trip the breaker of endpoint %s: %r", endpoint_id, err)
            return
        if hold_until is not None:
            self._held_until[endpoint_id] = hold_until
            now = datetime.now(UTC)
            self._held_until = {e: t for e, t in self._held_until.items() if t > now}

    async def _max_interval_s(self, app_id: str, endpoint_id: str) -> float:
        """The longest wait between attempts of the endpoint's deliveries (its own retry
        settings' or the default)."""
        endpoint = await self._endpoints.get(app_id, endpoint_id)  # the attempt's copy
        retry = self._settings.retry
        if endpoint is not None and endpoint.retry:
            try:
                retry = retry.merged(endpoint.retry)
            except ValueError:  # saved by an older release: the default holds
                pass
        return retry.max_interval_s

    async def _trip(
        self, app_id: str, endpoint_id: str, timeout_s: float, hold_until: datetime | None
    ) -> None:
        first = await self._registry.endpoints.trip_breaker(endpoint_id)
        self._endpoints.forget(app_id, endpoint_id)  # this worker's next attempts see it
        if not first and hold_until is None:
            return  # another worker tripped it: its lane knows
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

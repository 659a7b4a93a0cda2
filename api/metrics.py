"""The API's Prometheus metrics: requests by route and status, events and deliveries accepted,
and the deliveries waiting for their next attempt (counted in Temporal, at most once per
``metrics_count_cache_s``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from temporalio.service import RPCError

from hookline.api.keys import SETTINGS, TEMPORAL
from hookline.contracts.statuses import PAUSED
from hookline.delivery.queries import backing_off_query

COUNT_TIMEOUT_S = 5.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Request methods with a label of their own; any other (clients may send any token) is
``other``, so a client cannot grow the label set."""
log = logging.getLogger(__name__)


class ApiMetrics:
    """One registry per application (tests build many), exposed at ``/metrics``.

    Args:
        count_cache_s: How long a count of deliveries backing off serves scrapes.
    """

    def __init__(self, count_cache_s: float) -> None:
        self._count_cache_s = count_cache_s
        self._counted_at: float | None = None
        self._counting: asyncio.Task[None] | None = None
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "hookline_api_request_duration_seconds",
            "API requests by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.events = Counter(
            "hookline_events_accepted",
            "Events accepted, by whether the event id had been seen before",
            ["duplicate"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "hookline_deliveries_started",
            "Deliveries started by accepted events",
            registry=self.registry,
        )
        self.backing_off = Gauge(
            "hookline_deliveries_backing_off",
            "Deliveries of this task queue that failed an attempt and go on (HooklineStatus "
            "retrying): waiting for their next attempt, or making it",
            registry=self.registry,
        )
        self.paused = Gauge(
            "hookline_deliveries_paused",
            "Deliveries of this task queue waiting in a paused endpoint's lane (HooklineStatus "
            "paused)",
            registry=self.registry,
        )

    def exposition(self) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"content-type": CONTENT_TYPE_LATEST}
        )

    async def refresh_backing_off(self, count: Callable[[], Awaitable[tuple[int, int]]]) -> None:
        """Set ``backing_off`` and ``paused`` from ``count()``, unless a count ended less than
        ``count_cache_s`` ago; callers arriving while a count is under way wait for that one.

        A count that fails or takes over ``COUNT_TIMEOUT_S`` leaves the gauge as it was (and
        is logged); it still waits ``count_cache_s`` before the next, sparing a Temporal that
        is struggling already.
        """
        if self._counting is None:
            if self._counted_recently():
                return
            self._counting = asyncio.ensure_future(self._count(count))
        # Shielded: a scrape that goes away does not cancel the count the others wait for.
        await asyncio.shield(self._counting)

    def _counted_recently(self) -> bool:
        if self._counted_at is None:
            return False
        return time.monotonic() - self._counted_at < self._count_cache_s

    async def _count(self, count: Callable[[], Awaitable[tuple[int, int]]]) -> None:
        try:
            backing_off, paused = await asyncio.wait_for(count(), COUNT_TIMEOUT_S)
            self.backing_off.set(backing_off)
            self.paused.set(paused)
        except (RPCError, TimeoutError) as err:  # the other metrics are still worth serving
            log.warning("could not count deliveries backing off: %s", type(err).__name__)
        finally:
            self._counted_at = time.monotonic()
            self._counting = None


METRICS = web.AppKey("metrics", ApiMetrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request under its method (``other`` past ``METHODS``), route template (ids
    stay out of the labels; ``unmatched`` for no route) and status."""
    started = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    method = request.method if request.method in METHODS else "other"
    request.app[METRICS].requests.labels(method, route, str(response.status)).observe(
        time.perf_counter() - started
    )
    return response


async def serve_metrics(request: web.Request) -> web.Response:
    """``GET /metrics`` in Prometheus' text format."""
    metrics = request.app[METRICS]
    task_queue = request.app[SETTINGS].task_queue
    temporal = request.app[TEMPORAL]

    async def count() -> tuple[int, int]:
        backing_off, paused = await asyncio.gather(
            temporal.count_workflows(backing_off_query(task_queue)),
            temporal.count_workflows(backing_off_query(task_queue, PAUSED)),
        )
        return backing_off.count, paused.count

    await metrics.refresh_backing_off(count)
    return metrics.exposition()

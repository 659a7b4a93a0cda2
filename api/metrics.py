"""The API's Prometheus metrics: requests by route and status, events and deliveries accepted,
and the deliveries waiting for their next attempt (counted in Temporal at each scrape)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from temporalio.service import RPCError

from api.keys import SETTINGS, TEMPORAL
from workflows import search_attributes as sa


class ApiMetrics:
    """One registry per application (tests build many), exposed at ``/metrics``."""

    def __init__(self) -> None:
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

    def exposition(self) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"content-type": CONTENT_TYPE_LATEST}
        )


METRICS = web.AppKey("metrics", ApiMetrics)
COUNT_TIMEOUT_S = 5.0
log = logging.getLogger(__name__)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request under its route template (ids stay out of the labels)."""
    started = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].requests.labels(request.method, route, str(response.status)).observe(
        time.perf_counter() - started
    )
    return response


async def serve_metrics(request: web.Request) -> web.Response:
    """``GET /metrics`` in Prometheus' text format."""
    metrics = request.app[METRICS]
    query = (
        f'{sa.STATUS.name} = "retrying" AND ExecutionStatus = "Running" '
        f'AND TaskQueue = "{request.app[SETTINGS].task_queue}"'
    )
    try:
        counted = await asyncio.wait_for(
            request.app[TEMPORAL].count_workflows(query), COUNT_TIMEOUT_S
        )
        metrics.backing_off.set(counted.count)
    except (RPCError, TimeoutError) as err:  # the other metrics are still worth serving
        log.warning("could not count deliveries backing off: %s", type(err).__name__)
    return metrics.exposition()

"""The API's Prometheus metrics: requests by route and status, events and deliveries accepted."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest


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

    def exposition(self) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"content-type": CONTENT_TYPE_LATEST}
        )


METRICS = web.AppKey("metrics", ApiMetrics)


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
    return request.app[METRICS].exposition()

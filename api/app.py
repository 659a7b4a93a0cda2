"""The API application factory: routes, middlewares, and the resources handlers share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta

from aiohttp import web
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from hookline.api import (
    routes_apps,
    routes_codec,
    routes_deliveries,
    routes_endpoints,
    routes_events,
    routes_openapi,
    routes_recoveries,
)
from hookline.api.auth import auth_middleware
from hookline.api.errors import error_middleware
from hookline.api.keys import DESTINATIONS, ENDPOINT_LISTS, REGISTRY, SETTINGS, TEMPORAL
from hookline.api.metrics import METRICS, ApiMetrics, metrics_middleware, serve_metrics
from hookline.api.rate_limits import (
    AUTH_FAILURES,
    RATE_LIMITER,
    KeyRateLimiter,
    rate_limit_middleware,
)
from hookline.api.requests import nul_free_paths
from hookline.config.settings import Settings
from hookline.contracts.destination_policy import DestinationPolicy
from hookline.delivery.endpoint_lists import EndpointLists
from hookline.storage.registry import opened_registry
from hookline.temporal.client import connect_temporal

READY_TIMEOUT_S = 5.0
"""How long /readyz waits for each dependency to answer."""


def create_app(settings: Settings, temporal: Client | None = None) -> web.Application:
    """Build the Hookline API.

    Args:
        settings: Hookline's settings.
        temporal: A connected client to use; by default one is connected at startup.
    """
    app = web.Application(
        # Metrics outermost: errors are timed too, as the status the client saw.
        middlewares=[
            metrics_middleware,
            error_middleware,
            nul_free_paths,
            auth_middleware,
            rate_limit_middleware,
        ],
        # A request must be able to carry a payload at the configured limit, plus its envelope.
        client_max_size=max(settings.max_request_bytes, settings.max_payload_bytes + 64 * 1024),
    )
    app[SETTINGS] = settings
    app[RATE_LIMITER] = KeyRateLimiter(
        settings.api_rate_limit_per_s or 1.0, settings.api_rate_limit_burst
    )
    app[AUTH_FAILURES] = KeyRateLimiter(
        settings.api_auth_failures_per_s, settings.api_auth_failure_burst
    )
    app[DESTINATIONS] = DestinationPolicy(settings.mode, settings.allowed_networks)
    app.cleanup_ctx.append(_registry_ctx)
    if temporal is not None:
        app[TEMPORAL] = temporal
    else:
        app.cleanup_ctx.append(_temporal_ctx)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app[METRICS] = ApiMetrics(settings.metrics_count_cache_s)
    app.router.add_get("/metrics", serve_metrics)
    for module in (
        routes_apps,
        routes_codec,
        routes_endpoints,
        routes_events,
        routes_deliveries,
        routes_recoveries,
        routes_openapi,
    ):
        app.add_routes(module.routes)
    return app


async def _registry_ctx(app: web.Application) -> AsyncIterator[None]:
    async with opened_registry(app[SETTINGS]) as registry:
        app[REGISTRY] = registry
        app[ENDPOINT_LISTS] = EndpointLists(registry, app[SETTINGS].endpoint_cache_ttl_s)
        yield


async def _temporal_ctx(app: web.Application) -> AsyncIterator[None]:
    app[TEMPORAL] = await connect_temporal(app[SETTINGS])
    yield


async def _healthz(_request: web.Request) -> web.Response:
    """The process is up."""
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """Temporal and the database both answer (each within READY_TIMEOUT_S); 503 otherwise."""
    checks = {
        "database": _answers(request.app[REGISTRY].ping()),
        "temporal": _answers(
            request.app[TEMPORAL].workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=READY_TIMEOUT_S)
            )
        ),
    }
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    ready = all(results.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {name: "ok" if ok else "unreachable" for name, ok in results.items()},
    }
    return web.json_response(body, status=200 if ready else 503)


async def _answers(check: Awaitable[object]) -> bool:
    try:
        await asyncio.wait_for(check, READY_TIMEOUT_S)
    except Exception:  # any failure to answer means not ready; the reason is not the caller's
        return False
    return True

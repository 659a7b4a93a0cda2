"""The API application factory: routes, middlewares, and the resources handlers share."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from temporalio.client import Client

from hookline.api import (
    routes_apps,
    routes_codec,
    routes_deliveries,
    routes_endpoints,
    routes_events,
    routes_operations,
    routes_recoveries,
)
from hookline.api.auth import auth_middleware
from hookline.api.errors import error_middleware
from hookline.api.keys import (
    DESTINATIONS,
    ENDPOINT_LISTS,
    REGISTRY,
    ROUTE_TABLES,
    SETTINGS,
    TEMPORAL,
)
from hookline.api.metrics import METRICS, ApiMetrics, metrics_middleware
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

API_ROUTES = (
    routes_operations.routes,
    routes_codec.routes,
    routes_apps.routes,
    routes_endpoints.routes,
    routes_events.routes,
    routes_deliveries.routes,
    routes_recoveries.routes,
)
"""Every route of the API, in the order its OpenAPI document lists them."""


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
    app[METRICS] = ApiMetrics(settings.metrics_count_cache_s)
    app[ROUTE_TABLES] = API_ROUTES
    for table in API_ROUTES:
        app.add_routes(table.routes)
    return app


async def _registry_ctx(app: web.Application) -> AsyncIterator[None]:
    async with opened_registry(app[SETTINGS]) as registry:
        app[REGISTRY] = registry
        app[ENDPOINT_LISTS] = EndpointLists(registry, app[SETTINGS].endpoint_cache_ttl_s)
        yield


async def _temporal_ctx(app: web.Application) -> AsyncIterator[None]:
    app[TEMPORAL] = await connect_temporal(app[SETTINGS])
    yield

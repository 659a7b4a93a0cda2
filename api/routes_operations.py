"""The routes about the process itself: liveness, readiness, metrics, and the OpenAPI
document of every route."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable
from datetime import timedelta

from aiohttp import web
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from hookline.api import response_models as out
from hookline.api.keys import REGISTRY, ROUTE_TABLES, TEMPORAL
from hookline.api.metrics import serve_metrics
from hookline.api.openapi import openapi_document
from hookline.api.route_table import RouteTable, respond

routes = RouteTable("operations")

READY_TIMEOUT_S = 5.0
"""How long /readyz waits for each dependency to answer."""


@routes.route("GET", "/healthz", "The process is up", access="public")
async def healthz(_request: web.Request) -> out.Health:
    return out.Health(status="ok")


@routes.route(
    "GET",
    "/readyz",
    "Temporal and the database both answer",
    access="public",
    answer=out.Readiness,
)
async def readyz(request: web.Request) -> web.Response:
    """Temporal and the database both answer (each within READY_TIMEOUT_S); 503 otherwise."""
    database, temporal = await asyncio.gather(
        _answers(request.app[REGISTRY].ping()),
        _answers(
            request.app[TEMPORAL].workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=READY_TIMEOUT_S)
            )
        ),
    )
    readiness = out.Readiness(
        status="ready" if database and temporal else "unavailable",
        checks=out.ReadinessChecks(
            database="ok" if database else "unreachable",
            temporal="ok" if temporal else "unreachable",
        ),
    )
    return respond(readiness, 200 if database and temporal else 503)


async def _answers(check: Awaitable[object]) -> bool:
    try:
        await asyncio.wait_for(check, READY_TIMEOUT_S)
    except Exception:  # any failure to answer means not ready; the reason is not the caller's
        return False
    return True


routes.route(
    "GET", "/metrics", "Prometheus metrics of the API", access="public", operation_id="metrics"
)(serve_metrics)


@routes.route("GET", "/v1/openapi.json", "This document", access="public", operation_id="openapi")
async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(
        body=_document_json(request.app[ROUTE_TABLES]), content_type="application/json"
    )


@functools.cache
def _document_json(tables: tuple[RouteTable, ...]) -> bytes:
    # The document depends on no setting: built on first use, once per process.
    return json.dumps(openapi_document(tables), separators=(",", ":")).encode()

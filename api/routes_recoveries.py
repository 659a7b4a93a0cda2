"""Bulk recovery: retry an endpoint's failed deliveries from a window, watch it, cancel it."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from hookline.api import response_models as out
from hookline.api.errors import ApiError, not_found
from hookline.api.keys import REGISTRY, SETTINGS, TEMPORAL
from hookline.api.requests import parse_body, path_app
from hookline.api.route_table import RouteTable
from hookline.api.schemas import UtcDatetime
from hookline.contracts.ids import id_pattern
from hookline.contracts.recovery import recovery_workflow_id
from hookline.delivery import recoveries
from hookline.delivery.recoveries import recovery_state, start_recovery

routes = RouteTable("recoveries")

RECOVERY_ID = id_pattern("rcv")
_RECOVERY = "/v1/apps/{app_id}/recoveries/{recovery_id}"


class RecoveryCreate(BaseModel):
    """``POST .../recover``: the window of creation times whose failed deliveries to retry."""

    model_config = ConfigDict(extra="forbid")

    since: UtcDatetime
    until: UtcDatetime | None = None
    """Default: now."""


@routes.route(
    "POST",
    "/v1/apps/{app_id}/endpoints/{endpoint_id}/recover",
    "Retry the endpoint's failed deliveries created in [since, until)",
    status=202,
    body=RecoveryCreate,
    errors=(409,),
)
async def recover(request: web.Request) -> out.Recovery:
    """Start retrying the endpoint's failed deliveries created in ``[since, until)``."""
    app = await path_app(request)
    endpoint = await request.app[REGISTRY].endpoints.get(request.match_info["endpoint_id"], app.id)
    if endpoint is None:
        raise not_found("endpoint")
    if endpoint.disabled:
        # Retrying into an endpoint that gets no new deliveries would defeat disabling it.
        raise ApiError(409, "endpoint_disabled", "enable the endpoint before recovering")
    body = await parse_body(request, RecoveryCreate)
    now = datetime.now(UTC)
    since, until = body.since.astimezone(UTC), (body.until or now).astimezone(UTC)
    if until <= since:
        raise ApiError(422, "validation_error", "until must be after since")
    state = await start_recovery(
        request.app[TEMPORAL], request.app[SETTINGS], app.id, endpoint.id, since, until, now
    )
    return out.Recovery.of(state)


@routes.route("GET", _RECOVERY, "A bulk recovery's status and counters")
async def get_recovery(request: web.Request) -> out.Recovery:
    """A recovery's status and counters."""
    recovery_id, description = await _described(request)
    return out.Recovery.of(await recovery_state(recovery_id, description))


@routes.route(
    "POST",
    f"{_RECOVERY}/cancel",
    "Stop a bulk recovery after the batch in flight",
    status=202,
    errors=(409,),
)
async def cancel_recovery(request: web.Request) -> out.Recovery:
    """Ask a running recovery to stop after the batch in flight."""
    recovery_id, description = await _described(request)
    return out.Recovery.of(
        await recoveries.cancel_recovery(request.app[TEMPORAL], recovery_id, description)
    )


async def _described(request: web.Request) -> tuple[str, WorkflowExecutionDescription]:
    """The recovery the path names and its latest run's description.

    Raises:
        ApiError: 404 if the app or the recovery does not exist.
    """
    app = await path_app(request)
    recovery_id = request.match_info["recovery_id"]
    if not RECOVERY_ID.fullmatch(recovery_id):
        raise not_found("recovery")
    client: Client = request.app[TEMPORAL]
    try:
        description = await client.get_workflow_handle(
            recovery_workflow_id(app.id, recovery_id)
        ).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise not_found("recovery") from None
        raise
    return recovery_id, description

"""Bulk recovery: retry an endpoint's failed deliveries from a window, watch it, cancel it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from hookline.api.errors import ApiError, not_found
from hookline.api.keys import REGISTRY, SETTINGS, TEMPORAL
from hookline.api.requests import parse_body, path_app
from hookline.api.schemas import UtcDatetime
from hookline.contracts import search_attributes as sa
from hookline.contracts.ids import new_id
from hookline.contracts.names import PROGRESS_MEMO, RECOVERY_WORKFLOW
from hookline.contracts.recovery import RecoveryInput, RecoveryProgress, recovery_workflow_id

routes = web.RouteTableDef()

RECOVERY_ID = re.compile(r"^rcv_[a-z2-7]{26}$")
_STATUSES = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}
"""A recovery's status from its workflow's; terminated and timed out count as failed."""


class RecoveryCreate(BaseModel):
    """``POST .../recover``: the window of creation times whose failed deliveries to retry."""

    model_config = ConfigDict(extra="forbid")

    since: UtcDatetime
    until: UtcDatetime | None = None
    """Default: now."""


@routes.post("/v1/apps/{app_id}/endpoints/{endpoint_id}/recover")
async def recover(request: web.Request) -> web.Response:
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
    settings = request.app[SETTINGS]
    recovery_id = new_id("rcv")
    progress = RecoveryProgress(endpoint_id=endpoint.id, since=since, until=until, created_at=now)
    await request.app[TEMPORAL].start_workflow(
        RECOVERY_WORKFLOW,
        RecoveryInput(
            recovery_id=recovery_id,
            app_id=app.id,
            rate_per_s=settings.recovery_rate_per_s,
            progress=progress,
        ),
        id=recovery_workflow_id(app.id, recovery_id),
        task_queue=settings.task_queue,
        # Found in the UI like the deliveries it retries (the delivery list filters on type).
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.APP_ID, app.id),
                SearchAttributePair(sa.ENDPOINT_ID, endpoint.id),
            ]
        ),
        memo={PROGRESS_MEMO: progress.model_dump(mode="json")},
        static_summary=(
            f"recover failed deliveries of {endpoint.id} "
            f"since {since.isoformat()} until {until.isoformat()}"
        ),
    )
    return web.json_response(recovery_json(recovery_id, progress, "running", None), status=202)


@routes.get("/v1/apps/{app_id}/recoveries/{recovery_id}")
async def get_recovery(request: web.Request) -> web.Response:
    """A recovery's status and counters."""
    recovery_id, description = await _described(request)
    return web.json_response(await recovery_view(recovery_id, description))


@routes.post("/v1/apps/{app_id}/recoveries/{recovery_id}/cancel")
async def cancel_recovery(request: web.Request) -> web.Response:
    """Ask a running recovery to stop after the batch in flight."""
    recovery_id, description = await _described(request)
    view = await recovery_view(recovery_id, description)
    finished = ApiError(409, "already_finished", f"this recovery has already {view['status']}")
    if view["status"] != "running":
        raise finished
    try:
        await request.app[TEMPORAL].get_workflow_handle(description.id).cancel()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise finished from None  # it finished between the describe and the cancel
        raise
    return web.json_response(view, status=202)


async def recovery_view(
    recovery_id: str, description: WorkflowExecutionDescription
) -> dict[str, Any]:
    """The API's JSON for a recovery, from its latest run's description and progress memo."""
    progress = await description.memo_value(PROGRESS_MEMO, type_hint=RecoveryProgress)
    status = _STATUSES.get(description.status, "failed") if description.status else "running"
    finished_at = description.close_time if status != "running" else None
    return recovery_json(recovery_id, progress, status, finished_at)


def recovery_json(
    recovery_id: str, progress: RecoveryProgress, status: str, finished_at: datetime | None
) -> dict[str, Any]:
    """The API's JSON for a recovery with ``progress`` and ``status``."""
    return {
        "id": recovery_id,
        "endpoint_id": progress.endpoint_id,
        "since": progress.since.isoformat(),
        "until": progress.until.isoformat(),
        "status": status,
        "found": progress.found,
        "retried": progress.retried,
        "skipped": progress.skipped,
        "errors": progress.errors,
        "created_at": progress.created_at.isoformat(),
        "finished_at": finished_at.isoformat() if finished_at else None,
    }


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

"""``/v1/apps/{app_id}/deliveries``: status, listing and manual retry of deliveries."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from hookline.api import response_models as out
from hookline.api.cursors import cursor_key, decode_cursor, encode_cursor
from hookline.api.errors import ApiError, endpoint_disabled, not_found
from hookline.api.keys import ENDPOINT_LISTS, REGISTRY, SETTINGS, TEMPORAL
from hookline.api.openapi import CURSOR, LIMIT, query_parameter
from hookline.api.requests import path_app, query_limit
from hookline.api.route_table import RouteTable
from hookline.contracts.delivery import without_query
from hookline.contracts.ids import delivery_workflow_id, fan_out_workflow_id
from hookline.contracts.statuses import STATUSES
from hookline.delivery.manual_retry import retry_delivery
from hookline.delivery.queries import deliveries_query
from hookline.delivery.runs import is_latest_run
from hookline.delivery.status import DeliveryView, delivery_view, not_started_view
from hookline.storage.entities import DeliveryRef

routes = RouteTable("deliveries")

FILTER_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,256}$")
_FILTER = {"type": "string", "pattern": FILTER_VALUE.pattern}
_DELIVERY = "/v1/apps/{app_id}/deliveries/{delivery_id}"


MAX_CONCURRENT_DESCRIBES = 16


async def _delivery(request: web.Request) -> DeliveryRef:
    app = await path_app(request)
    ref = await request.app[REGISTRY].events.delivery(app.id, request.match_info["delivery_id"])
    if ref is None:
        raise not_found("delivery")
    return ref


@routes.route("GET", _DELIVERY, "A delivery's status")
async def get_delivery(request: web.Request) -> out.Delivery:
    client = request.app[TEMPORAL]
    ref = await _delivery(request)
    workflow_id = delivery_workflow_id(ref.app_id, ref.event_id, ref.endpoint_id)
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        if await _fan_out_pending(client, err, ref):
            view = await _not_started_view(request, ref, workflow_id)
            return (await _answers(request, ref.app_id, [view]))[0]
        # The fan-out may have started it just now; else it is past retention (404), or its
        # endpoint was deleted or disabled before the fan-out reached it.
        description = await handle.describe()
    return (await _answers(request, ref.app_id, [await delivery_view(client, description)]))[0]


async def _fan_out_pending(client: Client, err: RPCError, ref: DeliveryRef) -> bool:
    """Whether a delivery Temporal does not know (``err``) is one its event's fan-out workflow
    has yet to start, rather than one past the namespace's retention."""
    if err.status != RPCStatusCode.NOT_FOUND:
        return False
    fan_out = client.get_workflow_handle(fan_out_workflow_id(ref.app_id, ref.event_id))
    try:
        return (await fan_out.describe()).status == WorkflowExecutionStatus.RUNNING
    except RPCError as fan_out_err:
        if fan_out_err.status != RPCStatusCode.NOT_FOUND:
            raise
        return False


async def _not_started_view(
    request: web.Request, ref: DeliveryRef, workflow_id: str
) -> DeliveryView:
    registry = request.app[REGISTRY]
    event = await registry.events.get(ref.app_id, ref.event_id)
    endpoint = await registry.endpoints.get(ref.endpoint_id, ref.app_id)
    return not_started_view(
        ref, event.type if event else None, endpoint.url if endpoint else None, workflow_id
    )


@routes.route("GET", f"{_DELIVERY}/attempts", "A delivery's attempt log")
async def list_attempts(request: web.Request) -> out.AttemptLog:
    ref = await _delivery(request)
    attempts = await request.app[REGISTRY].attempts.list_for(ref.app_id, ref.id)
    return out.AttemptLog(data=[out.Attempt.of(a) for a in attempts])


@routes.route(
    "POST",
    f"{_DELIVERY}/retry",
    "Retry a delivery now",
    status=202,
    errors=(409,),
    operation_id="retry_delivery",
)
async def retry(request: web.Request) -> out.Delivery:
    client = request.app[TEMPORAL]
    registry = request.app[REGISTRY]
    ref = await _delivery(request)
    endpoint = await registry.endpoints.get(ref.endpoint_id, ref.app_id)
    if endpoint is not None and endpoint.disabled:
        raise endpoint_disabled()
    logged = await registry.attempts.last_attempt_number(ref.app_id, ref.id)
    workflow_id = delivery_workflow_id(ref.app_id, ref.event_id, ref.endpoint_id)
    try:
        view = await retry_delivery(
            client, request.app[SETTINGS], workflow_id, logged_attempts=logged
        )
    except RPCError as err:
        if not await _fan_out_pending(client, err, ref):
            raise
        raise ApiError(
            409, "not_started", "this delivery has not started yet: its first attempt is due"
        ) from None
    return (await _answers(request, ref.app_id, [view]))[0]


@routes.route(
    "GET",
    "/v1/apps/{app_id}/deliveries",
    "List deliveries: running first, then the most recently finished",
    errors=(422,),
    parameters=(
        query_parameter(
            "status", {"type": "string", "enum": list(STATUSES)}, "Only deliveries in this status."
        ),
        query_parameter("endpoint_id", _FILTER, "Only deliveries to this endpoint."),
        query_parameter("event_type", _FILTER, "Only deliveries of this exact event type."),
        LIMIT,
        CURSOR,
    ),
)
async def list_deliveries(request: web.Request) -> out.DeliveryPage:
    app = await path_app(request)
    client = request.app[TEMPORAL]
    query, wanted = _visibility_query(app.id, request.query)
    settings = request.app[SETTINGS]
    limit = query_limit(request.query.get("limit"), settings.list_page_size)
    key = cursor_key(settings.api_keys, "deliveries")
    cursor = request.query.get("cursor")
    executions = client.list_workflows(
        query, page_size=limit, next_page_token=decode_cursor(cursor, key) if cursor else None
    )
    await executions.fetch_next_page()
    views = await _views(client, list(executions.current_page or []))
    token = executions.next_page_token
    return out.DeliveryPage(
        data=await _answers(
            request, app.id, [view for view in views if wanted is None or view.status in wanted]
        ),
        next_cursor=encode_cursor(token, key) if token else None,
    )


def _visibility_query(app_id: str, params: object) -> tuple[str, set[str] | None]:
    """The visibility query for a listing, and the statuses to keep after describing.

    Raises:
        ApiError: 422 for a filter value with characters no id or type has, or an unknown
            status.
    """
    filters: dict[str, str] = {}
    for param in ("endpoint_id", "event_type"):
        value = params.get(param)  # type: ignore[attr-defined]
        if value is not None:
            if not FILTER_VALUE.fullmatch(value):
                raise ApiError(422, "validation_error", f"{param} has characters it cannot have")
            filters[param] = value
    status = params.get("status")  # type: ignore[attr-defined]
    if status is not None and status not in STATUSES:
        raise ApiError(422, "validation_error", f"status must be one of {', '.join(STATUSES)}")
    query = deliveries_query(app_id, status=status, **filters)
    return query, ({status} if status is not None else None)


async def _answers(
    request: web.Request, app_id: str, views: list[DeliveryView]
) -> list[out.Delivery]:
    """The deliveries ``views`` show, each with its endpoint's URL now."""
    endpoints = await request.app[ENDPOINT_LISTS].of_app(app_id)
    urls = {endpoint.id: without_query(endpoint.url) for endpoint in endpoints}
    return [out.Delivery.of(view, urls.get(view.endpoint_id or "")) for view in views]


async def _views(client: Client, executions: list[WorkflowExecution]) -> list[DeliveryView]:
    """The views of a page of runs, without failed runs that a manual retry superseded."""
    semaphore = asyncio.Semaphore(MAX_CONCURRENT_DESCRIBES)

    async def view(execution: WorkflowExecution) -> DeliveryView | None:
        async with semaphore:
            if execution.status not in (
                WorkflowExecutionStatus.RUNNING,
                WorkflowExecutionStatus.COMPLETED,
            ) and not await is_latest_run(client, execution):
                return None
            return await delivery_view(client, execution)

    views = await asyncio.gather(*(view(execution) for execution in executions))
    return [v for v in views if v is not None]

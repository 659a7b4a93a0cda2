"""``/v1/apps/{app_id}/events``: submitting events (fanned out, or to a callback URL), test
sends to one endpoint, and reading events back."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from hookline.api import response_models as out
from hookline.api.cursors import cursor_key, decode_cursor, encode_cursor
from hookline.api.errors import ApiError, endpoint_disabled, not_found
from hookline.api.keys import DESTINATIONS, ENDPOINT_LISTS, REGISTRY, SETTINGS, TEMPORAL
from hookline.api.metrics import METRICS
from hookline.api.openapi import CURSOR, LIMIT, query_parameter
from hookline.api.requests import parse_body, path_app, query_limit
from hookline.api.route_table import RouteTable
from hookline.api.routes_endpoints import path_endpoint
from hookline.api.schemas import EVENT_TYPE_RE, EventCreate, TestSend, as_utc
from hookline.api.url_rules import checked_endpoint_url, ensure_destination_allowed
from hookline.contracts import search_attributes as sa
from hookline.contracts.delivery import Target
from hookline.contracts.ids import EVENT_ID_PATTERN, new_id
from hookline.contracts.statuses import status_of_run
from hookline.delivery.accept import AcceptedEvent, accept_event
from hookline.delivery.queries import event_deliveries_query
from hookline.delivery.starts import callback_target, endpoint_target
from hookline.storage.entities import App, EventRecord

routes = RouteTable("events")

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": EVENT_ID_PATTERN.pattern},
    "description": "The event's id, making the send idempotent; must equal the body's `id` "
    "if both are given.",
}

VISIBILITY_LAG_ALLOWANCE = timedelta(minutes=1)
TEST_EVENT_TYPE = "webhook.test"


@routes.route(
    "POST",
    "/v1/apps/{app_id}/events",
    "Send an event to every subscribed endpoint, or to its callback_url",
    status=202,
    body=EventCreate,
    parameters=(_IDEMPOTENCY_KEY,),
)
async def create_event(request: web.Request) -> out.EventAccepted:
    app = await path_app(request)
    settings = request.app[SETTINGS]
    event = await parse_body(request, EventCreate)
    event_id = _event_id(event.id, request.headers.get("idempotency-key"))
    targets = None
    if event.callback_url is not None:
        url = checked_endpoint_url(event.callback_url, settings.max_url_length)
        await ensure_destination_allowed(url, request.app[DESTINATIONS])
        targets = [callback_target(url, settings)]
    accepted = await _accept(
        request, app, event_id, event.type, event.payload, targets, event.ordering_key or ""
    )
    return await _accepted_answer(request, accepted)


@routes.route(
    "POST",
    "/v1/apps/{app_id}/endpoints/{endpoint_id}/test",
    "A signed test send to the endpoint",
    status=202,
    body=TestSend,
    body_required=False,
    errors=(409,),
    tag="endpoints",
)
async def send_test(request: web.Request) -> out.EventAccepted:
    endpoint = await path_endpoint(request)
    if endpoint.disabled:
        raise endpoint_disabled()
    app = await path_app(request)
    body = await parse_body(request, TestSend, empty_ok=True)
    payload = body.payload if body.payload is not None else {"type": TEST_EVENT_TYPE}
    target = endpoint_target(endpoint, request.app[SETTINGS])
    accepted = await _accept(request, app, new_id("evt"), TEST_EVENT_TYPE, payload, [target])
    return await _accepted_answer(request, accepted)


@routes.route(
    "GET",
    "/v1/apps/{app_id}/events/{event_id}",
    "An event, with its payload and its deliveries' statuses",
)
async def get_event(request: web.Request) -> out.Event:
    app = await path_app(request)
    record = await request.app[REGISTRY].events.get(app.id, request.match_info["event_id"])
    if record is None:
        raise not_found("event")
    payload = json.loads(record.body) if record.body is not None else None
    return out.Event.of(record, await _statuses(request, record), payload)


@routes.route(
    "GET",
    "/v1/apps/{app_id}/events",
    "List events, newest first",
    errors=(422,),
    parameters=(
        query_parameter(
            "type",
            {"type": "string", "pattern": EVENT_TYPE_RE, "maxLength": 256},
            "Only events of this exact type.",
        ),
        query_parameter(
            "since",
            {"type": "string", "format": "date-time"},
            "Only events created at or after this time (ISO 8601; UTC without an offset).",
        ),
        LIMIT,
        CURSOR,
    ),
)
async def list_events(request: web.Request) -> out.EventPage:
    app = await path_app(request)
    settings = request.app[SETTINGS]
    event_type = request.query.get("type")
    if event_type is not None and not _matches(EVENT_TYPE_RE, event_type):
        raise ApiError(422, "validation_error", "type is not a valid event type")
    since = _datetime_param(request.query.get("since"), "since")
    limit = query_limit(request.query.get("limit"), settings.list_page_size)
    key = cursor_key(settings.api_keys, "events")
    after = (
        _keyset(decode_cursor(request.query["cursor"], key)) if "cursor" in request.query else None
    )
    records = await request.app[REGISTRY].events.list(
        app.id, event_type=event_type, since=since, limit=limit + 1, after=after
    )
    page, more = records[:limit], len(records) > limit
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor(f"{last.created_at.isoformat()}|{last.id}".encode(), key)
    return out.EventPage(data=[out.EventSummary.listed(r) for r in page], next_cursor=next_cursor)


async def _accept(
    request: web.Request,
    app: App,
    event_id: str,
    event_type: str,
    payload: Any,
    targets: list[Target] | None,
    ordering_key: str = "",
) -> AcceptedEvent:
    settings = request.app[SETTINGS]
    # Serialized once, here: every attempt of every delivery sends exactly these bytes.
    try:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ApiError(422, "invalid_json", "payload has NaN or Infinity: not JSON") from None
    if len(body.encode()) > settings.max_payload_bytes:
        raise ApiError(
            413,
            "payload_too_large",
            f"payload is over the limit of {settings.max_payload_bytes} bytes",
        )
    accepted = await accept_event(
        settings=settings,
        registry=request.app[REGISTRY],
        endpoint_lists=request.app[ENDPOINT_LISTS],
        client=request.app[TEMPORAL],
        app=app,
        event_id=event_id,
        event_type=event_type,
        body=body,
        targets=targets,
        ordering_key=ordering_key,
    )
    metrics = request.app[METRICS]
    metrics.events.labels(str(accepted.duplicate).lower()).inc()
    if not accepted.duplicate:
        metrics.deliveries.inc(len(accepted.record.deliveries))
    return accepted


async def _accepted_answer(request: web.Request, accepted: AcceptedEvent) -> out.EventAccepted:
    statuses = await _statuses(request, accepted.record) if accepted.duplicate else {}
    return out.EventAccepted.of(accepted.record, statuses, duplicate=accepted.duplicate)


def _event_id(body_id: str | None, idempotency_key: str | None) -> str:
    if idempotency_key is not None and not EVENT_ID_PATTERN.fullmatch(idempotency_key):
        raise ApiError(
            422, "validation_error", "Idempotency-Key must be 1-128 of A-Z a-z 0-9 _ . : -"
        )
    if body_id and idempotency_key and body_id != idempotency_key:
        raise ApiError(422, "validation_error", "id and Idempotency-Key differ")
    return body_id or idempotency_key or new_id("evt")


async def _statuses(request: web.Request, record: EventRecord) -> dict[str, str]:
    """Statuses of an event's deliveries, from one visibility query.

    Running deliveries read as ``retrying`` once an attempt has failed, else ``pending``.
    One missing from visibility is either just started (visibility lags by moments) or past
    the namespace's retention, when its outcome is ``unknown``.
    """
    if not record.deliveries:
        return {}
    query = event_deliveries_query(record.app_id, record.id)
    found: dict[str, str] = {}
    async for execution in request.app[TEMPORAL].list_workflows(query, page_size=1000):
        attributes = execution.typed_search_attributes
        delivery = attributes.get(sa.DELIVERY_ID)
        # Runs come newest first: a failed run retried by hand is followed by its new run.
        if delivery and delivery not in found:
            found[delivery] = status_of_run(execution.status, attributes.get(sa.STATUS))
    age = datetime.now(UTC) - record.created_at
    missing = "pending" if age < VISIBILITY_LAG_ALLOWANCE else "unknown"
    return {ref.id: found.get(ref.id, missing) for ref in record.deliveries}


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None and len(value) <= 256


def _datetime_param(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
        return as_utc(value if value.tzinfo else value.replace(tzinfo=UTC))
    except ValueError as err:
        raise ApiError(422, "validation_error", f"{name}: {err}") from None


def _keyset(token: bytes) -> tuple[datetime, str]:
    try:
        created, _, event_id = token.decode().partition("|")
        return datetime.fromisoformat(created), event_id
    except ValueError:
        raise ApiError(422, "validation_error", "cursor is not valid") from None

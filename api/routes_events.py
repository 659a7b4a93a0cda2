"""``/v1/apps/{app_id}/events``: submitting an event fans it out to subscribed endpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from aiohttp import web

from api.errors import ApiError
from api.fan_out import accept_event
from api.keys import REGISTRY, SETTINGS, TEMPORAL
from api.requests import parse_body, path_app
from api.schemas import EventCreate
from hookline.ids import EVENT_ID_PATTERN, new_id
from hookline.registry import EventRecord
from workflows import search_attributes as sa

routes = web.RouteTableDef()

VISIBILITY_LAG_ALLOWANCE = timedelta(minutes=1)


@routes.post("/v1/apps/{app_id}/events")
async def create_event(request: web.Request) -> web.Response:
    app = await path_app(request)
    settings = request.app[SETTINGS]
    event = await parse_body(request, EventCreate)
    event_id = _event_id(event.id, request.headers.get("idempotency-key"))
    # Serialized once, here: every attempt of every delivery sends exactly these bytes.
    try:
        body = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ApiError(
            422, "invalid_json", "payload has NaN or Infinity, which JSON lacks"
        ) from None
    if len(body.encode()) > settings.max_payload_bytes:
        raise ApiError(
            413,
            "payload_too_large",
            f"payload is over the limit of {settings.max_payload_bytes} bytes",
        )
    accepted = await accept_event(
        settings=settings,
        registry=request.app[REGISTRY],
        client=request.app[TEMPORAL],
        app=app,
        event_id=event_id,
        event_type=event.type,
        body=body,
    )
    statuses = await _statuses(request, accepted.record) if accepted.duplicate else {}
    return web.json_response(
        {
            "id": accepted.record.id,
            "type": accepted.record.type,
            "created_at": accepted.record.created_at.isoformat(),
            "duplicate": accepted.duplicate,
            "deliveries": [
                {
                    "id": ref.id,
                    "endpoint_id": ref.endpoint_id,
                    "status": statuses.get(ref.id, "pending"),
                }
                for ref in accepted.record.deliveries
            ],
        },
        status=202,
    )


def _event_id(body_id: str | None, idempotency_key: str | None) -> str:
    if idempotency_key is not None and not EVENT_ID_PATTERN.match(idempotency_key):
        raise ApiError(
            422, "validation_error", "Idempotency-Key must be 1-128 of A-Z a-z 0-9 _ . : -"
        )
    if body_id and idempotency_key and body_id != idempotency_key:
        raise ApiError(422, "validation_error", "id and Idempotency-Key differ")
    return body_id or idempotency_key or new_id("evt")


async def _statuses(request: web.Request, record: EventRecord) -> dict[str, str]:
    """Statuses of a resubmitted event's deliveries, from one visibility query.

    Running deliveries read as ``pending`` here (telling ``retrying`` apart would take one
    describe each). One missing from visibility is either just started (visibility lags by
    moments) or past the namespace's retention, when its outcome is ``unknown``.
    """
    query = f'{sa.APP_ID.name} = "{record.app_id}" AND {sa.EVENT_ID.name} = "{record.id}"'
    found: dict[str, str] = {}
    async for execution in request.app[TEMPORAL].list_workflows(query, page_size=1000):
        attributes = execution.typed_search_attributes
        delivery = attributes.get(sa.DELIVERY_ID)
        if delivery:
            found[delivery] = attributes.get(sa.STATUS) or "pending"
    age = datetime.now(UTC) - record.created_at
    missing = "pending" if age < VISIBILITY_LAG_ALLOWANCE else "unknown"
    return {ref.id: found.get(ref.id, missing) for ref in record.deliveries}

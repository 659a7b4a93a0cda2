"""``/v1/apps/{app_id}/endpoints``: where an app's webhooks go, and which types each gets."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from activities.signing import generate_secret
from api.errors import ApiError, not_found
from api.keys import REGISTRY, SETTINGS
from api.requests import parse_body, path_app
from api.schemas import EndpointCreate, EndpointPatch
from api.url_rules import checked_endpoint_url
from hookline.registry import Endpoint
from hookline.settings import Settings

routes = web.RouteTableDef()


def endpoint_json(endpoint: Endpoint, *, with_secret: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": endpoint.id,
        "app_id": endpoint.app_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "headers": endpoint.headers,
        "retry": endpoint.retry,
        "timeout_s": endpoint.timeout_s,
        "created_at": endpoint.created_at.isoformat(),
        "updated_at": endpoint.updated_at.isoformat(),
    }
    if with_secret:
        data["secret"] = endpoint.secret
    return data


@routes.post("/v1/apps/{app_id}/endpoints")
async def create_endpoint(request: web.Request) -> web.Response:
    app = await path_app(request)
    settings = request.app[SETTINGS]
    body = await parse_body(request, EndpointCreate)
    fields = _checked_fields(settings, body, set(EndpointCreate.model_fields))
    fields.setdefault("secret", generate_secret())
    endpoint = await request.app[REGISTRY].create_endpoint(app.id, **fields)
    return web.json_response(endpoint_json(endpoint, with_secret=True), status=201)


@routes.get("/v1/apps/{app_id}/endpoints")
async def list_endpoints(request: web.Request) -> web.Response:
    app = await path_app(request)
    endpoints = await request.app[REGISTRY].list_endpoints(app.id)
    return web.json_response({"data": [endpoint_json(e, with_secret=False) for e in endpoints]})


@routes.get("/v1/apps/{app_id}/endpoints/{endpoint_id}")
async def get_endpoint(request: web.Request) -> web.Response:
    app = await path_app(request)
    endpoint = await request.app[REGISTRY].get_endpoint(request.match_info["endpoint_id"], app.id)
    if endpoint is None:
        raise not_found("endpoint")
    return web.json_response(endpoint_json(endpoint, with_secret=True))


@routes.patch("/v1/apps/{app_id}/endpoints/{endpoint_id}")
async def update_endpoint(request: web.Request) -> web.Response:
    app = await path_app(request)
    body = await parse_body(request, EndpointPatch)
    fields = _checked_fields(request.app[SETTINGS], body, body.model_fields_set)
    endpoint = await request.app[REGISTRY].update_endpoint(
        app.id, request.match_info["endpoint_id"], **fields
    )
    if endpoint is None:
        raise not_found("endpoint")
    return web.json_response(endpoint_json(endpoint, with_secret=True))


@routes.delete("/v1/apps/{app_id}/endpoints/{endpoint_id}")
async def delete_endpoint(request: web.Request) -> web.Response:
    app = await path_app(request)
    if not await request.app[REGISTRY].delete_endpoint(app.id, request.match_info["endpoint_id"]):
        raise not_found("endpoint")
    return web.Response(status=204)


def _checked_fields(
    settings: Settings, body: EndpointCreate | EndpointPatch, present: set[str]
) -> dict[str, Any]:
    """The registry columns to write, for the fields the request set, checked against limits."""
    fields: dict[str, Any] = {}
    for name in present:
        value = getattr(body, name)
        if name == "url":
            if value is None:
                raise ApiError(422, "invalid_url", "url cannot be null")
            value = checked_endpoint_url(value, settings.max_url_length)
        elif name == "event_types" and value is not None:
            if len(value) > settings.max_event_types_per_endpoint:
                raise _limit(f"at most {settings.max_event_types_per_endpoint} event_types")
            value = sorted(set(value))
        elif name == "headers":
            value = value or {}
            if len(value) > settings.max_headers_per_endpoint:
                raise _limit(f"at most {settings.max_headers_per_endpoint} headers")
        elif name == "retry" and value is not None:
            value = value.as_dict()
            try:
                settings.retry.merged(value)
            except ValueError as err:
                raise ApiError(422, "validation_error", f"retry: {err}") from None
        elif name == "description" and value is None:
            value = ""
        if name == "secret" and value is None:
            continue
        fields[name] = value
    return fields


def _limit(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)

"""``/v1/apps/{app_id}/endpoints``: where an app's webhooks go, and which types each gets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from yarl import URL

from hookline.api import response_models as out
from hookline.api.errors import ApiError, not_found
from hookline.api.keys import DESTINATIONS, REGISTRY, SETTINGS, TEMPORAL
from hookline.api.requests import parse_body, path_app
from hookline.api.response_models import HEADER_VALUE_MASK
from hookline.api.route_table import RouteTable
from hookline.api.schemas import EndpointCreate, EndpointPatch, SecretRotate, check_secret
from hookline.api.url_rules import checked_endpoint_url, ensure_destination_allowed
from hookline.config.settings import Settings
from hookline.contracts.signing import generate_secret
from hookline.delivery.lanes import configure_lane, lane_health, lane_settings, wind_down_lane
from hookline.storage.entities import Endpoint

routes = RouteTable("endpoints")

_ENDPOINT = "/v1/apps/{app_id}/endpoints/{endpoint_id}"


@routes.route(
    "POST", "/v1/apps/{app_id}/endpoints", "Add an endpoint", status=201, body=EndpointCreate
)
async def create_endpoint(request: web.Request) -> out.EndpointCreated:
    app = await path_app(request)
    settings = request.app[SETTINGS]
    body = await parse_body(request, EndpointCreate)
    fields = _checked_fields(settings, body, set(EndpointCreate.model_fields))
    await ensure_destination_allowed(fields["url"], request.app[DESTINATIONS])
    fields.setdefault("secret", generate_secret())
    endpoint = await request.app[REGISTRY].endpoints.create(app.id, **fields)
    return out.EndpointCreated.of(endpoint)


@routes.route("GET", "/v1/apps/{app_id}/endpoints", "List endpoints")
async def list_endpoints(request: web.Request) -> out.EndpointList:
    app = await path_app(request)
    endpoints = await request.app[REGISTRY].endpoints.list(app.id)
    return out.EndpointList(data=[out.Endpoint.of(e) for e in endpoints])


@routes.route("GET", _ENDPOINT, "Read an endpoint")
async def get_endpoint(request: web.Request) -> out.Endpoint:
    return out.Endpoint.of(await path_endpoint(request))


@routes.route("GET", f"{_ENDPOINT}/secret", "Reveal an endpoint's secret")
async def get_endpoint_secret(request: web.Request) -> out.Secret:
    return out.Secret.of(await path_endpoint(request), _now())


@routes.route(
    "POST",
    f"{_ENDPOINT}/secret/rotate",
    "Rotate an endpoint's secret",
    body=SecretRotate,
    body_required=False,
)
async def rotate_endpoint_secret(request: web.Request) -> out.Secret:
    endpoint = await path_endpoint(request)
    body = await parse_body(request, SecretRotate, empty_ok=True)
    new_secret = chosen_secret(body, endpoint.signature_scheme)
    rotated = await request.app[REGISTRY].endpoints.rotate_secret(
        endpoint.app_id, endpoint.id, new_secret, timedelta(seconds=body.grace_s)
    )
    if rotated is None:
        raise not_found("endpoint")
    return out.Secret.of(rotated, _now())


def chosen_secret(body: SecretRotate, scheme: str) -> str:
    """The secret a rotation asks for, or a generated one.

    Raises:
        ApiError: 422 if it does not fit the scheme (the message never repeats it).
    """
    secret = body.secret or generate_secret()
    try:
        check_secret(secret, scheme)
    except ValueError as err:
        raise ApiError(422, "validation_error", f"secret: {err}") from None
    return secret


@routes.route("PATCH", _ENDPOINT, "Change an endpoint", body=EndpointPatch)
async def update_endpoint(request: web.Request) -> out.Endpoint:
    current = await path_endpoint(request)
    body = await parse_body(request, EndpointPatch)
    fields = _checked_fields(request.app[SETTINGS], body, body.model_fields_set)
    _headers_stay_with_origin(fields, current)
    if "headers" in fields:
        fields["headers"] = _unmasked_headers(fields["headers"], current.headers)
    if "url" in fields:
        await ensure_destination_allowed(fields["url"], request.app[DESTINATIONS])
    if fields.get("signature_scheme") is None:
        fields.pop("signature_scheme", None)
    else:
        try:
            for secret in current.signing_secrets(_now()):  # the one in grace signs too
                check_secret(secret, fields["signature_scheme"])
        except ValueError:
            raise ApiError(
                422,
                "validation_error",
                "the endpoint's secret does not fit that scheme: rotate to a fitting one first",
            ) from None
    if fields.get("ordering", "") is None:
        fields.pop("ordering")
    if fields.get("disabled") is None:
        fields.pop("disabled", None)
    elif fields["disabled"] is False:
        fields.update(disabled_reason=None, failing_since=None)
    else:
        fields["disabled_reason"] = "disabled through the API"
    endpoint = await request.app[REGISTRY].endpoints.update(current.app_id, current.id, **fields)
    if endpoint is None:
        raise not_found("endpoint")
    if current.has_lane or endpoint.has_lane:
        await _configure_lane(request, endpoint)  # a disabled endpoint's lane lets all go
    return out.Endpoint.of(endpoint)


PAUSE_MARGIN_S = 0.25
"""How much longer than the workers' endpoint copies last a pause waits before it answers:
for an attempt that looked at its copy just before the pause, and is about to send."""


@routes.route(
    "POST",
    f"{_ENDPOINT}/pause",
    "Pause an endpoint: nothing is sent to it from the answer until it resumes (the answer"
    " comes after HOOKLINE_ENDPOINT_CACHE_TTL_S, 5 s by default, and 0.25 s)",
    tag="lanes",
)
async def pause_endpoint(request: web.Request) -> out.Endpoint:
    return await _paused(request, paused=True)


@routes.route(
    "POST",
    f"{_ENDPOINT}/resume",
    "Resume a paused endpoint: its deliveries go, oldest first, at its pace",
    tag="lanes",
)
async def resume_endpoint(request: web.Request) -> out.Endpoint:
    return await _paused(request, paused=False)


@routes.route(
    "GET", f"{_ENDPOINT}/health", "An endpoint's lane: state, in flight, waiting", tag="lanes"
)
async def get_endpoint_health(request: web.Request) -> out.EndpointHealth:
    endpoint = await path_endpoint(request)
    health = await lane_health(request.app[TEMPORAL], endpoint)
    default = request.app[SETTINGS].endpoint_max_concurrent_attempts
    return out.EndpointHealth.of(health, endpoint, default)


async def _paused(request: web.Request, *, paused: bool) -> out.Endpoint:
    current = await path_endpoint(request)
    endpoint = await request.app[REGISTRY].endpoints.update(
        current.app_id, current.id, paused=paused
    )
    if endpoint is None:
        raise not_found("endpoint")
    await _configure_lane(request, endpoint)
    if paused:
        # A pause holds from its answer: a worker may attempt on its copy of the endpoint
        # for HOOKLINE_ENDPOINT_CACHE_TTL_S after reading it (and reads it again before it
        # sends if it waited for a slot), so the answer waits until every copy read before
        # the pause is out of date. Every pause waits: a repeat after a lost answer too.
        # Attempts already sent (or connecting) finish.
        await asyncio.sleep(request.app[SETTINGS].endpoint_cache_ttl_s + PAUSE_MARGIN_S)
        endpoint = await request.app[REGISTRY].endpoints.get(endpoint.id, endpoint.app_id)
        if endpoint is None:
            raise not_found("endpoint")  # deleted meanwhile
    return out.Endpoint.of(endpoint)


async def _configure_lane(request: web.Request, endpoint: Endpoint) -> None:
    settings = request.app[SETTINGS]
    lane = lane_settings(endpoint, settings, _timeout_s(request, endpoint))
    await configure_lane(request.app[TEMPORAL], settings.task_queue, endpoint, lane)


def _timeout_s(request: web.Request, endpoint: Endpoint) -> float:
    return endpoint.timeout_s or request.app[SETTINGS].attempt_timeout_s


@routes.route("DELETE", _ENDPOINT, "Delete an endpoint", status=204)
async def delete_endpoint(request: web.Request) -> None:
    endpoint = await path_endpoint(request)
    if not await request.app[REGISTRY].endpoints.delete(endpoint.app_id, endpoint.id):
        raise not_found("endpoint")
    # Deliveries waiting in its lane go, and end as any delivery to a deleted endpoint does.
    if endpoint.has_lane:
        await wind_down_lane(
            request.app[TEMPORAL],
            request.app[SETTINGS].task_queue,
            endpoint,
            _timeout_s(request, endpoint),
        )


async def path_endpoint(request: web.Request) -> Endpoint:
    """The endpoint named by the path, of the app named by the path.

    Raises:
        ApiError: 404 for an unknown app or endpoint.
    """
    app = await path_app(request)
    endpoint = await request.app[REGISTRY].endpoints.get(request.match_info["endpoint_id"], app.id)
    if endpoint is None:
        raise not_found("endpoint")
    return endpoint


def _headers_stay_with_origin(fields: dict[str, Any], current: Endpoint) -> None:
    """Refuse a PATCH that would send the stored header values to another origin.

    Header values are write-only, and often the receiver's credentials: were they to follow a
    new URL, anyone allowed to edit the endpoint could read them at a host of their own. So a
    URL whose scheme, host or port differs needs the values sent again (or ``headers: {}``).

    Raises:
        ApiError: 422 ``validation_error`` for such a PATCH of an endpoint with custom headers
            that sends no ``headers``, or sends one masked.
    """
    if "url" not in fields or not current.headers:
        return
    if _origin(fields["url"]) == _origin(current.url):
        return
    sent = fields.get("headers")
    if sent is None or HEADER_VALUE_MASK in sent.values():
        raise ApiError(
            422,
            "validation_error",
            "stored header values never follow the url to another origin (scheme, host or "
            f"port): send headers again, with real values rather than {HEADER_VALUE_MASK!r} "
            "(or headers: {}), when changing the url's origin",
        )


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parsed = URL(url)
    # raw_host: the host as yarl normalised it (lowercase, IDNA-encoded), never decoded, so an
    # odd name saved before such names were refused cannot raise here.
    return parsed.scheme, parsed.raw_host, parsed.port


def _unmasked_headers(sent: dict[str, str], stored: dict[str, str]) -> dict[str, str]:
    """The headers a PATCH asks for, with each masked value replaced by the stored one.

    Raises:
        ApiError: 422 for a masked value of a header the endpoint does not have.
    """
    headers = dict(sent)
    for name, value in sent.items():
        if value == HEADER_VALUE_MASK:
            if name not in stored:
                raise ApiError(
                    422,
                    "validation_error",
                    f"headers.{name}: {HEADER_VALUE_MASK!r} keeps a stored value, and the "
                    "endpoint has no such header",
                )
            headers[name] = stored[name]
    return headers


def _now() -> datetime:
    return datetime.now(UTC)


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

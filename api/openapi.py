"""The OpenAPI 3.1 document of the whole API: request bodies from the models that validate
them, responses from ``api.response_models``, every error in the one shape of ``api.errors``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from hookline.api import response_models as out
from hookline.api.routes_deliveries import FILTER_VALUE
from hookline.api.routes_recoveries import RECOVERY_ID, RecoveryCreate
from hookline.api.schemas import (
    EVENT_TYPE_RE,
    UID_RE,
    AppCreate,
    EndpointCreate,
    EndpointPatch,
    EventCreate,
    SecretRotate,
    TestSend,
)
from hookline.contracts.ids import EVENT_ID_PATTERN
from hookline.contracts.statuses import STATUSES

JSON = "application/json"
SCHEMA_REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"

Access = Literal["key", "public", "codec"]
"""``key``: a bearer key is required; ``public``: none (nor a rate limit, but on the codec's
preflight); ``codec``: a key only in production mode."""


@dataclass(frozen=True)
class Operation:
    """One route of the API, as the document describes it."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    status: int
    """The success status."""
    answer: type[BaseModel] | None
    """The success body's model; ``None`` for no body."""
    body: type[BaseModel] | None = None
    body_required: bool = True
    """``False`` where an empty body means every default."""
    parameters: tuple[dict[str, Any], ...] = ()
    errors: tuple[int, ...] = ()
    """Error statuses beyond those every operation of its kind can answer."""
    access: Access = "key"


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_LIMIT = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": 1000},
    "Items per page (default: the `list_page_size` setting, 50).",
)
_CURSOR = _query("cursor", {"type": "string"}, "The previous page's `next_cursor`.")
_FILTER = {"type": "string", "pattern": FILTER_VALUE.pattern}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": EVENT_ID_PATTERN.pattern},
    "description": "The event's id, making the send idempotent; must equal the body's `id` "
    "if both are given.",
}

_ENDPOINT = "/v1/apps/{app_id}/endpoints/{endpoint_id}"
_DELIVERY = "/v1/apps/{app_id}/deliveries/{delivery_id}"
_RECOVERY = "/v1/apps/{app_id}/recoveries/{recovery_id}"

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/healthz", "healthz", "The process is up", "operations", 200, out.Health,
              access="public"),
    Operation("GET", "/readyz", "readyz", "Temporal and the database both answer", "operations",
              200, out.Readiness, access="public"),
    Operation("GET", "/metrics", "metrics", "Prometheus metrics of the API", "operations", 200,
              None, access="public"),
    Operation("GET", "/v1/openapi.json", "openapi", "This document", "operations", 200, None,
              access="public"),
    Operation("OPTIONS", "/codec/{action}", "codec_preflight", "CORS preflight of the codec",
              "codec", 204, None, access="public", errors=(404, 429)),
    Operation("POST", "/codec/{action}", "codec_transcode",
              "Encrypt or decrypt payloads for the Temporal UI", "codec", 200, out.CodecPayloads,
              body=out.CodecPayloads, errors=(403, 404), access="codec"),
    Operation("POST", "/v1/apps", "create_app", "Create an app", "apps", 201, out.App,
              body=AppCreate, errors=(403, 409)),
    Operation("GET", "/v1/apps/{app_id}", "get_app", "Read an app", "apps", 200, out.App),
    Operation("GET", "/v1/apps/{app_id}/secret", "get_app_secret",
              "The app's own secret, which signs callbacks", "apps", 200, out.Secret),
    Operation("POST", "/v1/apps/{app_id}/secret/rotate", "rotate_app_secret",
              "Rotate the app's secret", "apps", 200, out.Secret, body=SecretRotate,
              body_required=False),
    Operation("POST", "/v1/apps/{app_id}/endpoints", "create_endpoint", "Add an endpoint",
              "endpoints", 201, out.EndpointCreated, body=EndpointCreate),
    Operation("GET", "/v1/apps/{app_id}/endpoints", "list_endpoints", "List endpoints",
              "endpoints", 200, out.EndpointList),
    Operation("GET", _ENDPOINT, "get_endpoint", "Read an endpoint", "endpoints", 200,
              out.Endpoint),
    Operation("PATCH", _ENDPOINT, "update_endpoint", "Change an endpoint", "endpoints", 200,
              out.Endpoint, body=EndpointPatch),
    Operation("DELETE", _ENDPOINT, "delete_endpoint", "Delete an endpoint", "endpoints", 204,
              None),
    Operation("GET", f"{_ENDPOINT}/secret", "get_endpoint_secret", "Reveal an endpoint's secret",
              "endpoints", 200, out.Secret),
    Operation("POST", f"{_ENDPOINT}/secret/rotate", "rotate_endpoint_secret",
              "Rotate an endpoint's secret", "endpoints", 200, out.Secret, body=SecretRotate,
              body_required=False),
    Operation("POST", f"{_ENDPOINT}/test", "send_test", "A signed test send to the endpoint",
              "endpoints", 202, out.EventAccepted, body=TestSend, body_required=False,
              errors=(409,)),
    Operation("POST", f"{_ENDPOINT}/recover", "recover",
              "Retry the endpoint's failed deliveries created in [since, until)", "recoveries",
              202, out.Recovery, body=RecoveryCreate, errors=(409,)),
    Operation("POST", "/v1/apps/{app_id}/events", "create_event",
              "Send an event to every subscribed endpoint, or to its callback_url", "events", 202,
              out.EventAccepted, body=EventCreate, parameters=(_IDEMPOTENCY_KEY,)),
    Operation("GET", "/v1/apps/{app_id}/events", "list_events", "List events, newest first",
              "events", 200, out.EventPage, errors=(422,), parameters=(
                  _query("type", {"type": "string", "pattern": EVENT_TYPE_RE, "maxLength": 256},
                         "Only events of this exact type."),
                  _query("since", {"type": "string", "format": "date-time"},
                         "Only events created at or after this time (ISO 8601; UTC without "
                         "an offset)."),
                  _LIMIT, _CURSOR)),
    Operation("GET", "/v1/apps/{app_id}/events/{event_id}", "get_event",
              "An event, with its payload and its deliveries' statuses", "events", 200,
              out.Event),
    Operation("GET", "/v1/apps/{app_id}/deliveries", "list_deliveries",
              "List deliveries: running first, then the most recently finished", "deliveries",
              200, out.DeliveryPage, errors=(422,), parameters=(
                  _query("status", {"type": "string", "enum": list(STATUSES)},
                         "Only deliveries in this status."),
                  _query("endpoint_id", _FILTER, "Only deliveries to this endpoint."),
                  _query("event_type", _FILTER, "Only deliveries of this exact event type."),
                  _LIMIT, _CURSOR)),
    Operation("GET", _DELIVERY, "get_delivery", "A delivery's status", "deliveries", 200,
              out.Delivery),
    Operation("GET", f"{_DELIVERY}/attempts", "list_attempts", "A delivery's attempt log",
              "deliveries", 200, out.AttemptLog),
    Operation("POST", f"{_DELIVERY}/retry", "retry_delivery", "Retry a delivery now",
              "deliveries", 202, out.Delivery, errors=(409,)),
    Operation("GET", _RECOVERY, "get_recovery", "A bulk recovery's status and counters",
              "recoveries", 200, out.Recovery),
    Operation("POST", f"{_RECOVERY}/cancel", "cancel_recovery",
              "Stop a bulk recovery after the batch in flight", "recoveries", 202, out.Recovery,
              errors=(409,)),
)  # fmt: skip
"""Every route of ``api.app.create_app`` but the HEADs aiohttp adds to each GET."""

_PATH_PARAMETERS: dict[str, tuple[str, str]] = {
    "app_id": (UID_RE, "The app's id (`app_...`) or its uid."),
    "endpoint_id": (r"^ep_[a-z2-7]{26}$", "The endpoint's id."),
    "event_id": (EVENT_ID_PATTERN.pattern, "The event's id."),
    "delivery_id": (r"^dlv_[a-z2-7]{26}$", "The delivery's id."),
    "recovery_id": (RECOVERY_ID.pattern, "The bulk recovery's id."),
    "action": ("^(encode|decode)$", "What to do to the payloads."),
}
"""Path parameters: what they match (any other value is a 404), and what they are."""

_ERRORS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: ("ClientDisconnected", "The client closed the connection while sending the body "
          "(an answer nobody reads, counted in the metrics as such).", ("client_disconnected",)),
    401: ("Unauthorized", "No valid `Authorization: Bearer <key>`.", ("unauthorized",)),
    403: ("Forbidden", "The key is scoped to one app; this needs an admin key.", ("forbidden",)),
    404: ("NotFound", "No such resource (or it belongs to another app than the key's).",
          ("not_found",)),
    408: ("RequestTimeout", "The body did not arrive within `api_body_read_timeout_s`; the "
          "connection closes.", ("request_timeout",)),
    409: ("Conflict", "The resource's state does not allow it.",
          ("uid_taken", "endpoint_disabled", "already_succeeded", "not_started",
           "already_finished")),
    413: ("PayloadTooLarge", "The body (or the event's payload) is over the configured limit.",
          ("payload_too_large",)),
    422: ("ValidationFailed", "The request is not valid: see `message` (and `details`).",
          ("validation_error", "invalid_json", "invalid_url", "destination_not_allowed")),
    429: ("RateLimited", "Too many requests for this key, or too many failed authentications "
          "from this address; retry after `Retry-After` seconds.",
          ("rate_limited",)),
    503: ("Unavailable", "The database or Temporal is not reachable; retry.",
          ("database_unavailable", "temporal_unavailable")),
}  # fmt: skip
"""Error statuses: the component's name, its description, and the codes it carries."""


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation in ``OPERATIONS``."""
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(
            operation, schemas
        )
    _add_schema(out.Error, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hookline",
            "version": "1",
            "description": "Durable, signed webhook delivery on Temporal. Errors are "
            '`{"error": {"code", "message", "details"?}}`; request bodies are JSON objects '
            "and unknown fields are refused.",
        },
        "security": [{BEARER: []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": {name: _error_response(status) for status, (name, *_) in _ERRORS.items()},
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key of `HOOKLINE_API_KEYS` (admin), or one made with "
                    "`hookline keys create` (admin, or scoped to one app).",
                }
            },
        },
    }


def _operation(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
    }
    if operation.access == "public":
        spec["security"] = []
    elif operation.access == "codec":
        spec["security"] = [{BEARER: []}, {}]
        spec["description"] = "In development mode no key is needed (the local UI sends none)."
    parameters = [_path_parameter(name) for name in re.findall(r"{(\w+)}", operation.path)]
    parameters += operation.parameters
    if parameters:
        spec["parameters"] = parameters
    if operation.body is not None:
        spec["requestBody"] = {
            "required": operation.body_required,
            "content": {JSON: {"schema": _add_schema(operation.body, schemas)}},
        }
    spec["responses"] = {str(operation.status): _success(operation, schemas)}
    for status in sorted(_error_statuses(operation)):
        spec["responses"][str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    if operation.path == "/readyz":  # its 503 is a readiness report, not an error
        spec["responses"]["503"] = {
            "description": "One of them did not answer (it is `unreachable`).",
            "content": {JSON: {"schema": _add_schema(out.Readiness, schemas)}},
        }
    return spec


def _error_statuses(operation: Operation) -> set[int]:
    statuses = set(operation.errors)
    if operation.access != "public":
        # Auth may look the key up in the registry (503 if its database is down).
        statuses |= {401, 429, 503}
    if "{app_id}" in operation.path:
        statuses.add(404)
    if operation.body is not None:
        statuses |= {400, 408, 413, 422}
    return statuses


def _success(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    if operation.path == "/metrics":
        return {
            "description": "Prometheus' text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    if operation.path == "/v1/openapi.json":
        return {"description": "This document.", "content": {JSON: {"schema": {"type": "object"}}}}
    if operation.answer is None:
        return {"description": "Done; no content."}
    return {
        "description": operation.summary + ".",
        "content": {JSON: {"schema": _add_schema(operation.answer, schemas)}},
    }


def _path_parameter(name: str) -> dict[str, Any]:
    pattern, description = _PATH_PARAMETERS[name]
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
        "description": description,
    }


def _add_schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    """Put ``model``'s JSON Schema (and those it refers to) in ``schemas``; a reference to it."""
    schema = model.model_json_schema(ref_template=SCHEMA_REF)
    for name, definition in schema.pop("$defs", {}).items():
        _put(schemas, name, definition)
    _put(schemas, model.__name__, schema)
    return {"$ref": SCHEMA_REF.format(model=model.__name__)}


def _put(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if schemas.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name}")


def _error_response(status: int) -> dict[str, Any]:
    _, description, codes = _ERRORS[status]
    schema: dict[str, Any] = {
        "allOf": [
            {"$ref": SCHEMA_REF.format(model=out.Error.__name__)},
            {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}},
        ]
    }
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if status == 429:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before the next request.",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return response

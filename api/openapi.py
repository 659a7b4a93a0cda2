"""The OpenAPI 3.1 document of the whole API, from its route tables: request bodies from the
models that validate them, responses from the models handlers return, every error in the one
shape of ``api.errors``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from hookline.api import response_models as out
from hookline.api.route_table import JSON, Operation, RouteTable
from hookline.api.schemas import UID_RE
from hookline.contracts.ids import EVENT_ID_PATTERN, id_pattern

SCHEMA_REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter, as an operation's ``parameters`` lists it."""
    return {"name": name, "in": "query", "schema": schema, "description": description}


LIMIT = query_parameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": 1000},
    "Items per page (default: the `list_page_size` setting, 50).",
)
CURSOR = query_parameter("cursor", {"type": "string"}, "The previous page's `next_cursor`.")

_PATH_PARAMETERS: dict[str, tuple[str, str]] = {
    "app_id": (UID_RE, "The app's id (`app_...`) or its uid."),
    "endpoint_id": (id_pattern("ep").pattern, "The endpoint's id."),
    "event_id": (EVENT_ID_PATTERN.pattern, "The event's id."),
    "delivery_id": (id_pattern("dlv").pattern, "The delivery's id."),
    "recovery_id": (id_pattern("rcv").pattern, "The bulk recovery's id."),
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
    503: ("Unavailable", "The database, Temporal or an endpoint's lane is not reachable; retry.",
          ("database_unavailable", "temporal_unavailable", "lane_unavailable")),
}  # fmt: skip
"""Error statuses: the component's name, its description, and the codes it carries."""


def openapi_document(tables: Iterable[RouteTable]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation of ``tables``."""
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for operation in (operation for table in tables for operation in table.operations):
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

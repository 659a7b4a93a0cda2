"""The API's error type and the middleware that renders every error as ``{"error": {...}}``."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from temporalio.service import RPCError, RPCStatusCode

from hookline.api import response_models as out
from hookline.api.route_table import JSON
from hookline.delivery.errors import (
    AlreadySucceeded,
    DeliveryError,
    DeliveryNotFound,
    LaneUnavailable,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API answers with: an HTTP status, a stable code and a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}
        """Sent with the error, such as ``Retry-After``."""


def endpoint_disabled() -> ApiError:
    """A 409 for an action a disabled endpoint cannot take."""
    return ApiError(
        409, "endpoint_disabled", 'the endpoint is disabled: PATCH {"disabled": false} first'
    )


def not_found(what: str) -> ApiError:
    """A 404 naming the kind of thing that was not found."""
    return ApiError(404, "not_found", f"{what} not found")


def validation_failed(err: ValidationError) -> ApiError:
    """A 422 for a pydantic error: malformed JSON, unknown fields, wrong types, bad values."""
    errors = err.errors(include_url=False, include_input=False, include_context=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return ApiError(422, "invalid_json", "request body is not valid JSON")
    details = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in errors]
    summary = "; ".join(
        f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details
    )
    return ApiError(422, "validation_error", summary, details)


def error_body(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> web.Response:
    """The JSON response every error uses (``details`` only where there are some)."""
    info = {"code": code, "message": message, "details": details or None}
    error = out.Error(error=out.ErrorInfo.model_validate(info))
    return web.Response(
        body=error.model_dump_json(exclude_none=True).encode(), status=status, content_type=JSON
    )


_ANSWER_MODELS = frozenset(
    name
    for name, value in vars(out).items()
    if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == out.__name__
)
"""The response models' names: a validation error of one is the server's fault."""

_DELIVERY_STATUSES: dict[type[DeliveryError], int] = {
    AlreadySucceeded: 409,
    DeliveryNotFound: 404,
    LaneUnavailable: 503,
}
"""The HTTP status of each refusal of the delivery core (its ``code`` is the error code)."""

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn domain errors, aiohttp's HTTP errors and anything unexpected into the error JSON."""
    try:
        return await handler(request)
    except DeliveryError as err:
        return error_body(_DELIVERY_STATUSES.get(type(err), 409), err.code, err.message)
    except ApiError as err:
        response = error_body(err.status, err.code, err.message, err.details)
        response.headers.update(err.headers)
        if err.status == 408:
            response.force_close()  # RFC 9110: a 408 means the server closes the connection
        return response
    except ValidationError as err:
        if err.title in _ANSWER_MODELS:
            # What the handler answers does not fit its model: a bug here, not the client's.
            fields = [(e["loc"], e["type"]) for e in err.errors(include_input=False)]
            log.error(  # never the values: an answer may hold a secret
                "%s on %s %s: %s", err.title, request.method, request.rel_url.raw_path, fields
            )
            return error_body(500, "internal_error", "internal error")
        api_error = validation_failed(err)
        return error_body(api_error.status, api_error.code, api_error.message, api_error.details)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = _HTTP_CODES.get(err.status, "http_error")
        response = error_body(err.status, code, err.reason)
        if "Allow" in err.headers:
            response.headers["Allow"] = err.headers["Allow"]
        return response
    except (OperationalError, InterfaceError, OSError) as err:
        # The registry's database is down or unreachable: a retry later will do.
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.rel_url.raw_path,  # still percent-encoded: a %0A cannot start a new line
            type(err).__name__,
        )
        return error_body(503, "database_unavailable", "the database is not reachable; retry")
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # Registered here but gone from Temporal: past the namespace's retention period.
            return error_body(404, "not_found", "not found in Temporal (past retention?)")
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            log.warning("temporal unavailable: %s", err.message)
            return error_body(503, "temporal_unavailable", "Temporal is not reachable; retry")
        log.exception("temporal error on %s %s", request.method, request.rel_url.raw_path)
        return error_body(500, "internal_error", "internal error")
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.rel_url.raw_path)
        return error_body(500, "internal_error", "internal error")

"""Reading what a request carries: its body (within a time limit), and the app its path
names."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

from hookline.api.auth import KEY_SCOPE
from hookline.api.errors import ApiError, not_found
from hookline.api.keys import REGISTRY, SETTINGS
from hookline.storage.entities import App

M = TypeVar("M", bound=BaseModel)
_LIMIT = re.compile(r"^[0-9]{1,4}$")
log = logging.getLogger(__name__)


async def parse_body(request: web.Request, model: type[M], *, empty_ok: bool = False) -> M:
    """The request's JSON body as ``model`` (an empty body reads as ``{}`` if ``empty_ok``).

    Raises:
        pydantic.ValidationError: malformed JSON, unknown fields, wrong types (422 upstream).
        web.HTTPRequestEntityTooLarge: the body is over ``max_request_bytes`` (413 upstream).
        ApiError: as ``read_body`` raises.
    """
    raw = await read_body(request)
    return model.model_validate_json(raw or (b"{}" if empty_ok else b"null"))


async def read_body(request: web.Request) -> bytes:
    """The request's whole body, as the client sends it within ``api_body_read_timeout_s``.

    Raises:
        ApiError: 408 ``request_timeout`` past the timeout (the connection then closes);
            400 ``client_disconnected`` if the client closed the connection while sending.
        web.HTTPRequestEntityTooLarge: the body is over the application's size limit.
    """
    try:
        async with asyncio.timeout(request.app[SETTINGS].api_body_read_timeout_s):
            return await request.read()
    except TimeoutError:
        raise ApiError(408, "request_timeout", "the request body did not arrive in time") from None
    except ConnectionError:
        # The client's doing, not an outage: nobody reads the answer, so no warning either.
        # The path as sent, still percent-encoded: a decoded one could forge log lines.
        log.debug("client went away while sending %s %s", request.method, request.rel_url.raw_path)
        raise ApiError(
            400, "client_disconnected", "the connection closed before the body arrived"
        ) from None


async def path_app(request: web.Request) -> App:
    """The app named by ``{app_id}`` in the path (its id or uid).

    Raises:
        ApiError: 404 if there is no such app, or the request's key is scoped to another.
    """
    app = await request.app[REGISTRY].apps.get(request.match_info["app_id"])
    scope = request.get(KEY_SCOPE)
    # A key scoped to another app learns nothing, not even that this app exists.
    if app is None or (scope is not None and app.id != scope):
        raise not_found("app")
    return app


def query_limit(raw: str | None, default: int) -> int:
    """A list's ``?limit=``: a whole number from 1 to 1000, ``default`` when absent.

    Raises:
        ApiError: 422 for anything else.
    """
    if raw is None:
        return default
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= 1000:
        raise ApiError(422, "validation_error", "limit must be a whole number from 1 to 1000")
    return int(raw)


@web.middleware
async def nul_free_paths(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 404 for a path with a NUL in it: no id has one, and PostgreSQL refuses them."""
    if "\x00" in request.path:
        raise not_found("resource")
    return await handler(request)

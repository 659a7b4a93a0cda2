"""Bearer-key authentication of every API request."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from api.errors import ApiError
from api.keys import SETTINGS

PUBLIC_PATHS = frozenset({"/healthz"})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse, with 401, any request without ``Authorization: Bearer <one of the API keys>``."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented or not _is_known(request, presented.strip()):
        raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer <key>' is required")
    return await handler(request)


def _is_known(request: web.Request, presented: str) -> bool:
    # Compare against every key, without stopping early, in constant time for each.
    # surrogateescape: a header with bytes that are not UTF-8 still compares (and fails).
    given = presented.encode("utf-8", "surrogateescape")
    found = False
    for key in request.app[SETTINGS].api_keys:
        found |= hmac.compare_digest(key.encode(), given)
    return found

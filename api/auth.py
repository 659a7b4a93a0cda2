"""Bearer-key authentication of every API request, and the app a key is scoped to."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from hookline.api.errors import ApiError
from hookline.api.keys import REGISTRY, SETTINGS
from hookline.api.rate_limits import AUTH_FAILURES, AUTHENTICATED_KEY, client_network, rate_limited
from hookline.storage.api_keys import ApiKey, is_key_shaped

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v1/openapi.json"})
KEY_SCOPE = web.RequestKey("key_scope", str)
"""Set on requests made with an app-scoped key: the one app id they may act on."""


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse, with 401, any request without ``Authorization: Bearer <key>`` naming a key of
    ``HOOKLINE_API_KEYS`` (admin) or a live key made with ``hookline keys create``.

    Raises:
        ApiError: 401 ``unauthorized``; 429 ``rate_limited`` for a key that needs looking up,
            from a client past ``api_auth_failures_per_s`` (see ``_registry_key``). Keys of
            ``HOOKLINE_API_KEYS`` are compared first and never limited.
    """
    if request.path in PUBLIC_PATHS or _is_open_codec_call(request):
        return await handler(request)
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise _unauthorized()
    if not _is_configured(request, presented):
        key = await _registry_key(request, presented)
        if key.app_id is not None:
            request[KEY_SCOPE] = key.app_id
    request[AUTHENTICATED_KEY] = presented
    return await handler(request)


async def _registry_key(request: web.Request, presented: str) -> ApiKey:
    """The live registry key ``presented`` names.

    A key this process found live within ``VERIFIED_KEY_TTL_S`` passes without a lookup; one
    it found live before that is looked up again, whatever the client's budget (only a real
    key can be in that cache). Any other key that has a key's shape is looked up only while
    the client's budget of failed authentications (``api_auth_failure_burst``, refilled at
    ``api_auth_failures_per_s``) is not spent: the token is taken before the lookup, so
    concurrent guesses cannot all get through, and given back if the key is found. So a valid
    key this process has not seen yet waits, with the guesses, at an address past its budget.

    Raises:
        ApiError: 401 ``unauthorized`` for a key with no shape of a key (no lookup, nothing
            spent) or no such live key; 429 ``rate_limited`` when the budget is spent.
    """
    if not is_key_shaped(presented):
        raise _unauthorized()
    keys = request.app[REGISTRY].keys
    recent = keys.recently_verified(presented)
    if recent is not None:
        return recent
    if keys.verified_before(presented):
        key = await keys.find(presented)  # found again, or revoked since
        if key is None:
            raise _unauthorized()
        return key
    failures = request.app[AUTH_FAILURES]
    client = client_network(request.remote)
    wait = failures.wait_for(client)
    if wait > 0:
        raise rate_limited("too many failed authentications from this address; retry later", wait)
    key = await keys.find(presented)
    if key is None:
        raise _unauthorized()
    failures.give_back(client)
    return key


def _is_open_codec_call(request: web.Request) -> bool:
    # A browser's CORS preflight carries no credentials; and in development the local UI
    # calls the codec without an API key. In production the codec needs an admin key.
    if not request.path.startswith("/codec/"):
        return False
    return request.method == "OPTIONS" or request.app[SETTINGS].mode == "development"


def require_admin(request: web.Request) -> None:
    """Refuse, with 403, an app-scoped key where only an admin key will do.

    Raises:
        ApiError: 403 ``forbidden``.
    """
    if KEY_SCOPE in request:
        raise ApiError(403, "forbidden", "this key is scoped to one app; use an admin key")


def _is_configured(request: web.Request, presented: str) -> bool:
    # Compare against every key, without stopping early, in constant time for each.
    # surrogateescape: a header with bytes that are not UTF-8 still compares (and fails).
    given = presented.encode("utf-8", "surrogateescape")
    found = False
    for key in request.app[SETTINGS].api_keys:
        found |= hmac.compare_digest(key.encode(), given)
    return found


def _unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "a valid 'Authorization: Bearer <key>' is required")

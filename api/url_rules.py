"""Which endpoint URLs Hookline accepts: well-formed, and allowed by the destination policy."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from yarl import URL

from api.errors import ApiError
from hookline.destination_policy import DestinationPolicy

RESOLVE_TIMEOUT_S = 5.0
"""How long saving an endpoint waits for DNS; past it the name is accepted (every attempt
checks the address it connects to anyway)."""


def checked_endpoint_url(raw: str, max_length: int) -> str:
    """The URL, normalised, if Hookline can deliver to it.

    Raises:
        ApiError: 422 ``invalid_url``: too long, not absolute http(s), no host, or a fragment.
    """
    if len(raw) > max_length:
        raise _invalid(f"url is longer than {max_length} characters")
    try:
        url = URL(raw)
    except (TypeError, ValueError):
        raise _invalid("url cannot be parsed") from None
    if url.scheme not in ("http", "https"):
        raise _invalid("url must start with http:// or https://")
    if not url.host or any(c.isspace() for c in raw):
        raise _invalid("url must be absolute, with a host and no whitespace")
    if url.fragment:
        raise _invalid("url must not have a #fragment")
    try:
        port = url.port  # a port out of range raises here
    except ValueError:
        raise _invalid("url has an invalid port") from None
    if port == 0:
        raise _invalid("url has an invalid port")
    return str(url)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_url", message)


async def ensure_destination_allowed(url: str, policy: DestinationPolicy) -> None:
    """Refuse a URL the destination policy forbids: plain HTTP in production, or a host that
    is (or resolves to) an internal address. A name that does not resolve now is accepted:
    every attempt checks the address it connects to anyway.

    Raises:
        ApiError: 422 ``invalid_url`` (HTTPS required) or ``destination_not_allowed``.
    """
    parsed = URL(url)
    if policy.requires_https and parsed.scheme != "https":
        raise _invalid("url must use https:// in production mode")
    host = parsed.host or ""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, parsed.port, type=socket.SOCK_STREAM),
                RESOLVE_TIMEOUT_S,
            )
        except (OSError, UnicodeError, TimeoutError):
            return
        addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        reason = policy.refusal(address.split("%")[0])
        if reason:
            raise ApiError(
                422, "destination_not_allowed", f"url points at {reason} ({host}), refused"
            )

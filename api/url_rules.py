"""Which endpoint URLs Hookline accepts: well-formed, and allowed by the destination policy."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from yarl import URL

from hookline.api.errors import ApiError
from hookline.contracts.destination_policy import DestinationPolicy

RESOLVE_TIMEOUT_S = 5.0
"""How long saving an endpoint waits for DNS; past it the name is accepted (every attempt
checks the address it connects to anyway)."""


def checked_endpoint_url(raw: str, max_length: int) -> str:
    """The URL, normalised, if Hookline can deliver to it.

    Args:
        raw: the URL as the client sent it.
        max_length: the longest URL accepted, in characters.

    Returns:
        The normalised URL.

    Raises:
        ApiError: 422 ``invalid_url``: too long, not absolute http(s), no host, a host that is
            not valid IDNA or has an empty label (``a..b``; one trailing dot is allowed), a
            fragment, a bracketed host that is not an IPv6 address, or an invalid port.
    """
    if len(raw) > max_length:
        raise _invalid(f"url is longer than {max_length} characters")
    try:
        url = URL(raw)
        host = url.host  # decodes IDNA, which raises UnicodeError for ``xn--a``
    except (TypeError, ValueError):  # UnicodeError is a ValueError
        raise _invalid("url cannot be parsed") from None
    if url.scheme not in ("http", "https"):
        raise _invalid("url must start with http:// or https://")
    if not host or any(c.isspace() for c in raw):
        raise _invalid("url must be absolute, with a host and no whitespace")
    if url.fragment:
        raise _invalid("url must not have a #fragment")
    if ":" in host:
        if _ipv6_literal(host) is None:
            raise _invalid("url has an invalid IPv6 address")
    elif "" in host.removesuffix(".").split("."):
        raise _invalid("url's host has an empty label (such as 'a..b')")
    try:
        port = url.port  # a port out of range raises here
    except ValueError:
        raise _invalid("url has an invalid port") from None
    if port == 0:
        raise _invalid("url has an invalid port")
    return str(url)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_url", message)


def _ipv6_literal(host: str) -> ipaddress.IPv6Address | None:
    """The address of a URL's IPv6 host (brackets and a ``%zone`` ignored), or ``None``."""
    try:
        return ipaddress.IPv6Address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None


def _is_ipv4(host: str) -> bool:
    """Whether ``host`` is a dotted-quad IPv4 address."""
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


async def ensure_destination_allowed(url: str, policy: DestinationPolicy) -> None:
    """Refuse a URL the destination policy forbids: plain HTTP in production, or a host that
    is (or resolves to) an internal address. A name that does not resolve now is accepted:
    every attempt checks the address it connects to anyway.

    Args:
        url: a URL ``checked_endpoint_url`` accepted.
        policy: the destination policy of this API.

    Raises:
        ApiError: 422 ``invalid_url`` (HTTPS required) or ``destination_not_allowed``.
    """
    parsed = URL(url)
    if policy.requires_https and parsed.scheme != "https":
        raise _invalid("url must use https:// in production mode")
    host = parsed.host or ""
    # ``10.0.0.1.`` is the same address to anything that parses it as one: judge it so.
    literal = host.strip("[]").removesuffix(".")
    if ":" in literal or _is_ipv4(literal):
        # An IP literal, judged as written: with a zone (``fe80::1%eth0``) or not even a
        # valid address (the policy refuses those), it never goes to the resolver.
        addresses = [literal]
    else:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, parsed.port, type=socket.SOCK_STREAM),
                RESOLVE_TIMEOUT_S,
            )
        except (OSError, UnicodeError, ValueError, TimeoutError):
            return
        addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        reason = policy.refusal(address)  # a scoped address's ``%zone`` is ignored
        if reason:
            raise ApiError(
                422, "destination_not_allowed", f"url points at {reason} ({host}), refused"
            )

"""Which endpoint URLs Hookline accepts."""

from __future__ import annotations

from yarl import URL

from api.errors import ApiError


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

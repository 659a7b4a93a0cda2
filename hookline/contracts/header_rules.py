"""Which custom headers an endpoint may carry: one rule for the API (at save) and the worker
(at every attempt, for rows saved before a rule tightened)."""

from __future__ import annotations

import re

HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
"""An HTTP token (RFC 9110), matched with ``fullmatch``: ``$`` would let a trailing newline in."""
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
"""C0 controls and DEL: no header value may hold one (a receiver or proxy may split on it)."""
MAX_HEADER_VALUE_LENGTH = 4096

# Headers Hookline sets itself, or that belong to the connection: an endpoint may not set them.
RESERVED_HEADERS = frozenset(
    {
        "content-type", "content-length", "content-encoding", "transfer-encoding", "host",
        "connection", "keep-alive", "upgrade", "te", "trailer", "proxy-authorization",
        "proxy-connection", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature",
    }
)  # fmt: skip


def check_header(name: str, value: str) -> None:
    """Refuse a custom header an attempt could not send as it is.

    Raises:
        ValueError: the name is not an HTTP token or is one Hookline sets, or the value holds
            a control character or is too long (the message never repeats the value).
    """
    if not HEADER_NAME_RE.fullmatch(name):
        raise ValueError(f"header name {name!r} is not a valid HTTP token")
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"header {name!r} is set by Hookline and cannot be overridden")
    if CONTROL_CHARACTERS.search(value):
        raise ValueError(f"header {name!r} has a control character (C0 or DEL) in its value")
    if len(value) > MAX_HEADER_VALUE_LENGTH:
        raise ValueError(f"header {name!r} is over {MAX_HEADER_VALUE_LENGTH} characters")

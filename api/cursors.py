"""Opaque list cursors: Temporal's page token, authenticated so a forged one is refused.

A made-up page token makes Temporal answer ``UNKNOWN`` after ten seconds of client retries;
an authenticated cursor lets the API refuse it at once with a 422.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from hookline.api.errors import ApiError

_MAC_BYTES = 16
_ALPHABET = re.compile(r"^[A-Za-z0-9_\-]+$")


def cursor_key(api_keys: list[str], listing: str) -> bytes:
    """The key cursors of one listing are signed with: derived from the API keys, so every API
    process configured alike accepts the others' cursors (and rotating every key expires
    them), and from the listing, so a cursor of one list is refused by another."""
    material = "\x00".join(["hookline-cursor", listing, *sorted(api_keys)])
    return hashlib.sha256(material.encode()).digest()


def encode_cursor(token: bytes, key: bytes) -> str:
    """A URL-safe cursor carrying ``token``."""
    mac = hmac.new(key, token, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(mac + token).decode().rstrip("=")


def decode_cursor(cursor: str, key: bytes) -> bytes:
    """The page token inside a cursor made by ``encode_cursor``.

    Raises:
        ApiError: 422 ``validation_error`` for anything else.
    """
    invalid = ApiError(422, "validation_error", "cursor is not valid")
    if not _ALPHABET.fullmatch(cursor):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    mac, token = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
    expected = hmac.new(key, token, hashlib.sha256).digest()[:_MAC_BYTES]
    if not token or not hmac.compare_digest(mac, expected):
        raise invalid
    return token

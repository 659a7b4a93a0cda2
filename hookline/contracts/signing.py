"""Standard Webhooks signatures: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class InvalidSecretError(ValueError):
    """A signing secret that is not ``whsec_`` + base64 of 24 to 64 bytes."""


def generate_secret() -> str:
    """A new endpoint secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret.

    Raises:
        InvalidSecretError: the secret is malformed (the message never repeats the secret).
    """
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecretError(f"secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError as err:
        raise InvalidSecretError("secret is not valid base64 after the prefix") from err
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecretError(
            f"secret must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes"
        )
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt.

    Args:
        secret: The endpoint's ``whsec_`` secret.
        msg_id: The ``webhook-id`` header value.
        timestamp: The ``webhook-timestamp`` header value, Unix seconds.
        body: The exact bytes sent.

    Raises:
        InvalidSecretError: the secret is malformed.
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


SCHEMES = ("standard", "stripe", "sha256-timestamp", "hmac-hex")
DEFAULT_SIGNATURE_HEADER = "x-webhook-signature"
"""Header of the ``stripe`` and ``hmac-hex`` schemes unless the endpoint names another."""


def signature_headers(
    scheme: str,
    secrets: list[str],
    msg_id: str,
    timestamp: int,
    body: bytes,
    header_name: str | None = None,
) -> dict[str, str]:
    """The headers that sign one attempt under an endpoint's scheme.

    Every secret in ``secrets`` signs (two during a rotation's grace period). ``standard``
    keys HMAC with the decoded ``whsec_`` secret, as Standard Webhooks does; the other
    schemes, made for receivers migrating from other providers, key it with the secret
    string's UTF-8 bytes, as Stripe's and GitHub's receivers do.

    Args:
        scheme: One of ``SCHEMES``.
        secrets: The signing secrets, current first.
        msg_id: The ``webhook-id`` header value.
        timestamp: The attempt's Unix time.
        body: The exact bytes sent.
        header_name: The signature header of ``stripe`` and ``hmac-hex``.

    Raises:
        InvalidSecretError: a ``standard`` secret is malformed.
        ValueError: an unknown scheme.
    """
    header = (header_name or DEFAULT_SIGNATURE_HEADER).lower()
    if scheme == "standard":
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
        }
    if scheme == "stripe":
        signed = f"{timestamp}.".encode() + body
        versions = ",".join(f"v1={_hex_hmac(s, signed)}" for s in secrets)
        return {"webhook-id": msg_id, header: f"t={timestamp},{versions}"}
    if scheme == "sha256-timestamp":
        signed = f"{timestamp}.".encode() + body
        return {
            "webhook-id": msg_id,
            "x-webhook-timestamp": str(timestamp),
            "x-webhook-signature": " ".join(f"sha256={_hex_hmac(s, signed)}" for s in secrets),
        }
    if scheme == "hmac-hex":
        return {"webhook-id": msg_id, header: " ".join(_hex_hmac(s, body) for s in secrets)}
    raise ValueError(f"unknown signature scheme {scheme!r}")


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()

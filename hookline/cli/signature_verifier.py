"""A receiver's check of a delivery's signature, in each of Hookline's signature schemes."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from hookline.contracts.signing import (
    DEFAULT_SIGNATURE_HEADER,
    SCHEMES,
    decode_secret,
    signature_headers,
)

TOLERANCE_S = 5 * 60
"""How far a signed timestamp may be from the receiver's clock, either way."""
TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    """A request whose signature does not verify; the message says why (never the secret)."""


class NoMatchingSignatureError(SignatureError):
    """A well-formed request (its timestamp, in the schemes that sign one, within the
    tolerance) whose signatures are none of the secret's: the one failure a newer secret (a
    rotation) could explain."""


@dataclass(frozen=True)
class SignatureVerifier:
    """Verifies requests signed with one endpoint's secret under its signature scheme.

    The expected signature comes from Hookline's own signer (``signature_headers``), parsed
    back the way the request's headers are, so the two can only agree on the scheme's format.
    """

    scheme: str
    secret: str = field(repr=False)
    signature_header: str | None = None
    """The header of the ``stripe`` and ``hmac-hex`` schemes (default ``x-webhook-signature``)."""
    tolerance_s: int = TOLERANCE_S

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown signature scheme {self.scheme!r}")
        if self.scheme == "standard":
            decode_secret(self.secret)  # a malformed secret fails here, not on each request

    @property
    def signs_id(self) -> bool:
        """Whether the signature covers ``webhook-id``: only ``standard``'s does. Under the
        other schemes a signed body can be sent again with any id (and, in ``hmac-hex``, which
        signs no timestamp, at any time)."""
        return self.scheme == "standard"

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
        """Check that one of the request's signatures is the secret's, over this body.

        Args:
            headers: The request's headers, looked up by lower-case name (aiohttp's
                case-insensitive headers will do).
            body: The exact bytes received.
            now: The receiver's Unix time; default: the clock.

        Raises:
            NoMatchingSignatureError: the request is well-formed and fresh, but no signature
                matches.
            SignatureError: a signature header is missing or malformed, or the signed
                timestamp is more than ``tolerance_s`` away from ``now``.
        """
        timestamp, signatures = self._signatures(headers)
        if timestamp is not None:
            self._check_fresh(int(timestamp), time.time() if now is None else now)
        msg_id = headers.get("webhook-id", "")
        if self.scheme == "standard" and not msg_id:
            raise SignatureError("no webhook-id header")
        expected_headers = signature_headers(
            self.scheme,
            [self.secret],
            msg_id,
            int(timestamp or 0),
            body,
            self.signature_header,
        )
        [expected] = self._signatures(expected_headers)[1]
        # A non-ASCII token cannot match, and compare_digest refuses non-ASCII strings.
        if not any(s.isascii() and hmac.compare_digest(expected, s) for s in signatures):
            raise NoMatchingSignatureError("no matching signature")

    def _signatures(self, headers: Mapping[str, str]) -> tuple[str | None, list[str]]:
        """The signed timestamp (``None`` in ``hmac-hex``) and every signature sent."""
        if self.scheme == "standard":
            value = _header(headers, "webhook-signature")
            versions = [_split(token, ",", "webhook-signature") for token in value.split()]
            timestamp = _timestamp(_header(headers, "webhook-timestamp"), "webhook-timestamp")
            return timestamp, [signature for version, signature in versions if version == "v1"]
        if self.scheme == "sha256-timestamp":
            value = _header(headers, "x-webhook-signature")
            pairs = [_split(token, "=", "x-webhook-signature") for token in value.split()]
            timestamp = _timestamp(_header(headers, "x-webhook-timestamp"), "x-webhook-timestamp")
            return timestamp, [signature for kind, signature in pairs if kind == "sha256"]
        name = (self.signature_header or DEFAULT_SIGNATURE_HEADER).lower()
        value = _header(headers, name)
        if self.scheme == "hmac-hex":
            return None, value.split()
        items = [_split(item.strip(), "=", name) for item in value.split(",")]
        stamps = [v for k, v in items if k == "t"]
        if len(stamps) != 1:
            raise SignatureError(f"{name} header has no single t=<timestamp>")
        return _timestamp(stamps[0], name), [v for k, v in items if k == "v1"]

    def _check_fresh(self, timestamp: int, now: float) -> None:
        age = round(now - timestamp)
        if age > self.tolerance_s:
            raise SignatureError(f"timestamp {age} s old, over the {self.tolerance_s} s tolerance")
        if -age > self.tolerance_s:
            raise SignatureError(
                f"timestamp {-age} s ahead, over the {self.tolerance_s} s tolerance"
            )


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"no {name} header")
    return value


def _split(token: str, separator: str, name: str) -> tuple[str, str]:
    key, found, value = token.partition(separator)
    if not found:
        raise SignatureError(f"malformed {name} header")
    return key, value


def _timestamp(value: str, name: str) -> str:
    if not TIMESTAMP.fullmatch(value):
        raise SignatureError(f"malformed {name} timestamp")
    return value

"""Request bodies the API accepts, validated by pydantic (unknown fields are refused)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from hookline.contracts.header_rules import HEADER_NAME_RE, RESERVED_HEADERS, check_header
from hookline.contracts.signing import InvalidSecretError, decode_secret

EVENT_TYPE_RE = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"
EVENT_TYPE_PATTERN_RE = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*(\.\*)?$"
UID_RE = r"^[A-Za-z0-9_.\-]{1,64}$"
EventType = Annotated[str, StringConstraints(pattern=EVENT_TYPE_RE, max_length=256)]
EventTypePattern = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN_RE, max_length=256)]


def as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC, between 1970 and 9999 (what every store can hold).

    Raises:
        ValueError: outside those years, or naive.
    """
    if value.tzinfo is None:
        raise ValueError("a datetime needs a timezone, e.g. 2026-01-31T12:00:00Z")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime out of range") from None
    if not 1970 <= utc.year <= 9999:
        raise ValueError("datetime must fall between the years 1970 and 9999")
    return utc


UtcDatetime = Annotated[AwareDatetime, Field(strict=True), AfterValidator(as_utc)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL, and no name, URL or header needs one.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("NUL characters are not allowed")
        return value


class AppCreate(_Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    uid: Annotated[str, StringConstraints(pattern=UID_RE)] | None = None

    @field_validator("uid")
    @classmethod
    def _not_like_an_id(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("app_"):
            raise ValueError("uid must not start with 'app_' (reserved for app ids)")
        return value


class RetryOverride(_Body):
    """Per-endpoint retry schedule; absent fields take the global default."""

    schedule_s: list[Annotated[float, Field(ge=0, le=7 * 86_400)]] | None = Field(
        default=None, min_length=1, max_length=50
    )
    """An explicit schedule: the delay before each attempt; the delivery fails after the last."""
    initial_interval_s: float | None = Field(default=None, ge=1, le=86_400)
    backoff_coefficient: float | None = Field(default=None, ge=1, le=100)
    max_interval_s: float | None = Field(default=None, ge=1, le=7 * 86_400)
    window_s: float | None = Field(default=None, ge=1, le=30 * 86_400)

    def as_dict(self) -> dict[str, float]:
        return self.model_dump(exclude_none=True)


SignatureScheme = Literal["standard", "stripe", "sha256-timestamp", "hmac-hex"]
OTHER_SCHEME_SECRET_RE = re.compile(r"[\x21-\x7e]{16,256}")


def check_secret(secret: str, scheme: str) -> None:
    """Refuse a secret the scheme cannot sign with.

    ``standard`` takes ``whsec_`` + base64 of 24-64 bytes; the other schemes, which key HMAC
    with the secret's own bytes, take 16-256 printable ASCII characters (so that receivers
    migrating from another provider keep their secret).

    Raises:
        ValueError: the secret does not fit (the message never repeats it).
    """
    if scheme == "standard":
        try:
            decode_secret(secret)
        except InvalidSecretError as err:
            raise ValueError(str(err)) from None
    elif not OTHER_SCHEME_SECRET_RE.fullmatch(secret):
        raise ValueError("secret must be 16-256 printable ASCII characters without spaces")


class _EndpointFields(_Body):
    @field_validator("signature_header", check_fields=False)
    @classmethod
    def _check_signature_header(cls, value: str | None) -> str | None:
        if value is not None:
            if not HEADER_NAME_RE.fullmatch(value) or value.lower() in RESERVED_HEADERS:
                raise ValueError(f"signature_header {value!r} is not a usable header name")
            value = value.lower()
        return value

    @field_validator("headers", check_fields=False)
    @classmethod
    def _check_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, header_value in (value or {}).items():
            check_header(name, header_value)
        return value


class EndpointCreate(_EndpointFields):
    url: Annotated[str, StringConstraints(min_length=1)]
    event_types: list[EventTypePattern] | None = None
    description: Annotated[str, StringConstraints(max_length=1024)] = ""
    secret: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    retry: RetryOverride | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=300)
    signature_scheme: SignatureScheme = "standard"
    signature_header: str | None = None
    """Header name of the ``stripe`` and ``hmac-hex`` schemes (default x-webhook-signature)."""
    rate_limit_per_s: float | None = Field(default=None, gt=0, le=10_000)
    """Attempts started per second at most, across every worker; ``null``: no limit."""
    max_in_flight: int | None = Field(default=None, ge=1, le=10_000)
    """POSTs open at once at most, across every worker, through the endpoint's lane;
    ``null``: ``HOOKLINE_ENDPOINT_MAX_CONCURRENT_ATTEMPTS``, shared out among the workers,
    with no lane."""
    ordering: Literal["none", "fifo"] = "none"
    """``fifo``: events with the same ``ordering_key`` are delivered in acceptance order."""

    @model_validator(mode="after")
    def _secret_fits_scheme(self) -> EndpointCreate:
        if self.secret is not None:
            check_secret(self.secret, self.signature_scheme)
        return self


class EndpointPatch(_EndpointFields):
    """Fields to change; ``event_types: null`` subscribes to every type again."""

    url: Annotated[str, StringConstraints(min_length=1)] | None = None
    event_types: list[EventTypePattern] | None = None
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    headers: dict[str, str] | None = None
    retry: RetryOverride | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=300)
    signature_scheme: SignatureScheme | None = None
    signature_header: str | None = None
    disabled: bool | None = None
    """``false`` re-enables an endpoint that was disabled (by hand or for failing)."""
    rate_limit_per_s: float | None = Field(default=None, gt=0, le=10_000)
    """``null`` removes the limit."""
    max_in_flight: int | None = Field(default=None, ge=1, le=10_000)
    """``null``: back to the default (no lane)."""
    ordering: Literal["none", "fifo"] | None = None


class SecretRotate(_Body):
    secret: str | None = None
    """The new secret; one is generated when absent."""
    grace_s: float = Field(default=86_400, ge=0, le=7 * 86_400)
    """How long the old secret keeps signing too (both signatures are sent)."""


class TestSend(_Body):
    __test__ = False  # not a pytest class

    payload: Any = None


class EventCreate(_Body):
    type: EventType
    payload: Any
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")] | None = None
    callback_url: Annotated[str, StringConstraints(min_length=1)] | None = None
    """Deliver to this URL only, signed with the app's own secret, instead of fanning out."""
    ordering_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")] | None = (
        None
    )
    """To a ``fifo`` endpoint, deliveries with the same key go in acceptance order (without
    one, all of the endpoint's deliveries are one queue)."""

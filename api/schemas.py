"""Request bodies the API accepts, validated by pydantic (unknown fields are refused)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from activities.signing import InvalidSecretError, decode_secret

EVENT_TYPE_RE = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"
EVENT_TYPE_PATTERN_RE = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*(\.\*)?$"
UID_RE = r"^[A-Za-z0-9_.\-]{1,64}$"
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$")

# Headers Hookline sets itself, or that belong to the connection: an endpoint may not set them.
RESERVED_HEADERS = frozenset(
    {
        "content-type", "content-length", "content-encoding", "transfer-encoding", "host",
        "connection", "keep-alive", "upgrade", "te", "trailer", "proxy-authorization",
        "proxy-connection", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature",
    }
)  # fmt: skip

EventType = Annotated[str, StringConstraints(pattern=EVENT_TYPE_RE, max_length=256)]
EventTypePattern = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN_RE, max_length=256)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


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

    initial_interval_s: float | None = Field(default=None, ge=1, le=86_400)
    backoff_coefficient: float | None = Field(default=None, ge=1, le=100)
    max_interval_s: float | None = Field(default=None, ge=1, le=7 * 86_400)
    window_s: float | None = Field(default=None, ge=1, le=30 * 86_400)

    def as_dict(self) -> dict[str, float]:
        return self.model_dump(exclude_none=True)


class _EndpointFields(_Body):
    @field_validator("secret", check_fields=False)
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                decode_secret(value)
            except InvalidSecretError as err:
                raise ValueError(str(err)) from None
        return value

    @field_validator("headers", check_fields=False)
    @classmethod
    def _check_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, header_value in (value or {}).items():
            if not HEADER_NAME_RE.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP token")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by Hookline and cannot be overridden")
            if any(c in header_value for c in "\r\n\x00") or len(header_value) > 4096:
                raise ValueError(f"header {name!r} has CR, LF or NUL, or is over 4096 characters")
        return value


class EndpointCreate(_EndpointFields):
    url: Annotated[str, StringConstraints(min_length=1)]
    event_types: list[EventTypePattern] | None = None
    description: Annotated[str, StringConstraints(max_length=1024)] = ""
    secret: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    retry: RetryOverride | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=300)


class EndpointPatch(_EndpointFields):
    """Fields to change; ``event_types: null`` subscribes to every type again."""

    url: Annotated[str, StringConstraints(min_length=1)] | None = None
    event_types: list[EventTypePattern] | None = None
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    headers: dict[str, str] | None = None
    retry: RetryOverride | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=300)


class EventCreate(_Body):
    type: EventType
    payload: Any
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")] | None = None

"""The JSON bodies the API answers with, as pydantic models: the OpenAPI document's response
schemas. Handlers build plain dicts; ``tests/test_openapi.py`` holds them to these shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hookline.api.schemas import RetryOverride, SignatureScheme


class _Shape(BaseModel):
    # Forbidden extras: a field a handler adds without documenting it fails the tests.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ErrorDetail(_Shape):
    field: str
    """The offending field's dotted path ("" for the body as a whole)."""
    message: str


class ErrorInfo(_Shape):
    code: str
    """Stable and machine-readable, e.g. ``not_found`` or ``validation_error``."""
    message: str
    details: list[ErrorDetail] | None = None
    """One item per invalid field, for ``validation_error``s pydantic found."""


class Error(_Shape):
    """Every error the API answers with."""

    error: ErrorInfo


class Health(_Shape):
    status: Literal["ok"]


class ReadinessChecks(_Shape):
    database: Literal["ok", "unreachable"]
    temporal: Literal["ok", "unreachable"]


class Readiness(_Shape):
    status: Literal["ready", "unavailable"]
    checks: ReadinessChecks


class App(_Shape):
    id: str
    uid: str | None
    name: str
    created_at: datetime


class Secret(_Shape):
    secret: str
    previous_secret_expires_at: datetime | None
    """While a rotation's grace period lasts, when the previous secret stops signing."""


class Endpoint(_Shape):
    id: str
    app_id: str
    url: str
    description: str
    event_types: list[str] | None
    """``null``: every event type."""
    headers: dict[str, str]
    """Custom header names, each with the value ``********``: values are never read back
    (send ``********`` in a PATCH to keep a header's stored value)."""
    retry: RetryOverride | None
    timeout_s: float | None
    signature_scheme: SignatureScheme
    signature_header: str | None
    disabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(Endpoint):
    """The only endpoint response that carries its signing secret."""

    secret: str


class EndpointList(_Shape):
    data: list[Endpoint]


class DeliveryOfEvent(_Shape):
    id: str
    endpoint_id: str
    """An endpoint id, or ``callback`` for a delivery to the event's ``callback_url``."""
    status: Literal["pending", "retrying", "succeeded", "failed", "unknown"]
    """``unknown``: past the Temporal namespace's retention."""


class EventSummary(_Shape):
    id: str
    type: str
    created_at: datetime


class EventAccepted(EventSummary):
    deliveries: list[DeliveryOfEvent]
    duplicate: bool
    """The event id had been seen: these are the deliveries made then, and nothing was sent."""


class Event(EventSummary):
    deliveries: list[DeliveryOfEvent]
    payload: Any
    """The event's payload, as sent."""


class EventPage(_Shape):
    data: list[EventSummary]
    next_cursor: str | None


class LastAttempt(_Shape):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class Delivery(_Shape):
    id: str
    event_id: str
    endpoint_id: str
    event_type: str | None
    """``null`` only while its event's fan-out has yet to start it (and the event is gone)."""
    url: str | None
    """``null`` only while its event's fan-out has yet to start it (and the endpoint is gone)."""
    status: Literal["pending", "retrying", "succeeded", "failed"]
    attempts: int
    last_attempt: LastAttempt | None
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    workflow_id: str


class DeliveryPage(_Shape):
    data: list[Delivery]
    next_cursor: str | None
    """Follow it until it is ``null``: a page may hold fewer than ``limit`` items."""


class Attempt(_Shape):
    attempt: int
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None
    """The start of the receiver's answer."""


class AttemptLog(_Shape):
    data: list[Attempt]


class Recovery(_Shape):
    id: str
    endpoint_id: str
    since: datetime
    until: datetime
    status: Literal["running", "completed", "cancelled", "failed"]
    found: int
    retried: int
    skipped: int
    errors: int
    created_at: datetime
    finished_at: datetime | None


class CodecPayload(_Shape):
    """A Temporal payload in protobuf's JSON form (bytes as base64)."""

    metadata: dict[str, str] | None = None
    data: str | None = None


class CodecPayloads(_Shape):
    payloads: list[CodecPayload] | None = None

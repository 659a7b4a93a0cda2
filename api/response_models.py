"""The JSON bodies the API answers with, as pydantic models: handlers return them, and the
OpenAPI document's response schemas are theirs. Each model's ``of`` fills it from what the
storage or the delivery core holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_serializer

from hookline.api.schemas import RetryOverride, SignatureScheme
from hookline.contracts.delivery import AttemptRecord
from hookline.contracts.lanes import LaneHealth
from hookline.contracts.statuses import PENDING
from hookline.delivery.recoveries import RecoveryState, RecoveryStatus
from hookline.delivery.status import DeliveryView
from hookline.storage import entities
from hookline.storage.attempt_log import LoggedAttempt

HEADER_VALUE_MASK = "********"
"""What reads show for every custom header value: headers often carry the receiver's
credentials, so like secrets they are never read back. A PATCH that sends this value for a
header the endpoint has keeps its stored value (a read's ``headers`` can be sent back as is),
unless the same PATCH moves the URL to another origin."""

Time = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]
"""Every time the API answers with: RFC 3339 in UTC, written with ``Z``."""


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
    created_at: Time

    @classmethod
    def of(cls, app: entities.App) -> App:
        return cls.model_validate(app, from_attributes=True)


class Secret(_Shape):
    secret: str
    previous_secret_expires_at: Time | None
    """While a rotation's grace period lasts, when the previous secret stops signing."""

    @classmethod
    def of(cls, holder: entities.Endpoint | entities.AppSecrets, now: datetime) -> Secret:
        expires = holder.previous_secret_expires_at
        in_grace = holder.previous_secret is not None and expires is not None and expires > now
        return cls(secret=holder.secret, previous_secret_expires_at=expires if in_grace else None)


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
    failing_since: Time | None
    rate_limit_per_s: float | None
    """Attempts started per second at most, across every worker; ``null``: no limit."""
    max_in_flight: int | None
    """POSTs open at once at most, across every worker, through the endpoint's lane;
    ``null``: the default, shared out among the workers, with no lane."""
    paused: bool
    """Nothing is sent while paused; its deliveries wait, reading ``paused``."""
    ordering: Literal["none", "fifo"]
    """``fifo``: events with the same ``ordering_key`` are delivered in acceptance order."""
    created_at: Time
    updated_at: Time

    @field_serializer("retry")
    def _only_fields_set(self, retry: RetryOverride | None) -> dict[str, Any] | None:
        # As it was set: a field left out takes the global default, which may change.
        return retry.as_dict() if retry is not None else None

    @classmethod
    def of(cls, endpoint: entities.Endpoint) -> Endpoint:
        return cls.model_validate(_endpoint_fields(endpoint))


class EndpointCreated(Endpoint):
    """The only endpoint response that carries its signing secret."""

    secret: str

    @classmethod
    def of(cls, endpoint: entities.Endpoint) -> EndpointCreated:
        return cls.model_validate({**_endpoint_fields(endpoint), "secret": endpoint.secret})


def _endpoint_fields(endpoint: entities.Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "app_id": endpoint.app_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "headers": {name: HEADER_VALUE_MASK for name in endpoint.headers},
        "retry": endpoint.retry,
        "timeout_s": endpoint.timeout_s,
        "signature_scheme": endpoint.signature_scheme,
        "signature_header": endpoint.signature_header,
        "disabled": endpoint.disabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "rate_limit_per_s": endpoint.rate_limit_per_s,
        "max_in_flight": endpoint.max_in_flight,
        "paused": endpoint.paused,
        "ordering": endpoint.ordering,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


class EndpointHealth(_Shape):
    """An endpoint's lane: whether it sends, and how much is under way or waiting."""

    state: Literal["healthy", "open", "half_open", "paused"]
    """``open``: failing, so only one probe attempt goes at a time (``half_open`` while it
    does); ``paused``: nothing goes."""
    in_flight: int
    waiting: int
    """Deliveries waiting for a permit."""
    consecutive_failures: int
    last_success_at: Time | None
    last_failure_at: Time | None
    rate_limit_per_s: float | None
    max_in_flight: int
    """The endpoint's, or the default where it sets none."""

    @classmethod
    def of(
        cls, health: LaneHealth, endpoint: entities.Endpoint, default_max_in_flight: int
    ) -> EndpointHealth:
        return cls.model_validate(
            {
                **health.model_dump(),
                "rate_limit_per_s": endpoint.rate_limit_per_s,
                "max_in_flight": endpoint.max_in_flight or default_max_in_flight,
            }
        )


class EndpointList(_Shape):
    data: list[Endpoint]


class DeliveryOfEvent(_Shape):
    id: str
    endpoint_id: str
    """An endpoint id, or ``callback`` for a delivery to the event's ``callback_url``."""
    status: Literal["pending", "retrying", "paused", "succeeded", "failed", "unknown"]
    """``unknown``: past the Temporal namespace's retention."""


class EventSummary(_Shape):
    id: str
    type: str
    created_at: Time

    @classmethod
    def listed(cls, record: entities.EventRecord) -> EventSummary:
        """As a listing shows it."""
        return cls.model_validate(record, from_attributes=True)


def _event_fields(record: entities.EventRecord, statuses: dict[str, str]) -> dict[str, Any]:
    """An event's fields, its deliveries with their ``statuses`` (``pending`` where it has
    none)."""
    deliveries = [
        {"id": ref.id, "endpoint_id": ref.endpoint_id, "status": statuses.get(ref.id, PENDING)}
        for ref in record.deliveries
    ]
    return {
        "id": record.id,
        "type": record.type,
        "created_at": record.created_at,
        "deliveries": deliveries,
    }


class EventAccepted(EventSummary):
    deliveries: list[DeliveryOfEvent]
    duplicate: bool
    """The event id had been seen: these are the deliveries made then, and nothing was sent."""

    @classmethod
    def of(
        cls, record: entities.EventRecord, statuses: dict[str, str], *, duplicate: bool
    ) -> EventAccepted:
        return cls.model_validate({**_event_fields(record, statuses), "duplicate": duplicate})


class Event(EventSummary):
    deliveries: list[DeliveryOfEvent]
    payload: Any
    """The event's payload, as sent."""

    @classmethod
    def of(cls, record: entities.EventRecord, statuses: dict[str, str], payload: Any) -> Event:
        return cls.model_validate({**_event_fields(record, statuses), "payload": payload})


class EventPage(_Shape):
    data: list[EventSummary]
    next_cursor: str | None


class LastAttempt(_Shape):
    at: Time
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, record: AttemptRecord) -> LastAttempt:
        return cls.model_validate(record, from_attributes=True)


class Delivery(_Shape):
    id: str
    event_id: str
    endpoint_id: str
    event_type: str | None
    """``null`` only while its event's fan-out has yet to start it (and the event is gone)."""
    url: str | None
    """Where its last attempt went; before any, where it is to go. ``null`` only while its
    event's fan-out has yet to start it (and the endpoint is gone)."""
    endpoint_url: str | None
    """The endpoint's URL now, where it differs from ``url`` (it was changed since); else
    ``null``. The next attempt goes there."""
    status: Literal["pending", "retrying", "paused", "succeeded", "failed"]
    attempts: int
    last_attempt: LastAttempt | None
    next_attempt_at: Time | None
    created_at: Time
    finished_at: Time | None
    workflow_id: str

    @classmethod
    def of(cls, view: DeliveryView, endpoint_url: str | None) -> Delivery:
        """``view``, with ``endpoint_url`` the endpoint's URL now (``None``: it is gone)."""
        last = view.last_attempt
        return cls.model_validate(
            {
                "id": view.id,
                "event_id": view.event_id,
                "endpoint_id": view.endpoint_id,
                "event_type": view.event_type,
                "url": view.url,
                "endpoint_url": endpoint_url if endpoint_url != view.url else None,
                "status": view.status,
                "attempts": view.attempts,
                "last_attempt": LastAttempt.of(last) if last else None,
                "next_attempt_at": view.next_attempt_at,
                "created_at": view.created_at,
                "finished_at": view.finished_at,
                "workflow_id": view.workflow_id,
            }
        )


class DeliveryPage(_Shape):
    data: list[Delivery]
    next_cursor: str | None
    """Follow it until it is ``null``: a page may hold fewer than ``limit`` items."""


class Attempt(_Shape):
    attempt: int
    at: Time
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None
    """The start of the receiver's answer."""
    url: str | None
    """Where the attempt went (``null`` for attempts logged before Hookline recorded it, or
    one made without a destination: its endpoint was deleted)."""

    @classmethod
    def of(cls, logged: LoggedAttempt) -> Attempt:
        return cls.model_validate(logged, from_attributes=True)


class AttemptLog(_Shape):
    data: list[Attempt]


class Recovery(_Shape):
    id: str
    endpoint_id: str
    since: Time
    until: Time
    status: RecoveryStatus
    found: int
    retried: int
    skipped: int
    errors: int
    created_at: Time
    finished_at: Time | None

    @classmethod
    def of(cls, state: RecoveryState) -> Recovery:
        return cls.model_validate(
            {
                **state.progress.model_dump(),
                "id": state.id,
                "status": state.status,
                "finished_at": state.finished_at,
            }
        )


class CodecPayload(_Shape):
    """A Temporal payload in protobuf's JSON form (bytes as base64)."""

    metadata: dict[str, str] | None = None
    data: str | None = None


class CodecPayloads(_Shape):
    payloads: list[CodecPayload] | None = None

"""What the registry holds, as values: apps, endpoints, app secrets, and which deliveries an
accepted event made (a delivery's state is Temporal's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class UidTakenError(Exception):
    """Another app already uses this uid."""


@dataclass(frozen=True)
class App:
    id: str
    uid: str | None
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Endpoint:
    id: str
    app_id: str
    url: str
    description: str
    event_types: list[str] | None
    secret: str = field(repr=False)
    headers: dict[str, str] = field(repr=False)  # often the receiver's credentials
    retry: dict[str, float] | None
    timeout_s: float | None
    created_at: datetime
    updated_at: datetime
    signature_scheme: str = "standard"
    signature_header: str | None = None
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    rate_limit_per_s: float | None = None
    max_in_flight: int | None = None
    """``None``: the default (``endpoint_max_concurrent_attempts``, shared out among the
    workers), no lane."""
    ordering: str = "none"
    paused: bool = False
    breaker_tripped_at: datetime | None = None
    """When a worker tripped the endpoint's circuit breaker (``None``: it is not tripped)."""

    @property
    def has_lane(self) -> bool:
        """Whether its deliveries take permits from its lane workflow (a rate limit, an
        in-flight limit across workers, an order, a pause, or a tripped circuit breaker);
        the others take today's path, which costs nothing more."""
        return (
            self.rate_limit_per_s is not None
            or self.max_in_flight is not None
            or self.ordering != "none"
            or self.paused
            or self.breaker_tripped_at is not None
        )

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets an attempt signs with: the current one, and the previous one while its
        rotation grace period lasts."""
        return _signing_secrets(
            self.secret, self.previous_secret, self.previous_secret_expires_at, now
        )

    def subscribes_to(self, event_type: str) -> bool:
        """Whether an event of this type goes to this endpoint (``None`` means every type)."""
        if self.event_types is None:
            return True
        for pattern in self.event_types:
            if pattern == event_type:
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False


@dataclass(frozen=True)
class AppSecrets:
    """An app's own signing secret (for per-job callback URLs) and its rotation state."""

    secret: str = field(repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        return _signing_secrets(
            self.secret, self.previous_secret, self.previous_secret_expires_at, now
        )


def _signing_secrets(
    current: str, previous: str | None, expires_at: datetime | None, now: datetime
) -> list[str]:
    if previous and expires_at and expires_at > now:
        return [current, previous]
    return [current]


@dataclass(frozen=True)
class DeliveryRef:
    """Which event went to which endpoint; the delivery's state is in Temporal."""

    id: str
    app_id: str
    event_id: str
    endpoint_id: str
    created_at: datetime


@dataclass(frozen=True)
class EventRecord:
    app_id: str
    id: str
    type: str
    created_at: datetime
    deliveries: list[DeliveryRef]
    body: str | None = field(default=None, repr=False)

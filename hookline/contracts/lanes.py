"""What crosses to and from an endpoint's lane workflow: its input, the signals deliveries
send it and the grant it sends them, and its health."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from hookline.contracts.lane_permits import LanePermits, LaneSettings, Outcome, State


def lane_workflow_id(app_id: str, endpoint_id: str) -> str:
    """The workflow id of an endpoint's lane, readable in the UI: ``lane:{app}:{endpoint}``."""
    return f"lane:{app_id}:{endpoint_id}"


class LaneInput(BaseModel):
    """A lane's input: its endpoint, and its permits when it continues as new."""

    app_id: str
    endpoint_id: str
    settings: LaneSettings = Field(default_factory=LaneSettings)
    permits: LanePermits | None = None


class LaneAsk(BaseModel):
    """A delivery's request for a permit."""

    delivery: str
    """The delivery's workflow id: where the grant is signalled."""
    key: str = ""
    """Its ordering key (``fifo`` endpoints)."""
    accepted_at: datetime | None = None
    """When its event was accepted: the lane grants oldest first."""
    ask: int = 0
    """The delivery's count of its asks, which the grant echoes."""
    lead_s: float = Field(default=0.0, ge=0)
    """A rate-limited lane plans the permit's start at least this long after its grant (the
    delivery's last permit expired: its worker was late by about as much)."""


class LaneEnqueue(BaseModel):
    """Deliveries to a ``fifo`` endpoint, just accepted, queued before any of them asks."""

    deliveries: list[str]
    """Their workflow ids."""
    key: str = ""
    """Their event's ordering key."""


class LaneAttempted(BaseModel):
    """How an attempt under a permit ended."""

    delivery: str
    outcome: Outcome
    hold_until: datetime | None = None
    """A ``Retry-After`` on a 429 or 503: the whole lane waits until then."""
    ended: bool = False
    """The delivery ended with this attempt, as ``lane_ended`` says (one signal for both)."""


class LaneEnded(BaseModel):
    """A delivery ended: it asks no more, and the next of its ordering key may go."""

    delivery: str


class LaneTripped(BaseModel):
    """A worker tripped the endpoint's circuit breaker: its attempts failed too often (the
    circuit opens), or one was answered 429 or 503 with ``Retry-After`` (the lane holds
    until ``hold_until``)."""

    hold_until: datetime | None = None


class LaneBreakerReset(BaseModel):
    """The endpoint whose tripped breaker a recovered lane clears."""

    app_id: str
    endpoint_id: str


class LaneGrant(BaseModel):
    """A permit for one attempt, which the lane takes back at ``until``."""

    until: datetime
    ask: int = 0
    """The ask it answers."""
    start_at: datetime | None = None
    """When the attempt may start (a rate-limited lane plans its permits ahead)."""


class LaneFull(BaseModel):
    """The lane was full and did not keep the ask it names (the delivery asks again)."""

    ask: int = 0


class LanePaused(BaseModel):
    """Whether the lane a delivery waits in is paused (its status says so)."""

    paused: bool


class LaneHealth(BaseModel):
    """An endpoint's lane as the health read shows it."""

    state: State
    in_flight: int
    waiting: int
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    rate_limit_per_s: float | None
    max_in_flight: int

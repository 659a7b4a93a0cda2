"""What the delivery workflow and its attempts take, return and are signalled with.

Kept apart from ``hookline.workflows.delivery`` so that the workflow sandbox can pass these
pydantic models through instead of rebuilding them for every run, and so that the API and the
delivery core read them without importing workflows or activities.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio.exceptions import ApplicationError, FailureError

from hookline.contracts.ids import delivery_id
from hookline.contracts.retry_settings import RetrySettings


def without_query(url: str) -> str:
    """A URL for summaries shown in the Temporal UI: its query may carry a token."""
    return url.split("?", 1)[0].split("#", 1)[0]


LANE_REQUIRED = "LaneRequired"
"""Error type: the endpoint has a lane (a rate limit, an in-flight limit, an order, or a
pause), and the attempt had no permit from it: nothing was sent."""

PERMIT_EXPIRED = "PermitExpired"
"""Error type: the attempt's worker could not start it within its tolerance
(``AttemptInput.start_tolerance_s``, by default ``PERMIT_TOLERANCE``) of its permit's planned
start: nothing was sent, and the delivery asks its lane again. Its detail is how late it was,
in seconds."""

ENDPOINT_PAUSED = "EndpointPaused"
"""Error type: the endpoint was paused when an attempt under its lane's permit was about to
send (``AttemptInput.holds_on_pause``): nothing was sent, and the delivery asks its lane again
(which holds it while paused)."""

ENDPOINT_BUSY = "EndpointBusy"
"""Error type: a local first attempt found every slot of its endpoint taken, and sent
nothing (the workflow makes the attempt as an activity instead)."""


class AttemptInput(BaseModel):
    """What an attempt needs; secrets and the endpoint's URL are read at attempt time."""

    delivery_id: str
    app_id: str
    event_id: str
    endpoint_id: str
    body: str
    timeout_s: float
    attempts_before: int = 0
    """Attempts made by earlier series of this delivery (before a manual retry)."""
    callback_url: str | None = None
    """A per-job callback URL, signed with the app's own secret, instead of an endpoint."""
    schedule_s: list[float] | None = None
    """An explicit retry schedule: delays before attempts 2, 3, ... of this series."""
    event_type: str = ""
    """For metrics only."""
    permitted: bool = False
    """Made under a permit of the endpoint's lane."""
    start_at: datetime | None = None
    """Under a permit planned ahead: the POST waits until then (on the server's clock)."""
    planned_from: datetime | None = None
    """A local attempt's reading of the server's clock when its workflow task started: it
    waits ``start_at`` minus this (its worker's own clock may differ from the server's)."""
    strict_start: bool = False
    """An attempt that starts more than ``PERMIT_TOLERANCE`` after ``start_at`` sends nothing
    (``PermitExpired``); off, it starts however late (``start_tolerance_s`` aside)."""
    start_tolerance_s: float | None = None
    """How late after ``start_at`` the attempt may start (``LateStarts.tolerance_s``); ``None``:
    as ``strict_start`` says."""
    in_lane: bool = False
    """Its delivery takes permits from the endpoint's lane whatever the worker's copy of the
    endpoint says (it was queued in a ``fifo`` lane when accepted)."""
    holds_on_pause: bool = False
    """Under a permit: if the endpoint is paused when the attempt is about to send, send
    nothing and fail with ``ENDPOINT_PAUSED`` (set by workflow code that then waits in the
    lane; code from before would take that failure for the receiver's)."""


class AttemptRecord(BaseModel):
    """What happened in one attempt: returned on success, the failure's details otherwise."""

    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int
    url: str | None = None
    """Where the attempt went (``None`` if it never got that far, or from a release before
    2026-12)."""
    endpoint_was_failing: bool = False
    """On success: the endpoint had been failing (so the workflow reports its recovery)."""


def attempt_record_in(error: BaseException | None) -> AttemptRecord | None:
    """The ``AttemptRecord`` an attempt's failure carries, looked for down the cause chain (a
    retry window closing mid-attempt wraps the last attempt's failure in a timeout)."""
    while error is not None:
        if isinstance(error, ApplicationError) and error.details:
            detail = error.details[0]
            if isinstance(detail, AttemptRecord):
                return detail
            try:
                return AttemptRecord.model_validate(detail)
            except ValueError:
                return None
        error = error.cause if isinstance(error, FailureError) else None
    return None


class DeliveryInput(BaseModel):
    """Everything a delivery needs except the secret, which is read at attempt time."""

    delivery_id: str
    app_id: str
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    """For the UI summary only: each attempt posts to the endpoint's URL at that time."""
    body: str
    retry: RetrySettings
    timeout_s: float
    attempts_before: int = 0
    """Attempts made by an earlier run of this delivery (when a failed delivery is retried)."""
    callback_url: str | None = None
    """A per-job callback URL to deliver to instead of an endpoint (then ``endpoint_id`` is
    ``callback``), signed with the app's own secret."""
    ordering_key: str = ""
    """Its event's ordering key: to a ``fifo`` endpoint, deliveries of one key go in order."""
    fifo: bool = False
    """Its endpoint was ``fifo`` when the event was accepted (and the delivery queued in its
    lane): every attempt takes a permit, whatever a worker's copy of the endpoint says."""
    laned: bool = False
    """Its endpoint had a lane when the event was accepted: the first attempt asks the lane
    for a permit at once, instead of learning of the lane from an attempt that sends nothing
    (an endpoint whose lane has gone since is granted at once)."""
    circuit_open: bool = False
    """Its endpoint's circuit breaker was tripped when the event was accepted: the delivery
    starts at a lower Temporal priority (``hookline.delivery.starts.BEHIND_OPEN_CIRCUIT``), so
    that when tasks queue up at Temporal those of healthy endpoints go first."""


class RetryRequest(BaseModel):
    """A manual retry, carrying what the caller saw of the attempts so far.

    An attempt series cancelled while backing off reports no attempt count to the workflow,
    so the API, which reads it from the pending activity, passes it along.
    """

    attempts_made: int = 0
    last_attempt: AttemptRecord | None = None
    only_if_failed: bool = False
    """A bulk recovery's retry: the workflow ignores it unless the delivery is failed (held
    open) when it arrives, so it never cuts a backoff or an attempt under way short."""


class DeliveryResult(BaseModel):
    """How a delivery ended: the workflow's result, or the details of its failure. Also its
    progress while it runs (in the memo)."""

    status: str
    attempts: int
    last_attempt: AttemptRecord | None
    next_attempt_at: datetime | None = None
    """While waiting between attempts outside an activity's retries: when the next is due."""


class Target(BaseModel):
    """Where one delivery of an event goes, and under which retry schedule."""

    endpoint_id: str
    url: str
    retry: RetrySettings
    timeout_s: float
    callback_url: str | None = None
    fifo: bool = False
    """The endpoint delivers each ordering key's events in acceptance order."""
    laned: bool = False
    """The endpoint has a lane (limits, an order, a pause, or its circuit breaker tripped)."""
    circuit_open: bool = False
    """The endpoint's circuit breaker is tripped."""


class EventDeliveries(BaseModel):
    """An event and the targets it is to be delivered to: what a fan-out starts."""

    app_id: str
    event_id: str
    event_type: str
    body: str
    targets: list[Target]
    ordering_key: str = ""

    def deliveries(self) -> list[DeliveryInput]:
        """The input of each target's delivery workflow."""
        return [
            DeliveryInput(
                delivery_id=delivery_id(self.app_id, self.event_id, target.endpoint_id),
                app_id=self.app_id,
                event_id=self.event_id,
                event_type=self.event_type,
                endpoint_id=target.endpoint_id,
                url=target.url,
                body=self.body,
                retry=target.retry,
                timeout_s=target.timeout_s,
                callback_url=target.callback_url,
                ordering_key=self.ordering_key,
                fifo=target.fifo,
                laned=target.laned,
                circuit_open=target.circuit_open,
            )
            for target in self.targets
        ]


class EventFanOut(BaseModel):
    """An event whose deliveries a fan-out workflow starts: its body once, and the ids of the
    endpoints it goes to (their URLs and retry settings are read when each batch starts, so
    the workflow's input stays small however many endpoints there are)."""

    app_id: str
    event_id: str
    event_type: str
    body: str
    endpoint_ids: list[str]
    created_at: datetime | None = None
    """When the event was accepted, which is its deliveries' creation time too (``None`` from
    a release before 2026-12)."""
    ordering_key: str = ""

"""What the delivery workflow takes, returns and is signalled with, and how the UI names it.

Kept apart from ``workflows.delivery`` so that the workflow sandbox can pass these pydantic
models through instead of rebuilding them for every run.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from hookline.activities.delivery import AttemptRecord
from hookline.contracts.ids import delivery_id
from hookline.contracts.retry_settings import RetrySettings

PROGRESS_MEMO = "progress"


def without_query(url: str) -> str:
    """A URL for summaries shown in the Temporal UI: its query may carry a token."""
    return url.split("?", 1)[0].split("#", 1)[0]


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


class RetryRequest(BaseModel):
    """A manual retry, carrying what the caller saw of the attempts so far.

    An attempt series cancelled while backing off reports no attempt count to the workflow,
    so the API, which reads it from the pending activity, passes it along.
    """

    attempts_made: int = 0
    last_attempt: AttemptRecord | None = None


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


class EventDeliveries(BaseModel):
    """An event and the targets it is to be delivered to: what a fan-out starts."""

    app_id: str
    event_id: str
    event_type: str
    body: str
    targets: list[Target]

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

"""A delivery's state as the API shows it, read from Temporal (describe, memo, visibility)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
)

from hookline.contracts import search_attributes as sa
from hookline.contracts.delivery import (
    AttemptRecord,
    DeliveryResult,
    attempt_record_in,
    without_query,
)
from hookline.contracts.names import CREATED_MEMO, PROGRESS_MEMO, URL_MEMO
from hookline.contracts.statuses import FAILED, PAUSED, PENDING, RETRYING, status_of_run
from hookline.storage.entities import DeliveryRef


@dataclass(frozen=True)
class DeliveryState:
    """A delivery as one run of its workflow has it, read once (memo decoded once)."""

    progress: DeliveryResult
    """Its status, attempts and last attempt."""
    next_attempt_at: datetime | None
    url: str | None
    """The URL it was started for."""
    created_at: datetime
    """When its first run started."""


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as the API shows it."""

    id: str | None
    event_id: str | None
    endpoint_id: str | None
    event_type: str | None
    url: str | None
    """Where its last attempt went; before any, where it was started for (without the
    query)."""
    status: str
    attempts: int
    last_attempt: AttemptRecord | None
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    workflow_id: str


async def delivery_state(client: Client, execution: WorkflowExecution) -> DeliveryState:
    """A delivery's status, attempts, last attempt and next attempt time.

    A running delivery is described (one RPC, unless ``execution`` is already a description)
    to read its pending attempt; a closed one answers from its memo alone.
    """
    memo = await execution.memo()
    progress = DeliveryResult.model_validate(
        memo.get(PROGRESS_MEMO) or {"status": PENDING, "attempts": 0, "last_attempt": None}
    )
    next_attempt_at: datetime | None = None
    running = execution.status == WorkflowExecutionStatus.RUNNING
    # A running delivery whose memo says failed is held open for a manual retry, and one that
    # says paused waits in its endpoint's paused lane: neither has a pending attempt.
    if running and progress.status not in (FAILED, PAUSED):
        if not isinstance(execution, WorkflowExecutionDescription):
            execution = await client.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).describe()
        progress, next_attempt_at = await _running_progress(client, execution, progress)
    elif not running:
        status = status_of_run(execution.status, progress.status)
        progress = progress.model_copy(update={"status": status})
    url, created = memo.get(URL_MEMO), memo.get(CREATED_MEMO)
    return DeliveryState(
        progress=progress,
        next_attempt_at=next_attempt_at,
        url=url if isinstance(url, str) else None,
        created_at=(
            datetime.fromisoformat(created) if isinstance(created, str) else execution.start_time
        ),
    )


async def delivery_view(client: Client, execution: WorkflowExecution) -> DeliveryView:
    """The delivery run by ``execution`` (see ``delivery_state``)."""
    return view_of(execution, await delivery_state(client, execution))


def view_of(execution: WorkflowExecution, state: DeliveryState) -> DeliveryView:
    """The delivery run by ``execution``, in ``state``."""
    attributes = execution.typed_search_attributes
    last = state.progress.last_attempt
    return DeliveryView(
        id=attributes.get(sa.DELIVERY_ID),
        event_id=attributes.get(sa.EVENT_ID),
        endpoint_id=attributes.get(sa.ENDPOINT_ID),
        event_type=attributes.get(sa.EVENT_TYPE),
        url=last.url if last is not None and last.url else _shown(state.url),
        status=state.progress.status,
        attempts=state.progress.attempts,
        last_attempt=state.progress.last_attempt,
        next_attempt_at=state.next_attempt_at,
        created_at=state.created_at,
        finished_at=execution.close_time,
        workflow_id=execution.id,
    )


def not_started_view(
    ref: DeliveryRef, event_type: str | None, url: str | None, workflow_id: str
) -> DeliveryView:
    """An accepted delivery whose workflow its event's fan-out has yet to start: ``pending``,
    no attempts."""
    return DeliveryView(
        id=ref.id,
        event_id=ref.event_id,
        endpoint_id=ref.endpoint_id,
        event_type=event_type,
        url=_shown(url),
        status=PENDING,
        attempts=0,
        last_attempt=None,
        next_attempt_at=None,
        created_at=ref.created_at,
        finished_at=None,
        workflow_id=workflow_id,
    )


async def _running_progress(
    client: Client, description: WorkflowExecutionDescription, progress: DeliveryResult
) -> tuple[DeliveryResult, datetime | None]:
    attempts, last = progress.attempts, progress.last_attempt
    # Between a run's first attempt and the activity that retries it, the memo says when.
    next_attempt_at = (
        None if description.raw_description.pending_activities else (progress.next_attempt_at)
    )
    for pending in description.raw_description.pending_activities:
        if pending.HasField("last_failure"):
            record = attempt_record_in(
                await client.data_converter.decode_failure(pending.last_failure)
            )
            if record is not None and record.attempt > attempts:
                attempts, last = record.attempt, record
        if (
            pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            and pending.HasField("next_attempt_schedule_time")
        ):
            next_attempt_at = pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
    status = RETRYING if attempts > 0 else PENDING
    return DeliveryResult(status=status, attempts=attempts, last_attempt=last), next_attempt_at


def _shown(url: str | None) -> str | None:
    """A delivery's URL as reads show it: without its query, which may carry a token (the
    endpoint's own read has it)."""
    return without_query(url) if url is not None else None

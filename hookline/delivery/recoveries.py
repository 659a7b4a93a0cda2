"""Bulk recoveries: starting one (a workflow that retries an endpoint's failed deliveries of a
window), and reading where one stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from hookline.config.settings import Settings
from hookline.contracts import search_attributes as sa
from hookline.contracts.ids import new_id
from hookline.contracts.names import PROGRESS_MEMO, RECOVERY_WORKFLOW
from hookline.contracts.recovery import RecoveryInput, RecoveryProgress, recovery_workflow_id
from hookline.delivery.errors import RecoveryFinished

RecoveryStatus = Literal["running", "completed", "cancelled", "failed"]

_STATUSES: dict[WorkflowExecutionStatus, RecoveryStatus] = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}
"""A recovery's status from its workflow's; terminated and timed out count as failed."""


@dataclass(frozen=True)
class RecoveryState:
    """Where a recovery stands."""

    id: str
    progress: RecoveryProgress
    status: RecoveryStatus
    finished_at: datetime | None


async def start_recovery(
    client: Client,
    settings: Settings,
    app_id: str,
    endpoint_id: str,
    since: datetime,
    until: datetime,
    now: datetime,
) -> RecoveryState:
    """Start retrying the endpoint's failed deliveries created in ``[since, until)``.

    Args:
        client: The Temporal client.
        settings: Hookline's settings (task queue, the recovery's pace).
        app_id: The endpoint's app.
        endpoint_id: The endpoint.
        since: The window's start (UTC).
        until: The window's end (UTC), after ``since``.
        now: The recovery's creation time.
    """
    recovery_id = new_id("rcv")
    progress = RecoveryProgress(endpoint_id=endpoint_id, since=since, until=until, created_at=now)
    await client.start_workflow(
        RECOVERY_WORKFLOW,  # by name: the core sits below the workflows
        RecoveryInput(
            recovery_id=recovery_id,
            app_id=app_id,
            rate_per_s=settings.recovery_rate_per_s,
            progress=progress,
        ),
        id=recovery_workflow_id(app_id, recovery_id),
        task_queue=settings.task_queue,
        # Found in the UI like the deliveries it retries (the delivery list filters on type).
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.APP_ID, app_id),
                SearchAttributePair(sa.ENDPOINT_ID, endpoint_id),
            ]
        ),
        memo={PROGRESS_MEMO: progress.model_dump(mode="json")},
        static_summary=(
            f"recover failed deliveries of {endpoint_id} "
            f"since {since.isoformat()} until {until.isoformat()}"
        ),
    )
    return RecoveryState(id=recovery_id, progress=progress, status="running", finished_at=None)


async def recovery_state(
    recovery_id: str, description: WorkflowExecutionDescription
) -> RecoveryState:
    """A recovery's state, from its latest run's description and progress memo."""
    progress = await description.memo_value(PROGRESS_MEMO, type_hint=RecoveryProgress)
    status = _STATUSES.get(description.status, "failed") if description.status else "running"
    finished_at = description.close_time if status != "running" else None
    return RecoveryState(id=recovery_id, progress=progress, status=status, finished_at=finished_at)


async def cancel_recovery(
    client: Client, recovery_id: str, description: WorkflowExecutionDescription
) -> RecoveryState:
    """Ask a running recovery to stop after the batch in flight.

    Returns:
        Its state as it was asked.

    Raises:
        RecoveryFinished: it had already finished.
    """
    state = await recovery_state(recovery_id, description)
    finished = RecoveryFinished(f"this recovery has already {state.status}")
    if state.status != "running":
        raise finished
    try:
        await client.get_workflow_handle(description.id).cancel()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise finished from None  # it finished between the describe and the cancel
        raise
    return state

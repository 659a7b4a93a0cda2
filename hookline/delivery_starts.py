"""Starting delivery workflows: ids, search attributes, memo and summary, in one place."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.delivery import AttemptRecord
from hookline.ids import delivery_workflow_id
from hookline.settings import Settings
from workflows import search_attributes as sa
from workflows.delivery import DeliveryWorkflow
from workflows.delivery_types import PROGRESS_MEMO, DeliveryInput, DeliveryResult, without_query

URL_MEMO = "url"
CREATED_MEMO = "created_at"
"""Set on a delivery's later runs: when its first run started."""


async def start_delivery(
    client: Client,
    settings: Settings,
    delivery: DeliveryInput,
    *,
    reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
    previous_attempt: AttemptRecord | None = None,
    created_at: str | None = None,
) -> None:
    """Start the delivery's workflow unless a run with its id exists (running, or closed and
    not reusable under ``reuse_policy``).

    Args:
        client: The Temporal client.
        settings: Hookline's settings (task queue).
        delivery: The workflow's input.
        reuse_policy: Whether a closed run with the same id may be followed by a new one.
        previous_attempt: For a restarted delivery, the last attempt of the run before.
        created_at: For a restarted delivery, when its first run started.
    """
    memo: dict[str, object] = {URL_MEMO: delivery.url}
    if created_at:
        memo[CREATED_MEMO] = created_at
    if delivery.attempts_before:
        memo[PROGRESS_MEMO] = DeliveryResult(
            status="retrying", attempts=delivery.attempts_before, last_attempt=previous_attempt
        ).model_dump(mode="json")
    try:
        await client.start_workflow(
            DeliveryWorkflow.run,
            delivery,
            id=delivery_workflow_id(delivery.app_id, delivery.event_id, delivery.endpoint_id),
            task_queue=settings.task_queue,
            id_reuse_policy=reuse_policy,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.APP_ID, delivery.app_id),
                    SearchAttributePair(sa.ENDPOINT_ID, delivery.endpoint_id),
                    SearchAttributePair(sa.EVENT_TYPE, delivery.event_type),
                    SearchAttributePair(sa.EVENT_ID, delivery.event_id),
                    SearchAttributePair(sa.DELIVERY_ID, delivery.delivery_id),
                    SearchAttributePair(sa.STATUS, "pending"),
                ]
            ),
            memo=memo,
            static_summary=f"{delivery.event_type} → {without_query(delivery.url)}",
        )
    except WorkflowAlreadyStartedError:
        pass

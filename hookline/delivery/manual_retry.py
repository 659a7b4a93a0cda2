"""Retrying a delivery by hand: signal a running one, restart a failed one."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from hookline.api.errors import ApiError
from hookline.config.settings import Settings
from hookline.contracts.delivery import DeliveryInput, RetryRequest
from hookline.delivery.starts import start_delivery
from hookline.delivery.status import delivery_view, progress_of
from hookline.workflows.delivery import DeliveryWorkflow


async def retry_delivery(
    client: Client, settings: Settings, workflow_id: str, logged_attempts: int = 0
) -> None:
    """Make a delivery attempt again now.

    A delivery still backing off is signalled to cut the wait short; one whose retries are
    exhausted starts again, as a new run with a fresh retry window.

    Args:
        client: The Temporal client.
        settings: Hookline's settings.
        workflow_id: The delivery's workflow.
        logged_attempts: Attempts the attempt log holds, for a run an operator ended (which
            left no count of its own), so that numbering goes on.

    Raises:
        ApiError: 409 ``already_succeeded`` if the delivery has succeeded.
    """
    handle: WorkflowHandle[DeliveryWorkflow, object] = client.get_workflow_handle_for(
        DeliveryWorkflow.run, workflow_id
    )
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.COMPLETED:
        raise ApiError(409, "already_succeeded", "this delivery has already succeeded")
    view = await delivery_view(client, description)
    attempts, last = progress_of(view)
    attempts = max(attempts, logged_attempts)
    if description.status == WorkflowExecutionStatus.RUNNING:
        await handle.signal(
            DeliveryWorkflow.retry_now, RetryRequest(attempts_made=attempts, last_attempt=last)
        )
        return
    previous = await _input_of(client, handle)
    restarted = previous.model_copy(update={"attempts_before": attempts})
    await start_delivery(
        client,
        settings,
        restarted,
        reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        previous_attempt=last,
        created_at=view["created_at"],
    )


async def _input_of(
    client: Client, handle: WorkflowHandle[DeliveryWorkflow, object]
) -> DeliveryInput:
    """The input a closed run was started with, read from its first history event."""
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [delivery] = await client.data_converter.decode(payloads, [DeliveryInput])
        return delivery
    raise ApiError(404, "not_found", "delivery history not found")

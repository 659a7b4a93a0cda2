"""Retrying a delivery by hand: signal a running one, restart a failed one."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from hookline.config.settings import Settings
from hookline.contracts.delivery import DeliveryInput, RetryRequest
from hookline.contracts.names import RETRY_NOW_SIGNAL
from hookline.contracts.statuses import PENDING, RETRYING
from hookline.delivery.errors import AlreadySucceeded, DeliveryNotFound
from hookline.delivery.starts import start_delivery
from hookline.delivery.status import DeliveryView, delivery_state, view_of


async def retry_delivery(
    client: Client,
    settings: Settings,
    workflow_id: str,
    logged_attempts: int = 0,
    *,
    only_if_failed: bool = False,
) -> DeliveryView:
    """Make a delivery attempt again now.

    A delivery still backing off is signalled to cut the wait short; one whose retries are
    exhausted starts again, as a new run with a fresh retry window.

    Args:
        client: The Temporal client.
        settings: Hookline's settings.
        workflow_id: The delivery's workflow.
        logged_attempts: Attempts the attempt log holds, for a run an operator ended (which
            left no count of its own), so that numbering goes on.
        only_if_failed: Retry a running delivery only if it is failed (held open) when the
            signal arrives: a bulk recovery's retry, which must not cut a backoff short.

    Returns:
        The delivery as it now stands: its next attempt is due now.

    Raises:
        AlreadySucceeded: the delivery has succeeded.
        DeliveryNotFound: a closed run's history is gone.
    """
    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.COMPLETED:
        raise AlreadySucceeded("this delivery has already succeeded")
    state = await delivery_state(client, description)
    attempts = max(state.progress.attempts, logged_attempts)
    last = state.progress.last_attempt
    retried = dataclasses.replace(
        view_of(description, state),
        status=RETRYING if attempts else PENDING,
        attempts=attempts,
        next_attempt_at=datetime.now(UTC),
        finished_at=None,
    )
    if description.status == WorkflowExecutionStatus.RUNNING:
        await handle.signal(
            RETRY_NOW_SIGNAL,
            RetryRequest(attempts_made=attempts, last_attempt=last, only_if_failed=only_if_failed),
        )
        return retried
    previous = await _input_of(client, handle)
    # What the endpoint was when the event was accepted may be long past: the new run finds
    # out from its first attempt.
    restarted = previous.model_copy(
        update={"attempts_before": attempts, "laned": False, "circuit_open": False}
    )
    await start_delivery(
        client,
        settings,
        restarted,
        reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        previous_attempt=last,
        created_at=state.created_at,
    )
    return retried


async def _input_of(client: Client, handle: WorkflowHandle[object, object]) -> DeliveryInput:
    """The input a closed run was started with, read from its first history event."""
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [delivery] = await client.data_converter.decode(payloads, [DeliveryInput])
        return DeliveryInput.model_validate(delivery)
    raise DeliveryNotFound("delivery history not found")

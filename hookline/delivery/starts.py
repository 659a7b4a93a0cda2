"""Starting delivery workflows: ids, search attributes, memo and summary, in one place."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio.client import Client
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from hookline.config.settings import Settings
from hookline.contracts import search_attributes as sa
from hookline.contracts.delivery import (
    AttemptRecord,
    DeliveryInput,
    DeliveryResult,
    EventFanOut,
    Target,
    without_query,
)
from hookline.contracts.ids import CALLBACK_ENDPOINT_ID, delivery_workflow_id, fan_out_workflow_id
from hookline.contracts.names import (
    CREATED_MEMO,
    DELIVERY_WORKFLOW,
    FAN_OUT_WORKFLOW,
    PROGRESS_MEMO,
    URL_MEMO,
)
from hookline.storage.entities import Endpoint

MAX_CONCURRENT_STARTS = 50
"""Starts in flight at once for one event: enough to fan out to 1,000 endpoints quickly
without flooding the Temporal frontend."""
BEHIND_OPEN_CIRCUIT = Priority(priority_key=4)
"""The Temporal priority of a delivery accepted while its endpoint's circuit was open (the
default is 3, and 1 goes first): its tasks, which mostly wait for the lane, queue behind those
of healthy endpoints' deliveries when the task queue has a backlog."""


async def start_delivery(
    client: Client,
    settings: Settings,
    delivery: DeliveryInput,
    *,
    reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
    previous_attempt: AttemptRecord | None = None,
    created_at: datetime | None = None,
) -> None:
    """Start the delivery's workflow unless a run with its id exists (running, or closed and
    not reusable under ``reuse_policy``).

    Args:
        client: The Temporal client.
        settings: Hookline's settings (task queue).
        delivery: The workflow's input.
        reuse_policy: Whether a closed run with the same id may be followed by a new one.
        previous_attempt: For a restarted delivery, the last attempt of the run before.
        created_at: The delivery's creation time: its event's acceptance, or for a restarted
            delivery its first run's (default: when this run starts).
    """
    memo: dict[str, object] = {URL_MEMO: delivery.url}
    if created_at:
        memo[CREATED_MEMO] = created_at.isoformat()
    if delivery.attempts_before:
        memo[PROGRESS_MEMO] = DeliveryResult(
            status="retrying", attempts=delivery.attempts_before, last_attempt=previous_attempt
        ).model_dump(mode="json")
    try:
        await client.start_workflow(
            DELIVERY_WORKFLOW,  # by name: the core sits below the workflows
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
            priority=BEHIND_OPEN_CIRCUIT if delivery.circuit_open else Priority.default,
        )
    except WorkflowAlreadyStartedError:
        pass


async def start_deliveries(
    client: Client,
    settings: Settings,
    deliveries: list[DeliveryInput],
    created_at: datetime | None = None,
) -> None:
    """Start each delivery's workflow (see ``start_delivery``, ``created_at`` being their
    event's acceptance), up to ``MAX_CONCURRENT_STARTS`` at once."""
    semaphore = asyncio.Semaphore(MAX_CONCURRENT_STARTS)

    async def start(delivery: DeliveryInput) -> None:
        async with semaphore:
            await start_delivery(client, settings, delivery, created_at=created_at)

    await asyncio.gather(*(start(delivery) for delivery in deliveries))


async def start_fan_out(client: Client, settings: Settings, event: EventFanOut) -> list[str]:
    """Start the workflow that starts the event's deliveries, unless it exists already.

    Returns:
        The endpoint ids the fan-out delivers to: ``event``'s, or, when an earlier request
        with the same event id started it (and crashed before recording the event), those
        it was started with, which the endpoints of now may no longer match.
    """
    workflow_id = fan_out_workflow_id(event.app_id, event.event_id)
    try:
        await client.start_workflow(
            FAN_OUT_WORKFLOW,
            event,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"{event.event_type} → {len(event.endpoint_ids)} endpoints",
        )
    except WorkflowAlreadyStartedError:
        async for first in client.get_workflow_handle(workflow_id).fetch_history_events():
            payloads = first.workflow_execution_started_event_attributes.input.payloads
            [started] = await client.data_converter.decode(payloads, [EventFanOut])
            return list(started.endpoint_ids)
    return event.endpoint_ids


def endpoint_target(endpoint: Endpoint, settings: Settings) -> Target:
    """Where a delivery to ``endpoint`` goes, under the endpoint's retry schedule."""
    return Target(
        endpoint_id=endpoint.id,
        url=endpoint.url,
        retry=settings.retry.merged(endpoint.retry),
        timeout_s=endpoint.timeout_s or settings.attempt_timeout_s,
        fifo=endpoint.ordering == "fifo",
        laned=endpoint.has_lane,
        circuit_open=endpoint.breaker_tripped_at is not None,
    )


def callback_target(url: str, settings: Settings) -> Target:
    """A delivery to an event's own callback URL, signed with the app's secret."""
    return Target(
        endpoint_id=CALLBACK_ENDPOINT_ID,
        url=url,
        retry=settings.retry,
        timeout_s=settings.attempt_timeout_s,
        callback_url=url,
    )

"""Accepting an event: one delivery workflow per subscribed endpoint, started idempotently."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.delivery import AttemptRecord
from hookline.ids import delivery_id, delivery_workflow_id
from hookline.registry import App, DeliveryRef, Endpoint, EventRecord, Registry
from hookline.settings import Settings
from workflows import search_attributes as sa
from workflows.delivery import PROGRESS_MEMO, DeliveryInput, DeliveryResult, DeliveryWorkflow
from workflows.retry_settings import RetrySettings

# Starts in flight at once for one event: enough to fan out to 1,000 endpoints quickly
# without flooding the Temporal frontend.
MAX_CONCURRENT_STARTS = 50
URL_MEMO = "url"
CREATED_MEMO = "created_at"
"""Set on a delivery's later runs: when its first run started."""


CALLBACK_ENDPOINT_ID = "callback"
"""The endpoint id of a delivery to an event's own ``callback_url``."""


@dataclass(frozen=True)
class AcceptedEvent:
    record: EventRecord
    duplicate: bool


@dataclass(frozen=True)
class Target:
    """Where one delivery of an event goes, and under which retry schedule."""

    endpoint_id: str
    url: str
    retry: RetrySettings
    timeout_s: float
    callback_url: str | None = None

    @classmethod
    def endpoint(cls, endpoint: Endpoint, settings: Settings) -> Target:
        return cls(
            endpoint.id,
            endpoint.url,
            settings.retry.merged(endpoint.retry),
            endpoint.timeout_s or settings.attempt_timeout_s,
        )

    @classmethod
    def callback(cls, url: str, settings: Settings) -> Target:
        return cls(CALLBACK_ENDPOINT_ID, url, settings.retry, settings.attempt_timeout_s, url)


async def subscribed_targets(
    registry: Registry, settings: Settings, app: App, event_type: str
) -> list[Target]:
    """Every enabled endpoint of ``app`` that subscribes to ``event_type``."""
    return [
        Target.endpoint(endpoint, settings)
        for endpoint in await registry.list_endpoints(app.id)
        if not endpoint.disabled and endpoint.subscribes_to(event_type)
    ]


async def accept_event(
    *,
    settings: Settings,
    registry: Registry,
    client: Client,
    app: App,
    event_id: str,
    event_type: str,
    body: str,
    targets: list[Target] | None = None,
) -> AcceptedEvent:
    """Start a delivery of the event to each target: by default, every enabled endpoint of
    ``app`` subscribed to ``event_type``.

    An event id seen before answers with the deliveries it made then and starts nothing new.
    Workflows are started before the event is recorded: a crash in between leaves no record,
    so the caller's retry with the same id starts (idempotently) whatever is missing.
    """
    existing = await registry.get_event(app.id, event_id)
    if existing is not None:
        return AcceptedEvent(existing, duplicate=True)
    if targets is None:
        targets = await subscribed_targets(registry, settings, app, event_type)
    refs: list[DeliveryRef] = []
    now = datetime.now(UTC)
    semaphore = asyncio.Semaphore(MAX_CONCURRENT_STARTS)

    async def start(target: Target) -> None:
        ref = DeliveryRef(
            id=delivery_id(app.id, event_id, target.endpoint_id),
            app_id=app.id,
            event_id=event_id,
            endpoint_id=target.endpoint_id,
            created_at=now,
        )
        delivery = DeliveryInput(
            delivery_id=ref.id,
            app_id=app.id,
            event_id=event_id,
            event_type=event_type,
            endpoint_id=target.endpoint_id,
            url=target.url,
            body=body,
            retry=target.retry,
            timeout_s=target.timeout_s,
            callback_url=target.callback_url,
        )
        async with semaphore:
            await start_delivery(client, settings, delivery)
        refs.append(ref)

    await asyncio.gather(*(start(target) for target in targets))
    refs.sort(key=lambda ref: ref.endpoint_id)
    record, created = await registry.record_event(app.id, event_id, event_type, refs, body)
    return AcceptedEvent(record, duplicate=not created)


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
            static_summary=f"{delivery.event_type} → {delivery.url}",
        )
    except WorkflowAlreadyStartedError:
        pass

"""Accepting an event: one delivery workflow per subscribed endpoint, started idempotently."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client

from hookline.delivery_starts import start_delivery
from hookline.ids import CALLBACK_ENDPOINT_ID, delivery_id
from hookline.registry import App, DeliveryRef, Endpoint, EventRecord, Registry
from hookline.settings import Settings
from workflows.delivery_types import DeliveryInput
from workflows.retry_settings import RetrySettings

# Starts in flight at once for one event: enough to fan out to 1,000 endpoints quickly
# without flooding the Temporal frontend.
MAX_CONCURRENT_STARTS = 50


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

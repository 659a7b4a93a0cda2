"""Accepting an event: one delivery workflow per subscribed endpoint, started idempotently,
by the API itself or, for an event with many endpoints, by a fan-out workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client

from hookline.delivery_starts import start_deliveries, start_fan_out
from hookline.ids import CALLBACK_ENDPOINT_ID, delivery_id
from hookline.registry import App, DeliveryRef, Endpoint, EventRecord, Registry
from hookline.settings import Settings
from workflows.delivery_types import EventDeliveries, Target


@dataclass(frozen=True)
class AcceptedEvent:
    record: EventRecord
    duplicate: bool


def endpoint_target(endpoint: Endpoint, settings: Settings) -> Target:
    """Where a delivery to ``endpoint`` goes, under the endpoint's retry schedule."""
    return Target(
        endpoint_id=endpoint.id,
        url=endpoint.url,
        retry=settings.retry.merged(endpoint.retry),
        timeout_s=endpoint.timeout_s or settings.attempt_timeout_s,
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


async def subscribed_targets(
    registry: Registry, settings: Settings, app: App, event_type: str
) -> list[Target]:
    """Every enabled endpoint of ``app`` that subscribes to ``event_type``."""
    return [
        endpoint_target(endpoint, settings)
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
    so the caller's retry with the same id starts (idempotently) whatever is missing. For
    more than ``fan_out_inline_max`` targets, one fan-out workflow starts the deliveries in
    the background (retrying until all are started) and the event is accepted at once.
    """
    existing = await registry.get_event(app.id, event_id)
    if existing is not None:
        return AcceptedEvent(existing, duplicate=True)
    if targets is None:
        targets = await subscribed_targets(registry, settings, app, event_type)
    event = EventDeliveries(
        app_id=app.id, event_id=event_id, event_type=event_type, body=body, targets=targets
    )
    if len(targets) > settings.fan_out_inline_max:
        await start_fan_out(client, settings, event)
    else:
        await start_deliveries(client, settings, event.deliveries())
    now = datetime.now(UTC)
    refs = [
        DeliveryRef(
            id=delivery_id(app.id, event_id, endpoint_id),
            app_id=app.id,
            event_id=event_id,
            endpoint_id=endpoint_id,
            created_at=now,
        )
        for endpoint_id in sorted(target.endpoint_id for target in targets)
    ]
    record, created = await registry.record_event(app.id, event_id, event_type, refs, body)
    return AcceptedEvent(record, duplicate=not created)

"""Accepting an event: one delivery workflow per subscribed endpoint, started idempotently,
by the API itself or, for an event with many endpoints, by a fan-out workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.contracts.delivery import EventDeliveries, EventFanOut, Target
from hookline.contracts.ids import delivery_id, delivery_workflow_id
from hookline.delivery.endpoint_lists import EndpointLists
from hookline.delivery.lanes import enqueue_in_order, lane_settings
from hookline.delivery.starts import endpoint_target, start_deliveries, start_fan_out
from hookline.storage.entities import App, DeliveryRef, EventRecord
from hookline.storage.registry import Registry


@dataclass(frozen=True)
class AcceptedEvent:
    record: EventRecord
    duplicate: bool


async def subscribed_targets(
    endpoint_lists: EndpointLists, settings: Settings, app: App, event_type: str
) -> list[Target]:
    """Every enabled endpoint of ``app`` that subscribes to ``event_type``."""
    return [
        endpoint_target(endpoint, settings)
        for endpoint in await endpoint_lists.of_app(app.id)
        if not endpoint.disabled and endpoint.subscribes_to(event_type)
    ]


async def accept_event(
    *,
    settings: Settings,
    registry: Registry,
    endpoint_lists: EndpointLists,
    client: Client,
    app: App,
    event_id: str,
    event_type: str,
    body: str,
    targets: list[Target] | None = None,
    ordering_key: str = "",
) -> AcceptedEvent:
    """Start a delivery of the event to each target: by default, every enabled endpoint of
    ``app`` subscribed to ``event_type``.

    An event id seen before answers with the deliveries it made then and starts nothing new.
    Workflows are started before the event is recorded: a crash in between leaves no record,
    so the caller's retry with the same id starts (idempotently) whatever is missing. For
    more than ``fan_out_inline_max`` targets, one fan-out workflow starts the deliveries in
    the background (retrying until all are started) and the event is accepted at once; those
    to ``fifo`` endpoints are queued in their lanes and started here all the same.
    """
    existing = await registry.events.get(app.id, event_id)
    if existing is not None:
        return AcceptedEvent(existing, duplicate=True)
    # One time for the event and its deliveries, taken before any of them starts.
    now = datetime.now(UTC)
    if targets is None:
        targets = await subscribed_targets(endpoint_lists, settings, app, event_type)
    if any(target.fifo for target in targets):
        await _queue_in_order(
            settings, endpoint_lists, client, app, event_id, targets, ordering_key
        )
    endpoint_ids = [target.endpoint_id for target in targets]
    inline = targets
    if len(targets) > settings.fan_out_inline_max and all(t.callback_url is None for t in targets):
        # Deliveries to fifo endpoints start here all the same: queued in their lanes, they
        # must exist before the 202 (one that never starts would hold its key).
        inline = [target for target in targets if target.fifo]
        fanned = [target.endpoint_id for target in targets if not target.fifo]
        if fanned:
            fan_out = EventFanOut(
                app_id=app.id,
                event_id=event_id,
                event_type=event_type,
                body=body,
                endpoint_ids=fanned,
                created_at=now,
                ordering_key=ordering_key,
            )
            fanned = await start_fan_out(client, settings, fan_out)
        endpoint_ids = fanned + [target.endpoint_id for target in inline]
    if inline:
        event = EventDeliveries(
            app_id=app.id,
            event_id=event_id,
            event_type=event_type,
            body=body,
            targets=inline,
            ordering_key=ordering_key,
        )
        await start_deliveries(client, settings, event.deliveries(), created_at=now)
    refs = [
        DeliveryRef(
            id=delivery_id(app.id, event_id, endpoint_id),
            app_id=app.id,
            event_id=event_id,
            endpoint_id=endpoint_id,
            created_at=now,
        )
        for endpoint_id in sorted(endpoint_ids)
    ]
    record, created = await registry.events.record(
        app.id, event_id, event_type, refs, body, created_at=now
    )
    return AcceptedEvent(record, duplicate=not created)


async def _queue_in_order(
    settings: Settings,
    endpoint_lists: EndpointLists,
    client: Client,
    app: App,
    event_id: str,
    targets: list[Target],
    ordering_key: str,
) -> None:
    """Queue the event's deliveries to ``fifo`` endpoints in their lanes before they start."""
    endpoints = {endpoint.id: endpoint for endpoint in await endpoint_lists.of_app(app.id)}
    queued = [
        (
            endpoints[target.endpoint_id],
            lane_settings(endpoints[target.endpoint_id], settings, target.timeout_s),
            delivery_workflow_id(app.id, event_id, target.endpoint_id),
        )
        for target in targets
        if target.fifo and target.endpoint_id in endpoints
    ]
    await enqueue_in_order(client, settings.task_queue, queued, ordering_key)

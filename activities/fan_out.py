"""The fan-out's I/O: start a batch of an event's delivery workflows."""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.contracts.delivery import EventDeliveries, EventFanOut
from hookline.delivery.starts import endpoint_target, start_deliveries
from hookline.storage.registry import Registry

log = logging.getLogger(__name__)


class FanOutActivities:
    """Starts delivery workflows for the fan-out workflow, with the worker's client."""

    def __init__(self, client: Client, settings: Settings, registry: Registry) -> None:
        self._client = client
        self._settings = settings
        self._registry = registry

    @activity.defn(name="start_deliveries")
    async def start_deliveries(self, event: EventFanOut) -> None:
        """Start the event's delivery to each of its endpoints in this batch, as they are
        configured now; those already started are left as they are (a retried batch starts
        only what is missing). An endpoint deleted or disabled since the event was accepted is
        skipped: its delivery then reads as not found."""
        wanted = set(event.endpoint_ids)
        endpoints = {
            endpoint.id: endpoint
            for endpoint in await self._registry.endpoints.list(event.app_id)
            if endpoint.id in wanted and not endpoint.disabled
        }
        targets = [
            endpoint_target(endpoints[endpoint_id], self._settings)
            for endpoint_id in event.endpoint_ids
            if endpoint_id in endpoints
        ]
        if len(targets) < len(event.endpoint_ids):
            log.warning(
                "event %s: %d endpoints deleted or disabled before their delivery started",
                event.event_id,
                len(event.endpoint_ids) - len(targets),
            )
        deliveries = EventDeliveries(
            app_id=event.app_id,
            event_id=event.event_id,
            event_type=event.event_type,
            body=event.body,
            targets=targets,
            ordering_key=event.ordering_key,
        )
        await start_deliveries(
            self._client, self._settings, deliveries.deliveries(), created_at=event.created_at
        )

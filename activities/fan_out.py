"""The fan-out's I/O: start a batch of an event's delivery workflows."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from hookline.delivery_starts import start_deliveries
from hookline.settings import Settings
from workflows.delivery_types import EventDeliveries


class FanOutActivities:
    """Starts delivery workflows for the fan-out workflow, with the worker's client."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    @activity.defn(name="start_deliveries")
    async def start_deliveries(self, event: EventDeliveries) -> None:
        """Start each target's delivery of ``event``; those already started are left as they
        are (a retried batch starts only what is missing)."""
        await start_deliveries(self._client, self._settings, event.deliveries())

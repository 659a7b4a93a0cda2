"""What a delivery's outcome means for its endpoint: failing, disabled, recovered, and the
operational events that tell an operator so."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from hookline.activities.endpoint_cache import EndpointCache
from hookline.config.settings import Settings
from hookline.contracts.delivery import DeliveryInput
from hookline.contracts.ids import (
    CALLBACK_ENDPOINT_ID,
    OPERATOR_APP_ID,
    OPERATOR_ENDPOINT_ID,
    delivery_id,
)
from hookline.delivery.starts import start_delivery
from hookline.storage.registry import Registry


class Outcome(BaseModel):
    """How a delivery ended, as the workflow reports it."""

    app_id: str
    endpoint_id: str
    delivery_id: str
    event_id: str
    event_type: str
    succeeded: bool
    gone: bool = False
    """The receiver answered 410 Gone."""
    error: str | None = None


class EndpointHealthActivities:
    """Keeps endpoints' health in the registry and emits operational events."""

    def __init__(
        self,
        registry: Registry,
        client: Client,
        settings: Settings,
        endpoints: EndpointCache | None = None,
    ) -> None:
        self._registry = registry
        self._client = client
        self._settings = settings
        self._endpoints = endpoints

    @activity.defn(name="record_outcome")
    async def record_outcome(self, outcome: Outcome) -> None:
        """Note a delivery's outcome on its endpoint; disable an endpoint that answered 410 or
        has failed everything for ``auto_disable_after_s``; tell the operator."""
        if outcome.app_id == OPERATOR_APP_ID:
            return  # the operator's own webhook: no health, no events about events
        if not outcome.succeeded:
            await self._tell_operator(
                "delivery.failed",
                {**_ids(outcome), "event_type": outcome.event_type, "error": outcome.error},
            )
        if outcome.endpoint_id == CALLBACK_ENDPOINT_ID:
            return
        before = await self._registry.endpoints.record_outcome(
            outcome.endpoint_id, outcome.succeeded
        )
        if self._endpoints is not None:
            # This worker's next attempts see the endpoint failing (or not) at once.
            self._endpoints.forget(outcome.app_id, outcome.endpoint_id)
        if before is None:
            return
        if outcome.succeeded:
            if before.failing_since is not None:
                await self._tell_operator("endpoint.recovered", _ids(outcome))
            return
        failing_since = before.failing_since or datetime.now(UTC)
        reason = None
        if outcome.gone:
            reason = "the receiver answered 410 Gone"
        elif datetime.now(UTC) - failing_since >= timedelta(
            seconds=self._settings.auto_disable_after_s
        ):
            reason = f"every delivery failed since {failing_since.isoformat()}"
        if reason and await self._registry.endpoints.disable(outcome.endpoint_id, reason):
            if self._endpoints is not None:
                self._endpoints.forget(outcome.app_id, outcome.endpoint_id)
            activity.logger.warning("endpoint %s disabled: %s", outcome.endpoint_id, reason)
            await self._tell_operator("endpoint.disabled", {**_ids(outcome), "reason": reason})

    async def _tell_operator(self, event_type: str, data: dict[str, object]) -> None:
        url = self._settings.operator_webhook_url
        if not url:
            return
        # The same id however often this activity is retried: receivers can dedupe on it.
        event_id = f"{event_type}:{data['delivery_id']}:{activity.info().workflow_run_id}"
        body = {"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data}
        await start_delivery(
            self._client,
            self._settings,
            DeliveryInput(
                delivery_id=delivery_id(OPERATOR_APP_ID, event_id, OPERATOR_ENDPOINT_ID),
                app_id=OPERATOR_APP_ID,
                event_id=event_id,
                event_type=event_type,
                endpoint_id=OPERATOR_ENDPOINT_ID,
                url=url,
                body=json.dumps(body, separators=(",", ":")),
                retry=self._settings.retry,
                timeout_s=self._settings.attempt_timeout_s,
                callback_url=url,
            ),
        )


def _ids(outcome: Outcome) -> dict[str, object]:
    return {
        "app_id": outcome.app_id,
        "endpoint_id": outcome.endpoint_id,
        "delivery_id": outcome.delivery_id,
        "event_id": outcome.event_id,
    }

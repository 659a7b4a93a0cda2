"""Asking an endpoint's lane for a permit: the one step of a laned delivery that needs the
Temporal client (a workflow cannot start another workflow with a signal)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from hookline.activities.endpoint_cache import EndpointCache
from hookline.config.settings import Settings
from hookline.contracts.lane_permits import LaneSettings
from hookline.contracts.lanes import LaneAsk, LaneInput, lane_workflow_id
from hookline.contracts.names import LANE_ASK_SIGNAL, LANE_WORKFLOW
from hookline.delivery.lanes import UNLIMITED, lane_settings


class LaneRequest(BaseModel):
    """A delivery's ask for a permit of its endpoint's lane."""

    app_id: str
    endpoint_id: str
    delivery: str
    """The delivery's workflow id."""
    key: str = ""
    timeout_s: float
    """The delivery's attempt timeout (a permit's lease outlives it)."""
    ask: int = 0
    """The delivery's count of its asks, which the grant echoes."""
    accepted_at: datetime | None = None


class LaneActivities:
    """Lane activities, sharing the worker's Temporal client and settings."""

    def __init__(self, client: Client, settings: Settings, endpoints: EndpointCache) -> None:
        self._client = client
        self._settings = settings
        self._endpoints = endpoints

    @activity.defn(name="ask_lane")
    async def ask_lane(self, request: LaneRequest) -> None:
        """Signal the ask to the endpoint's lane, starting it, with the endpoint's settings as
        they are now, if it is not running (a running lane has them: the API tells it of every
        change)."""
        endpoint = await self._endpoints.get(request.app_id, request.endpoint_id)
        if endpoint is None:  # deleted: let the attempt go, and meet the deletion
            lane = LaneSettings(max_in_flight=UNLIMITED)
        else:
            default = self._settings.endpoint_max_concurrent_attempts
            lane = lane_settings(endpoint, default, request.timeout_s)
        await self._client.start_workflow(
            LANE_WORKFLOW,
            LaneInput(app_id=request.app_id, endpoint_id=request.endpoint_id, settings=lane),
            id=lane_workflow_id(request.app_id, request.endpoint_id),
            task_queue=self._settings.task_queue,
            start_signal=LANE_ASK_SIGNAL,
            start_signal_args=[
                LaneAsk(
                    delivery=request.delivery,
                    key=request.key,
                    accepted_at=request.accepted_at,
                    ask=request.ask,
                )
            ],
            static_summary=f"lane of {request.endpoint_id}",
        )

"""Endpoint lanes as the core sees them: an endpoint's lane settings, telling its lane of a
change, and reading its health (the lane itself is ``LaneWorkflow``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from hookline.config.settings import Settings
from hookline.contracts.lane_permits import LaneSettings
from hookline.contracts.lanes import (
    LaneEnqueue,
    LaneHealth,
    LaneInput,
    LaneTripped,
    lane_workflow_id,
)
from hookline.contracts.names import (
    LANE_CONFIGURE_SIGNAL,
    LANE_ENQUEUE_SIGNAL,
    LANE_HEALTH_QUERY,
    LANE_TRIPPED_SIGNAL,
    LANE_WORKFLOW,
)
from hookline.delivery.errors import LaneUnavailable
from hookline.storage.entities import Endpoint

LEASE_MARGIN_S = 30.0
"""A permit outlives its attempt's timeout by this much before the lane takes it back (the
attempt's worker died): the workflow's start-to-close margin, and room for the signal."""
UNLIMITED = 10_000
"""The in-flight limit of a lane that is winding down (its endpoint was deleted or disabled):
every waiting delivery goes, and meets the endpoint's end."""


def lane_settings(endpoint: Endpoint, settings: Settings, timeout_s: float) -> LaneSettings:
    """The settings of ``endpoint``'s lane.

    Args:
        endpoint: The endpoint, as stored.
        settings: Hookline's settings (the default in-flight limit, the breaker's threshold).
        timeout_s: The attempt timeout of its deliveries (a permit's lease is longer).
    """
    if endpoint.disabled:  # its waiting deliveries go, and meet the endpoint's end
        return winding_down_settings(timeout_s)
    return LaneSettings(
        rate_limit_per_s=endpoint.rate_limit_per_s,
        max_in_flight=endpoint.max_in_flight or settings.endpoint_max_concurrent_attempts,
        ordering="fifo" if endpoint.ordering == "fifo" else "none",
        paused=endpoint.paused,
        breaker_failures=settings.endpoint_breaker_failures,
        tripped=endpoint.breaker_tripped_at is not None,
        max_waiting=settings.endpoint_lane_max_waiting,
        lease_s=timeout_s + LEASE_MARGIN_S,
    )


async def signal_lane(
    client: Client,
    task_queue: str,
    lane: LaneInput,
    signal: str,
    message: BaseModel,
) -> None:
    """Signal ``message`` to an endpoint's lane, starting it with ``lane`` (its endpoint and
    settings as they are now) if it is not running (signal-with-start)."""
    await client.start_workflow(
        LANE_WORKFLOW,
        lane,
        id=lane_workflow_id(lane.app_id, lane.endpoint_id),
        task_queue=task_queue,
        start_signal=signal,
        start_signal_args=[message],
        static_summary=f"lane of {lane.endpoint_id}",
    )


def _lane_of(endpoint: Endpoint, settings: LaneSettings) -> LaneInput:
    return LaneInput(app_id=endpoint.app_id, endpoint_id=endpoint.id, settings=settings)


async def configure_lane(
    client: Client, task_queue: str, endpoint: Endpoint, settings: LaneSettings
) -> None:
    """Give ``endpoint``'s lane its settings as they are now, starting it if it is not running
    (so that a delivery's ask, made from a worker's cached copy of the endpoint, never starts
    it with older ones; a lane with nothing to do ends by itself)."""
    lane = _lane_of(endpoint, settings)
    await signal_lane(client, task_queue, lane, LANE_CONFIGURE_SIGNAL, settings)


async def enqueue_in_order(
    client: Client, task_queue: str, queued: list[tuple[Endpoint, LaneSettings, str]], key: str
) -> None:
    """Queue an event's just-accepted deliveries in their ``fifo`` endpoints' lanes before
    they start (so that one accepted later can never ask first), starting lanes that are not
    running. The lane's queue order is the order it hears of them: the acceptance order,
    since the event is answered 202 only after this.

    Args:
        client: The Temporal client.
        task_queue: Where lanes run.
        queued: Each ``fifo`` endpoint, its lane settings (for a lane that must start) and
            the workflow id of the event's delivery to it.
        key: The event's ordering key.
    """

    await asyncio.gather(
        *(
            signal_lane(
                client,
                task_queue,
                _lane_of(endpoint, settings),
                LANE_ENQUEUE_SIGNAL,
                LaneEnqueue(deliveries=[workflow_id], key=key),
            )
            for endpoint, settings, workflow_id in queued
        )
    )


async def trip_lane(
    client: Client,
    task_queue: str,
    endpoint: Endpoint,
    settings: LaneSettings,
    hold_until: datetime | None = None,
) -> None:
    """Tell ``endpoint``'s lane that a worker tripped its breaker (starting the lane with
    ``settings`` if it is not running): it opens the circuit, or with ``hold_until`` (a
    ``Retry-After``) holds every delivery until then."""
    trip = LaneTripped(hold_until=hold_until)
    await signal_lane(client, task_queue, _lane_of(endpoint, settings), LANE_TRIPPED_SIGNAL, trip)


async def wind_down_lane(
    client: Client, task_queue: str, endpoint: Endpoint, timeout_s: float
) -> None:
    """Let every delivery waiting in a deleted or disabled endpoint's lane go, so that each
    ends as any delivery to such an endpoint does (at its next attempt)."""
    await configure_lane(client, task_queue, endpoint, winding_down_settings(timeout_s))


def winding_down_settings(timeout_s: float) -> LaneSettings:
    """Settings that let every waiting delivery go at once (breaker and holds aside)."""
    return LaneSettings(
        max_in_flight=UNLIMITED,
        winding_down=True,
        breaker_failures=0,
        lease_s=timeout_s + LEASE_MARGIN_S,
    )


HEALTH_QUERY_TIMEOUT = timedelta(seconds=5)
"""How long a health read waits for the lane's answer (no worker may be there to give it)."""


async def _asked(handle: WorkflowHandle[Any, Any]) -> LaneHealth:
    """The running lane's answer to its health query.

    Raises:
        LaneUnavailable: no answer in ``HEALTH_QUERY_TIMEOUT`` (no worker, or a lane whose
            workflow task fails), or the query failed.
        RPCError: ``NOT_FOUND``: the lane ended meanwhile.
    """
    try:
        health: LaneHealth = await handle.query(
            LANE_HEALTH_QUERY, result_type=LaneHealth, rpc_timeout=HEALTH_QUERY_TIMEOUT
        )
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError, RPCError) as err:
        if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
            raise
        raise LaneUnavailable("the endpoint's lane did not answer; retry") from None
    return health


async def lane_health(client: Client, endpoint: Endpoint) -> LaneHealth:
    """What ``endpoint``'s lane says of itself; an endpoint with no running lane is idle.

    Raises:
        LaneUnavailable: the lane runs but could not answer.
    """
    handle = client.get_workflow_handle(lane_workflow_id(endpoint.app_id, endpoint.id))
    try:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            return await _asked(handle)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    tripped = endpoint.breaker_tripped_at is not None  # its lane will start open
    return LaneHealth(
        state="paused" if endpoint.paused else ("open" if tripped else "healthy"),
        in_flight=0,
        waiting=0,
        consecutive_failures=0,
        last_success_at=None,
        last_failure_at=None,
        rate_limit_per_s=endpoint.rate_limit_per_s,
        max_in_flight=endpoint.max_in_flight or 0,
    )

"""The lane workflow on a real Temporal dev server: it grants permits by its rules to real
workflows that ask for them (``tests/lane_probe.py`` stands in for deliveries), pauses and
resumes, and reports its health."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from hookline.contracts.lane_permits import LaneSettings
from hookline.contracts.lanes import LaneAsk, LaneHealth, LaneInput, lane_workflow_id
from hookline.contracts.names import (
    LANE_ASK_SIGNAL,
    LANE_CONFIGURE_SIGNAL,
    LANE_HEALTH_QUERY,
    LANE_WORKFLOW,
)
from hookline.workflows.lane import LaneWorkflow
from tests.harness import wait_for
from tests.lane_probe import LaneProbe, ProbeInput


@pytest.fixture
async def task_queue(temporal_client: Client) -> AsyncIterator[str]:
    queue = f"lanes-{uuid.uuid4()}"
    async with Worker(temporal_client, task_queue=queue, workflows=[LaneWorkflow, LaneProbe]):
        yield queue


async def _probes(
    client: Client, task_queue: str, lane_id: str, count: int, attempts: int = 1
) -> list[WorkflowHandle[LaneProbe, list[datetime]]]:
    return [
        await client.start_workflow(
            LaneProbe.run,
            ProbeInput(lane_id=lane_id, attempts=attempts),
            id=f"{lane_id}:probe-{n}",
            task_queue=task_queue,
        )
        for n in range(count)
    ]


async def _ask(
    client: Client, task_queue: str, lane_id: str, delivery: str, settings: LaneSettings
) -> None:
    """Ask for a permit for ``delivery``, starting the lane if it is not running."""
    await client.start_workflow(
        LANE_WORKFLOW,
        LaneInput(app_id="app", endpoint_id=lane_id, settings=settings),
        id=lane_id,
        task_queue=task_queue,
        start_signal=LANE_ASK_SIGNAL,
        start_signal_args=[LaneAsk(delivery=delivery)],
    )


async def test_a_rate_limited_lane_grants_at_its_rate(
    temporal_client: Client, task_queue: str
) -> None:
    lane_id = lane_workflow_id("app", f"ep-{uuid.uuid4()}")
    settings = LaneSettings(rate_limit_per_s=5, max_in_flight=100)
    probes = await _probes(temporal_client, task_queue, lane_id, count=20)
    for probe in probes:
        await _ask(temporal_client, task_queue, lane_id, probe.id, settings)

    grants = sorted([t for probe in probes for t in await probe.result()])

    assert len(grants) == 20
    second = timedelta(seconds=1)
    busiest = max(sum(1 for g in grants if t <= g < t + second) for t in grants)
    assert busiest <= 6
    spread = (grants[-1] - grants[0]).total_seconds()
    assert 3.5 <= spread  # 20 permits at 5/s, one every 200 ms (3.8 s)


async def test_a_paused_lane_waits_and_resume_releases_in_order(
    temporal_client: Client, task_queue: str
) -> None:
    lane_id = lane_workflow_id("app", f"ep-{uuid.uuid4()}")
    paused = LaneSettings(max_in_flight=1, paused=True)
    probes = await _probes(temporal_client, task_queue, lane_id, count=3)
    for probe in probes:
        await _ask(temporal_client, task_queue, lane_id, probe.id, paused)
    lane = temporal_client.get_workflow_handle(lane_id)

    async def waiting_paused() -> LaneHealth | None:
        health = await lane.query(LANE_HEALTH_QUERY, result_type=LaneHealth)
        return health if health.waiting == 3 else None

    health = await wait_for(waiting_paused, what="three deliveries waiting on the paused lane")
    assert (health.state, health.in_flight) == ("paused", 0)
    assert [await probe.query(LaneProbe.grants) for probe in probes] == [[], [], []]

    await lane.signal(LANE_CONFIGURE_SIGNAL, LaneSettings(max_in_flight=1))
    granted = [(await probe.result())[0] for probe in probes]

    assert granted == sorted(granted)  # oldest ask first, one at a time
    assert (await lane.query(LANE_HEALTH_QUERY, result_type=LaneHealth)).state == "healthy"

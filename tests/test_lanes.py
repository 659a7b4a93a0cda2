"""Endpoint lanes with the real worker and receivers: an endpoint with a lane (set in the
registry: the API does not take lane settings yet) gets its deliveries through its lane
workflow, across workers."""

from __future__ import annotations

from contextlib import AsyncExitStack

from hookline.config.settings import Settings
from hookline.storage.registry import opened_registry
from hookline.temporal.client import connect_temporal
from hookline.worker.running import running_worker
from tests.harness import Hookline, Receiver


async def test_a_rate_limit_holds_across_two_workers(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    async with opened_registry(settings) as registry:
        await registry.endpoints.update(app_id, endpoint["id"], rate_limit_per_s=5.0)
    async with AsyncExitStack() as stack:
        # A second worker, on a connection of its own (one client runs one worker per queue).
        second = await connect_temporal(settings)
        await stack.enter_async_context(running_worker(settings, second))
        events = [
            await hookline.send_event(app_id, "batch.completed", {"n": n}) for n in range(20)
        ]
        for event in events:
            await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    times = sorted(request.at for request in receiver.requests)
    assert len(times) == 20
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 6
    assert times[-1] - times[0] >= 2.5  # 20 at 5/s: bursts of 5, a second apart

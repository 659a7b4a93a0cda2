"""An attempt that waited for one of its endpoint's slots in its worker looks at the endpoint
again before it sends: paused meanwhile, it sends nothing (``POST .../pause`` answers once
every copy read before the pause is out of date, so a copy read before the wait must not do).
A delivery whose permitted attempts keep finding the endpoint paused (its lane missed the
pause, or its worker cannot read the resume) asks its lane again less and less often."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from temporalio.exceptions import ApplicationError

from hookline.activities.delivery import DeliveryActivities
from hookline.activities.endpoint_cache import EndpointCache
from hookline.config.settings import Settings
from hookline.contracts.delivery import ENDPOINT_PAUSED, LANE_REQUIRED
from hookline.storage.entities import Endpoint
from hookline.storage.registry import opened_registry
from hookline.workflows.delivery import PAUSED_REASK_MAX, _paused_reask
from tests.harness import Hookline, Receiver, wait_for
from tests.test_endpoint_cache import Clock
from tests.test_permit_start import _started_at, attempt_for

COPIES_KEPT_S = 5.0


class CountingCache(EndpointCache):
    """The worker's cache, counting the lookups made through it."""

    lookups = 0

    async def get(self, app_id: str, endpoint_id: str) -> Endpoint | None:
        self.lookups += 1
        return await super().get(app_id, endpoint_id)


@pytest.mark.parametrize("permitted", [True, False], ids=["under-a-permit", "usual-path"])
async def test_an_attempt_that_waited_for_a_slot_while_its_endpoint_was_paused_sends_nothing(
    hookline: Hookline, receiver: Receiver, settings: Settings, permitted: bool
) -> None:
    app_id = await hookline.create_app()
    # Under a permit, the endpoint has a lane (an in-flight limit); on the usual path, none.
    fields = {"max_in_flight": 2} if permitted else {}
    endpoint = await hookline.create_endpoint(app_id, receiver.url, **fields)
    permit = {"permitted": True, "holds_on_pause": True} if permitted else {}
    receiver.delays = [3.0]  # the first request holds the worker's one slot for 3 s
    clock = Clock()
    async with opened_registry(settings) as registry, aiohttp.ClientSession() as session:
        cache = CountingCache(registry, ttl_s=COPIES_KEPT_S, clock=clock)
        activities = DeliveryActivities(
            session,
            registry,
            settings.max_response_bytes,
            per_endpoint_concurrency=1,
            endpoints=cache,
        )
        now = datetime.now(UTC)
        holder = asyncio.create_task(
            _started_at(now).run(
                activities.post_signed, attempt_for(app_id, endpoint["id"], 1, **permit)
            )
        )
        await wait_for(lambda: len(receiver.requests) == 1, what="the first request", timeout=10)
        behind = asyncio.create_task(
            _started_at(now).run(
                activities.post_signed, attempt_for(app_id, endpoint["id"], 2, **permit)
            )
        )
        # Its first look, at the copy the first attempt read: then it waits for the slot.
        await wait_for(lambda: cache.lookups == 2, what="the second attempt's look", timeout=10)
        await registry.endpoints.update(app_id, endpoint["id"], paused=True)
        clock.now += COPIES_KEPT_S  # the copy from before the pause is out of date
        with pytest.raises(ApplicationError) as held:
            await behind
        first = await holder

    assert held.value.type == (ENDPOINT_PAUSED if permitted else LANE_REQUIRED)
    assert cache.lookups == 3  # it looked again once it had the slot
    assert first.status_code == 200
    assert [r.body for r in receiver.requests] == [b'{"n":1}']


def test_a_delivery_that_keeps_finding_its_endpoint_paused_asks_less_and_less_often() -> None:
    waits = [_paused_reask(n).total_seconds() for n in (1, 2, 3, 6, 7, 1000)]
    assert waits == [1, 2, 4, 32, 60, 60]
    assert PAUSED_REASK_MAX == timedelta(minutes=1)

"""An endpoint without a lane gets at most ``HOOKLINE_ENDPOINT_MAX_CONCURRENT_ATTEMPTS`` POSTs at
once from all the workers together: each worker counts the workers on its task queue and
takes its share. The slots' rules alone, then two real workers and a real receiver."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from hookline.activities.endpoint_slots import EndpointSlots
from hookline.config.settings import Settings
from hookline.temporal.client import connect_temporal
from hookline.worker.running import running_worker
from hookline.worker.worker_count import count_workers
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for


async def _hold(slots: EndpointSlots, held: list[str], name: str, release: asyncio.Event, *,
                permitted: bool = False) -> None:  # fmt: skip
    async with slots.slot("ep", permitted=permitted):
        held.append(name)
        await release.wait()


async def test_each_worker_takes_its_share_and_waiting_attempts_go_when_it_grows() -> None:
    slots = EndpointSlots(per_endpoint=4, workers=2)
    release, held = asyncio.Event(), list[str]()
    tasks = [asyncio.ensure_future(_hold(slots, held, f"a{n}", release)) for n in range(4)]
    await wait_for(lambda: len(held) == 2, what="this worker's share of 4 among 2")
    await asyncio.sleep(0)  # the others are queued, not running
    assert held == ["a0", "a1"] and slots.all_taken("ep")

    slots.workers_counted(1)  # the other worker went away: the whole limit is this one's

    await wait_for(lambda: len(held) == 4, what="the waiting attempts to go")
    assert held == ["a0", "a1", "a2", "a3"]
    release.set()
    await asyncio.gather(*tasks)
    assert not slots.all_taken("ep")


async def test_a_permitted_attempt_is_held_to_the_whole_limit_not_the_share() -> None:
    # A lane already holds its endpoint to max_in_flight across the workers.
    slots = EndpointSlots(per_endpoint=4, workers=4)
    assert slots.share == 1
    release, held = asyncio.Event(), list[str]()
    tasks = [
        asyncio.ensure_future(_hold(slots, held, f"p{n}", release, permitted=True))
        for n in range(5)
    ]
    await wait_for(lambda: len(held) == 4, what="four permitted attempts")
    assert slots.all_taken("ep", permitted=True)
    release.set()
    await asyncio.gather(*tasks)
    assert held == ["p0", "p1", "p2", "p3", "p4"]


async def test_a_share_is_at_least_one_and_a_cancelled_wait_frees_nothing_twice() -> None:
    slots = EndpointSlots(per_endpoint=3, workers=5)
    assert slots.share == 1
    release, held = asyncio.Event(), list[str]()
    first = asyncio.ensure_future(_hold(slots, held, "first", release))
    await wait_for(lambda: held == ["first"], what="the one slot")
    cancelled = asyncio.ensure_future(_hold(slots, held, "cancelled", release))
    later = asyncio.ensure_future(_hold(slots, held, "later", release))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(first, later, cancelled, return_exceptions=True)
    assert held == ["first", "later"]
    assert not slots.all_taken("ep")


async def test_two_workers_open_no_more_than_the_limit_to_an_endpoint_together(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # Few pollers each, so that both workers take tasks (the first worker's many idle polls
    # would otherwise take every one of a dozen).
    limited = settings.model_copy(
        update={"endpoint_max_concurrent_attempts": 4, "worker_pollers": 2}
    )
    every = timedelta(milliseconds=200)
    shares = [EndpointSlots(4), EndpointSlots(4)]  # each worker's, to watch its share
    async with (
        # The workers on connections of their own, as in production, not the API's (whose
        # workflows a worker on its connection would take first, eagerly).
        Hookline.running(limited, temporal_client, API_KEY, worker=False) as hookline,
        AsyncExitStack() as workers,
    ):
        for slots in shares:
            client = await connect_temporal(limited)  # one worker per client and queue
            await workers.enter_async_context(
                running_worker(limited, client, slots=slots, count_workers_every=every)
            )
        await wait_for(
            lambda: [slots.share for slots in shares] == [2, 2], what="each worker's share"
        )

        app_id = await hookline.create_app()
        await hookline.create_endpoint(app_id, receiver.url)
        receiver.delays = [1.0] * 12  # each POST holds its slot a second
        # All at once, so that both workers get some (one idle worker alone could take a
        # trickle of them all).
        events = await asyncio.gather(
            *(hookline.send_event(app_id, "job.done", {"n": n}) for n in range(12))
        )
        for event in events:
            await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    arrivals = sorted(request.at for request in receiver.requests)
    assert len(arrivals) == 12
    # Each request is answered a second after it arrived: at most 4 arrive in any second.
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert 3 <= busiest <= 4  # more than one worker's share (2), never more than the limit


async def test_workers_are_counted_across_the_task_queues_partitions(
    temporal_client: Client,
) -> None:
    # Three workers with one poll each: each poll lands on one of the queue's partitions, and
    # a look at one partition alone can miss some of them for a while (in a trial here, one
    # of three for 12 s; polls forwarded between partitions show it there later).
    queue = f"count-{uuid.uuid4()}"
    async with AsyncExitStack() as stack:
        for n in range(3):
            client = await Client.connect(
                temporal_client.service_client.config.target_host, namespace="default"
            )
            worker = Worker(
                client,
                task_queue=queue,
                activities=[_noop],
                identity=f"worker-{n}",
                activity_task_poller_behavior=PollerBehaviorSimpleMaximum(1),
                workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(2),
            )
            await stack.enter_async_context(worker)

        async def three() -> bool:
            return await count_workers(temporal_client, queue, "worker-0") == 3

        await wait_for(three, what="three workers counted", timeout=10)
        assert await count_workers(temporal_client, queue, "not-polling-yet") == 4


@activity.defn
async def _noop() -> None:
    """What the counted workers could run (a worker polls only for what it has)."""

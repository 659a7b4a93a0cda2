"""Endpoint lanes with the real worker and receivers: an endpoint with a lane gets its
deliveries through its lane workflow, across workers; pause and resume; deletion."""

from __future__ import annotations

import asyncio
import json
import random
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import ActivityEnvironment

from hookline.activities.endpoint_cache import EndpointCache
from hookline.activities.lanes import HeadsToCheck, LaneActivities
from hookline.config.settings import Settings
from hookline.contracts import search_attributes as sa
from hookline.contracts.delivery import ENDPOINT_PAUSED, PERMIT_EXPIRED
from hookline.contracts.ids import delivery_workflow_id
from hookline.contracts.lane_permits import LEAD
from hookline.contracts.lanes import lane_workflow_id
from hookline.contracts.late_permits import PERMIT_TOLERANCE, LateStarts
from hookline.contracts.names import LANE_ASK_SIGNAL, LANE_GRANTED_SIGNAL, LANE_WORKFLOW
from hookline.storage.registry import opened_registry
from hookline.temporal.client import connect_temporal
from hookline.worker.running import running_worker
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for
from tests.test_workflow_replay import delivery_history, replay_failures


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
        events = [await hookline.send_event(app_id, "batch.completed", {"n": n}) for n in range(20)]
        for event in events:
            await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    times = sorted(request.at for request in receiver.requests)
    assert len(times) == 20
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    # 5 permits a second, a sixth starting a little after its permit, and a seventh that the
    # receiver, in this process beside the API, may note late on a loaded machine.
    assert busiest <= 7
    assert times[-1] - times[0] >= 2.5  # 20 at 5/s: bursts of 5, a second apart


async def test_pause_holds_deliveries_and_resume_sends_them_oldest_first_within_their_window(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    short_window = {"initial_interval_s": 1, "max_interval_s": 1, "window_s": 3}
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url, retry=short_window, max_in_flight=1
    )
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    assert (await hookline.ok("POST", f"{path}/pause"))["paused"] is True
    paused_at = time.monotonic()
    receiver.respond(500)  # the first attempt after the pause fails, and is retried
    events = [await hookline.send_event(app_id, "batch.completed", {"n": n}) for n in range(3)]
    ids = [event["deliveries"][0]["id"] for event in events]
    for delivery_id in ids:
        await hookline.wait_status(app_id, delivery_id, "paused")
    health = await hookline.ok("GET", f"{path}/health")
    assert (health["state"], health["waiting"], health["in_flight"]) == ("paused", 3, 0)
    lane = hookline.temporal.get_workflow_handle(lane_workflow_id(app_id, endpoint["id"]))

    async def shown_in_the_ui() -> bool:
        metadata = await lane.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        details: str = metadata.current_details
        return details.startswith("paused: 0 in flight, 3 waiting")

    await wait_for(shown_in_the_ui, what="the lane's state in its current details")
    query = f'{sa.STATUS.name} = "paused" AND {sa.APP_ID.name} = "{app_id}"'
    await wait_for(
        lambda: _count(hookline, query, 3), what="the paused deliveries in the Temporal UI"
    )
    # Paused for longer than the deliveries' whole retry window: it is not spent.
    await wait_for(lambda: time.monotonic() - paused_at > 4, what="a pause longer than 3 s")
    assert receiver.requests == []

    assert (await hookline.ok("POST", f"{path}/resume"))["paused"] is False
    for delivery_id in ids:
        await hookline.wait_status(app_id, delivery_id, "succeeded")

    first_receipts: list[bytes] = []
    for request in receiver.requests:
        if request.body not in first_receipts:
            first_receipts.append(request.body)
    assert first_receipts == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert len(receiver.requests) == 4  # the failed first attempt, retried once


def _attempt_failed_as(history: WorkflowHistory, failure_type: str) -> bool:
    """Whether one of the run's attempts (local, or an activity) failed with ``failure_type``."""
    for event in history.events:
        failure = (
            event.marker_recorded_event_attributes.failure
            if event.HasField("marker_recorded_event_attributes")
            else event.activity_task_failed_event_attributes.failure
        )
        while failure.ByteSize():
            if failure.application_failure_info.type == failure_type:
                return True
            failure = failure.cause
    return False


async def _count(hookline: Hookline, query: str, expected: int) -> bool:
    return len([w async for w in hookline.temporal.list_workflows(query)]) == expected


# Kept 10 s: the worker's copies of both endpoints, read at their first attempts, are still
# the ones it uses when the pause comes a few seconds later.
@pytest.mark.parametrize("cache_ttl_s", [0, 10], ids=["copies-read-each-time", "copies-kept"])
async def test_nothing_is_sent_once_a_pause_has_answered(
    settings: Settings, temporal_client: Client, receiver: Receiver, cache_ttl_s: float
) -> None:
    """Retries on the usual path and permits a rate-limited lane granted ahead stop with the
    pause's answer, whether workers read endpoints for every attempt or keep copies."""
    settings = settings.model_copy(
        # The breaker off: the failing endpoint's retries stay on the usual path.
        update={"endpoint_cache_ttl_s": cache_ttl_s, "endpoint_breaker_failures": 0}
    )
    retry = {"initial_interval_s": 1, "max_interval_s": 1, "window_s": 120}
    async with AsyncExitStack() as stack:
        hookline = await stack.enter_async_context(
            Hookline.running(settings, temporal_client, API_KEY)
        )
        failing = await stack.enter_async_context(Receiver.running())
        failing.default = (500, {})
        app_id = await hookline.create_app()
        usual = await hookline.create_endpoint(
            app_id, failing.url, event_types=["job.failing"], retry=retry
        )
        laned = await hookline.create_endpoint(
            app_id, receiver.url, event_types=["job.done"], rate_limit_per_s=4
        )
        retried = [await hookline.send_event(app_id, "job.failing", {"n": n}) for n in range(3)]
        await wait_for(lambda: len(failing.requests) >= 6, what="retries on the usual path")
        done = [await hookline.send_event(app_id, "job.done", {"n": n}) for n in range(20)]
        await wait_for(lambda: len(receiver.requests) >= 3, what="the lane's first permits")

        async def pause(endpoint: dict[str, Any]) -> float:
            await hookline.ok("POST", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/pause")
            return time.monotonic()

        usual_held_at, laned_held_at = await asyncio.gather(pause(usual), pause(laned))
        # Long enough for several retries (1 s apart) and permits (4 a second) to be due.
        held_until = max(usual_held_at, laned_held_at) + 3
        await wait_for(lambda: time.monotonic() > held_until, what="3 s paused")
        assert [r.at - usual_held_at for r in failing.requests if r.at > usual_held_at] == []
        assert [r.at - laned_held_at for r in receiver.requests if r.at > laned_held_at] == []
        assert len(receiver.requests) < 20  # the pause came while permits were still due

        failing.default = (204, {})
        for endpoint in (usual, laned):
            await hookline.ok("POST", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/resume")
        for event in retried + done:
            await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
        histories = [
            await delivery_history(hookline, app_id, event["deliveries"][0]["id"]) for event in done
        ]
    bodies = {json.loads(r.body)["n"] for r in receiver.requests}
    assert bodies == set(range(20))
    recalled = [h for h in histories if _attempt_failed_as(h, ENDPOINT_PAUSED)]
    if cache_ttl_s == 0:  # a permit granted ahead met the pause (kept copies answer before)
        assert recalled
    assert await replay_failures(recalled) == {}


async def test_deleting_a_paused_endpoint_ends_its_waiting_deliveries(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    await hookline.ok("POST", f"{path}/pause")
    events = [await hookline.send_event(app_id, "job.done", {"n": n}) for n in range(2)]
    ids = [event["deliveries"][0]["id"] for event in events]
    for delivery_id in ids:
        await hookline.wait_status(app_id, delivery_id, "paused")

    await hookline.ok("DELETE", path)

    for delivery_id in ids:
        view = await hookline.wait_status(app_id, delivery_id, "failed")
        assert view["last_attempt"]["error"] == "endpoint was deleted"
    assert receiver.requests == []


async def test_cancelling_a_laned_delivery_ends_it_and_frees_its_permit(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.delays = [30.0]  # its attempt hangs until cancelled
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, max_in_flight=1)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    event = await hookline.send_event(app_id, "job.done", {})
    delivery_id = event["deliveries"][0]["id"]
    await wait_for(lambda: len(receiver.requests) == 1, what="the attempt to start")
    health = await hookline.ok("GET", f"{path}/health")
    assert health["in_flight"] == 1

    view = await hookline.delivery(app_id, delivery_id)
    await hookline.temporal.get_workflow_handle(view["workflow_id"]).cancel()

    assert (await hookline.wait_status(app_id, delivery_id, "failed"))["status"] == "failed"

    async def freed() -> bool:
        health: dict[str, int] = await hookline.ok("GET", f"{path}/health")
        return health["in_flight"] == 0

    await wait_for(freed, what="the lane to take the permit back")


async def test_fifo_delivers_each_key_in_acceptance_order_through_random_failures(
    hookline: Hookline, receiver: Receiver
) -> None:
    rng = random.Random(15)
    answers = [500 if rng.random() < 0.3 else 200 for _ in range(200)]
    receiver.respond(*answers)
    app_id = await hookline.create_app()
    retry = {"initial_interval_s": 1, "max_interval_s": 1, "window_s": 120}
    endpoint = await hookline.create_endpoint(app_id, receiver.url, retry=retry, ordering="fifo")
    assert endpoint["ordering"] == "fifo"
    sent: dict[str, list[int]] = {key: [] for key in ("a", "b", "c")}
    ids = []
    for n in range(15):
        key = "abc"[n % 3]
        event = await hookline.send_event(
            app_id, "job.done", {"key": key, "n": n}, ordering_key=key
        )
        sent[key].append(n)
        ids.append(event["deliveries"][0]["id"])
    for delivery_id in ids:
        await hookline.wait_status(app_id, delivery_id, "succeeded", timeout=90)

    delivered: dict[str, list[int]] = {key: [] for key in sent}
    for index, request in enumerate(receiver.requests):
        answer = answers[index] if index < len(answers) else 200
        if answer == 200:
            body = json.loads(request.body)
            delivered[body["key"]].append(body["n"])
    assert delivered == sent
    assert 200 in answers[: len(receiver.requests)] and 500 in answers[: len(receiver.requests)]


async def test_fifo_holds_for_events_fanned_out_to_many_endpoints(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # Two endpoints and a fan-out workflow for more than one: the fifo endpoint's deliveries
    # keep their key's order all the same.
    fan_out = settings.model_copy(update={"fan_out_inline_max": 1})
    async with (
        Hookline.running(fan_out, temporal_client, settings.api_keys[0]) as hookline,
        Receiver.running() as elsewhere,
    ):
        app_id = await hookline.create_app()
        retry = {"initial_interval_s": 1, "max_interval_s": 1, "window_s": 60}
        await hookline.create_endpoint(app_id, receiver.url, retry=retry, ordering="fifo")
        other = await hookline.create_endpoint(app_id, elsewhere.url)
        receiver.respond(500)  # the first attempt to reach the fifo endpoint fails
        events = [
            await hookline.send_event(app_id, "job.done", {"n": n}, ordering_key="k")
            for n in range(4)
        ]
        for event in events:
            for delivery in event["deliveries"]:
                await hookline.wait_status(app_id, delivery["id"], "succeeded")

    answered = [
        (json.loads(request.body)["n"], status)
        for request, status in zip(receiver.requests, [500, *[200] * 10], strict=False)
    ]
    assert [n for n, status in answered if status == 200] == [0, 1, 2, 3], answered
    assert other["ordering"] == "none"


async def test_a_lane_tells_running_queue_heads_from_ended_held_and_never_started_ones(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, event_types=["job.done"])
    # 410 Gone fails a delivery at once (and disables its endpoint: another one, then).
    gone = await hookline.create_endpoint(app_id, receiver.url, event_types=["job.gone"])

    async def delivered(event_type: str, answer: int, status: str) -> str:
        receiver.script.clear()
        receiver.default = (answer, {})
        event = await hookline.send_event(app_id, event_type, {"answer": answer})
        [delivery] = event["deliveries"]
        await hookline.wait_status(app_id, delivery["id"], status)
        return delivery_workflow_id(app_id, event["id"], delivery["endpoint_id"])

    held = await delivered("job.gone", 410, "failed")  # held open for a manual retry
    assert held.endswith(gone["id"])
    succeeded = await delivered("job.done", 200, "succeeded")
    backing_off = await delivered("job.done", 503, "retrying")
    never = delivery_workflow_id(app_id, "never-accepted", endpoint["id"])
    async with opened_registry(settings) as registry:
        lanes = LaneActivities(hookline.temporal, settings, registry, EndpointCache(registry, 0))
        found = await ActivityEnvironment().run(
            lanes.look_at_queue_heads,
            HeadsToCheck(deliveries=[succeeded, held, backing_off, never]),
        )

    assert found.seen == {
        succeeded: "ended",
        held: "ended",
        backing_off: "running",
        never: "not_found",
    }


async def test_cancelling_a_fifo_delivery_while_it_backs_off_lets_its_key_move_on(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    long_backoff = {"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200}
    await hookline.create_endpoint(app_id, receiver.url, retry=long_backoff, ordering="fifo")
    receiver.respond(503)
    first = await hookline.send_event(app_id, "job.done", {"n": 0}, ordering_key="k")
    first_id = first["deliveries"][0]["id"]
    await hookline.wait_status(app_id, first_id, "retrying")  # for an hour
    second = await hookline.send_event(app_id, "job.done", {"n": 1}, ordering_key="k")
    second_id = second["deliveries"][0]["id"]
    assert (await hookline.delivery(app_id, second_id))["status"] == "pending"

    view = await hookline.delivery(app_id, first_id)
    await hookline.temporal.get_workflow_handle(view["workflow_id"]).cancel()
    cancelled_at = time.monotonic()

    # Its key moves on at once, not at the lane's next look at a silent head (30 s on).
    await hookline.wait_status(app_id, second_id, "succeeded", timeout=20)
    assert time.monotonic() - cancelled_at < 20
    assert [r.body for r in receiver.requests] == [b'{"n":0}', b'{"n":1}']


async def test_a_full_lane_tells_the_delivery_it_turned_away_which_asks_again_sooner(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # A lane keeping one waiting delivery, paused: the second delivery's ask is not kept. The
    # lane tells it so, and it asks again after 5 minutes; the one kept asks again only after
    # 30 (each ask wakes both workflows: a backlog must not ask every 5 minutes).
    small = settings.model_copy(update={"endpoint_lane_max_waiting": 1})
    async with Hookline.running(small, temporal_client, settings.api_keys[0]) as hookline:
        app_id = await hookline.create_app()
        long_window = {"window_s": 7200}  # no wait is cut short by the window's end
        endpoint = await hookline.create_endpoint(
            app_id, receiver.url, max_in_flight=1, retry=long_window
        )
        path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
        await hookline.ok("POST", f"{path}/pause")
        kept = (await hookline.send_event(app_id, "job.done", {"n": 0}))["deliveries"][0]
        await hookline.wait_status(app_id, kept["id"], "paused")
        turned_away = (await hookline.send_event(app_id, "job.done", {"n": 1}))["deliveries"][0]

        async def waits(delivery_id: str, signal: str | None) -> list[float] | None:
            """The durations of the delivery's timers, once it has heard ``signal``."""
            view = await hookline.delivery(app_id, delivery_id)
            handle = hookline.temporal.get_workflow_handle(view["workflow_id"])
            heard, timers = signal is None, []
            async for event in handle.fetch_history_events():
                if event.HasField("workflow_execution_signaled_event_attributes"):
                    heard |= event.workflow_execution_signaled_event_attributes.signal_name == (
                        signal
                    )
                if event.HasField("timer_started_event_attributes"):
                    timeout = event.timer_started_event_attributes.start_to_fire_timeout
                    timers.append(timeout.ToTimedelta().total_seconds())
                    if heard:
                        return timers
            return None

        told = await wait_for(
            lambda: waits(turned_away["id"], "lane_full"), what="the full lane's notice"
        )
        assert 290 < told[-1] <= 300  # it asks again 5 minutes after it asked
        kept_waits = await wait_for(lambda: waits(kept["id"], None), what="a wait for a grant")
        assert kept_waits == [1800.0]  # 30 minutes
        health = await hookline.ok("GET", f"{path}/health")
        assert (health["state"], health["waiting"]) == ("paused", 1)


async def test_a_lane_that_cannot_answer_reads_as_unavailable_not_as_an_error(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    # A lane's workflow whose every task fails (here: an input it cannot read) runs, but no
    # worker can answer its health query: the read says so, and to retry.
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, max_in_flight=1)
    await hookline.temporal.start_workflow(
        LANE_WORKFLOW,
        {"app_id": app_id},  # no endpoint_id: the lane's first task fails, again and again
        id=lane_workflow_id(app_id, endpoint["id"]),
        task_queue=settings.task_queue,
    )

    status, body = await hookline.call(
        "GET", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/health"
    )

    assert status == 503, body
    assert body["error"]["code"] == "lane_unavailable"


async def _activities(hookline: Hookline, workflow_id: str) -> tuple[list[str], list[str]]:
    """The workflow's local activities, then its activities, by type, in order."""
    events = (await hookline.temporal.get_workflow_handle(workflow_id).fetch_history()).events
    local = [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for e in events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    return [m["activity_type"] for m in local], [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


async def test_an_attempt_under_a_permit_runs_in_the_grants_workflow_task_unless_slots_are_taken(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # One slot per endpoint in the worker, two permits in the lane: the first attempt is a
    # local activity and holds the slot; the second, granted meanwhile, finds it taken and
    # waits for it as an activity (nothing is sent twice, and nothing is lost).
    narrow = settings.model_copy(update={"endpoint_max_concurrent_attempts": 1})
    async with Hookline.running(narrow, temporal_client, settings.api_keys[0]) as hookline:
        app_id = await hookline.create_app()
        await hookline.create_endpoint(app_id, receiver.url, max_in_flight=2)
        receiver.delays = [3.0]  # the first attempt holds the endpoint's only slot
        first = (await hookline.send_event(app_id, "job.done", {"n": 1}))["deliveries"][0]
        await wait_for(lambda: len(receiver.requests) == 1, what="the first attempt")
        second = (await hookline.send_event(app_id, "job.done", {"n": 2}))["deliveries"][0]
        views = [await hookline.wait_status(app_id, d["id"], "succeeded") for d in (first, second)]

        # Accepted while the endpoint had a lane, each asked it first (no attempt sent nothing
        # to find out). The second's permitted attempt found the slot taken and waited for it
        # as an activity.
        assert [await _activities(hookline, view["workflow_id"]) for view in views] == [
            (["ask_lane", "post_signed"], []),
            (["ask_lane", "post_signed"], ["post_signed"]),
        ]
    assert [r.body for r in receiver.requests] == [b'{"n":1}', b'{"n":2}']
    assert [view["attempts"] for view in views] == [1, 1]


async def test_a_delivery_accepted_while_its_endpoint_had_a_lane_is_sent_once_the_lane_is_gone(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # Accepted with a lane (so its first step asks the lane), started after the endpoint lost
    # it: the lane, started with the endpoint's settings of now, grants at once.
    async with Hookline.running(
        settings, temporal_client, settings.api_keys[0], worker=False
    ) as hookline:
        app_id = await hookline.create_app()
        endpoint = await hookline.create_endpoint(app_id, receiver.url, max_in_flight=1)
        sent = (await hookline.send_event(app_id, "job.done", {"n": 1}))["deliveries"][0]
        path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
        assert (await hookline.ok("PATCH", path, {"max_in_flight": None}))["max_in_flight"] is None
        await hookline.start_worker()
        view = await hookline.wait_status(app_id, sent["id"], "succeeded")
        # It asked the lane first: no attempt that sent nothing.
        assert await _activities(hookline, view["workflow_id"]) == (["ask_lane", "post_signed"], [])
    assert [r.body for r in receiver.requests] == [b'{"n":1}']
    assert view["attempts"] == 1


async def test_a_delivery_late_for_its_permit_asks_for_one_further_ahead_and_keeps_to_it(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # One slot per endpoint in the worker: the second delivery's permit comes while the first
    # attempt holds the slot for 2 s, and it passes while the second waits for the slot. It
    # sends nothing then, and asks for a permit planned as much further ahead as it was late.
    narrow = settings.model_copy(update={"endpoint_max_concurrent_attempts": 1})
    async with Hookline.running(narrow, temporal_client, settings.api_keys[0]) as hookline:
        app_id = await hookline.create_app()
        endpoint = await hookline.create_endpoint(
            app_id, receiver.url, max_in_flight=2, rate_limit_per_s=5
        )
        receiver.delays = [2.0]
        first = (await hookline.send_event(app_id, "job.done", {"n": 1}))["deliveries"][0]
        await wait_for(lambda: len(receiver.requests) == 1, what="the first attempt")
        second = (await hookline.send_event(app_id, "job.done", {"n": 2}))["deliveries"][0]
        views = [await hookline.wait_status(app_id, d["id"], "succeeded") for d in (first, second)]
        delivery = views[1]["workflow_id"]
        lane = lane_workflow_id(app_id, endpoint["id"])
        histories = [
            await hookline.temporal.get_workflow_handle(w).fetch_history() for w in (delivery, lane)
        ]
    wall_minus_monotonic = time.time() - time.monotonic()

    assert [r.body for r in receiver.requests] == [b'{"n":1}', b'{"n":2}']
    assert [view["attempts"] for view in views] == [1, 1]
    # Its permit expired once, and said how late it was.
    [late_by] = _permit_expiries(histories[0])
    assert late_by > PERMIT_TOLERANCE.total_seconds()
    # It asked again for as much more lead, and the lane planned its next permit so.
    asks = [ask for ask in _lane_asks(histories[1]) if ask["delivery"] == delivery]
    assert [ask["lead_s"] for ask in asks] == [0.0, LateStarts().after_expiry(late_by).lead_s]
    assert asks[1]["lead_s"] >= 2 * LEAD.total_seconds()  # more than the usual lead
    granted_at, grant = _grants(histories[1], delivery)[-1]
    planned = datetime.fromisoformat(grant["start_at"])
    assert planned - granted_at >= timedelta(seconds=asks[1]["lead_s"])
    # Its worker waited for that start.
    assert receiver.requests[1].at + wall_minus_monotonic >= planned.timestamp() - 0.01
    assert await replay_failures(histories) == {}  # deterministic, in the sandbox


def _permit_expiries(history: WorkflowHistory) -> list[float]:
    """How late each attempt of the delivery that expired was (its failure's detail)."""
    found = []
    for e in history.events:
        if e.HasField("activity_task_failed_event_attributes"):
            failure = e.activity_task_failed_event_attributes.failure
        elif e.HasField("marker_recorded_event_attributes"):
            failure = e.marker_recorded_event_attributes.failure
        else:
            continue
        info = failure.application_failure_info
        if info.type == PERMIT_EXPIRED:
            found.append(json.loads(info.details.payloads[0].data))
    return found


def _lane_asks(history: WorkflowHistory) -> list[dict[str, Any]]:
    return [
        json.loads(e.workflow_execution_signaled_event_attributes.input.payloads[0].data)
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
        and e.workflow_execution_signaled_event_attributes.signal_name == LANE_ASK_SIGNAL
    ]


def _grants(history: WorkflowHistory, delivery: str) -> list[tuple[datetime, dict[str, Any]]]:
    """The lane's grants to ``delivery``, each with the time of the lane's workflow task that
    made it (its ``workflow.now()``)."""
    found, task_time = [], datetime.min.replace(tzinfo=UTC)
    for e in history.events:
        if e.HasField("workflow_task_started_event_attributes"):
            task_time = e.event_time.ToDatetime(tzinfo=UTC)
        signal = e.signal_external_workflow_execution_initiated_event_attributes
        if (
            e.HasField("signal_external_workflow_execution_initiated_event_attributes")
            and signal.signal_name == LANE_GRANTED_SIGNAL
            and signal.workflow_execution.workflow_id == delivery
        ):
            found.append((task_time, json.loads(signal.input.payloads[0].data)))
    return found

"""The circuit breaker of every endpoint (issue #15), with the real worker and receivers: a
receiver that is down gets a bounded number of attempts, not one per delivery per backoff;
when it is back, the backlog drains from one in flight and the endpoint returns to the usual
path; a Retry-After on a 429 holds all of the endpoint's deliveries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError

from hookline.activities.lanes import asks_phase_s, until_asks_go_together
from hookline.config.settings import Settings
from hookline.contracts.lanes import lane_workflow_id
from hookline.contracts.names import LANE_ASK_SIGNAL
from hookline.storage.registry import opened_registry
from tests.conftest import settings_for_tests
from tests.harness import Hookline, Receiver, wait_for
from tests.test_workflow_replay import replay_failures


@pytest.fixture
def settings(tmp_path: Path, temporal_address: str) -> Settings:
    """The tests' settings with the breaker on, as by default (``settings_for_tests`` has it
    off)."""
    default = Settings.model_fields["endpoint_breaker_failures"].default
    on = {"endpoint_breaker_failures": default}
    return settings_for_tests(tmp_path, temporal_address).model_copy(update=on)


async def _health(hookline: Hookline, path: str) -> dict[str, Any]:
    health: dict[str, Any] = await hookline.ok("GET", f"{path}/health")
    return health


async def test_a_receiver_that_is_down_gets_a_bounded_number_of_attempts(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    receiver.default = (503, {})  # down
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    events = [await hookline.send_event(app_id, "job.done", {"n": n}) for n in range(20)]
    ids = [event["deliveries"][0]["id"] for event in events]

    async def open_with_the_backlog_waiting() -> dict[str, Any] | None:
        health = await _health(hookline, path)
        return health if health["state"] in ("open", "half_open") else None

    health = await wait_for(open_with_the_backlog_waiting, what="the circuit to open")
    assert health["consecutive_failures"] >= settings.endpoint_breaker_failures
    down_since, seen = time.monotonic(), len(receiver.requests)
    # Down for 15 s more: 20 deliveries retried every second would be 300 attempts.
    await wait_for(lambda: time.monotonic() - down_since > 15, what="15 s of outage", timeout=30)
    during = len(receiver.requests) - seen
    assert during <= 4, during  # probes, 5 s then 10 s apart
    assert seen <= 20 + 10  # the first attempts, and those under way when it tripped

    receiver.default = (200, {})  # back
    for delivery_id in ids:
        await hookline.wait_status(app_id, delivery_id, "succeeded", timeout=60)

    async def back_on_the_usual_path() -> bool:
        async with opened_registry(settings) as registry:
            stored = await registry.endpoints.get(endpoint["id"])
        return stored is not None and stored.breaker_tripped_at is None

    await wait_for(back_on_the_usual_path, what="the breaker to be reset")
    assert (await _health(hookline, path))["state"] == "healthy"


async def test_the_attempt_that_trips_the_breaker_takes_its_delivery_into_the_lane(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    """A delivery whose attempt fails as the breaker trips waits in the lane from then on
    (the first probe is its), rather than backing off on its own schedule first only to be
    turned back by its next attempt, which would send nothing."""
    receiver.default = (500, {})  # down
    app_id = await hookline.create_app()
    slow = {"initial_interval_s": 30, "max_interval_s": 60, "window_s": 600}
    endpoint = await hookline.create_endpoint(app_id, receiver.url, retry=slow)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    failures = settings.endpoint_breaker_failures
    events = [await hookline.send_event(app_id, "job.done", {"n": n}) for n in range(failures)]
    ids = [event["deliveries"][0]["id"] for event in events]

    async def one_waiting_in_the_open_lane() -> dict[str, Any] | None:
        health = await _health(hookline, path)
        return health if health["state"] == "open" and health["waiting"] == 1 else None

    # The last failure trips the breaker; the others came before, and back off for 30 s.
    await wait_for(one_waiting_in_the_open_lane, what="the tripping delivery in the lane")
    tripped_at = time.monotonic()
    views = [await hookline.delivery(app_id, delivery_id) for delivery_id in ids]
    assert [(v["status"], v["attempts"]) for v in views] == [("retrying", 1)] * failures
    assert {v["last_attempt"]["error"] for v in views} == {"HTTP 500"}
    assert len(receiver.requests) == failures

    receiver.default = (200, {})  # back: the lane's first probe is the waiting delivery's

    async def delivered() -> list[dict[str, Any]] | None:
        views = [await hookline.delivery(app_id, delivery_id) for delivery_id in ids]
        return views if any(v["status"] == "succeeded" for v in views) else None

    views = await wait_for(delivered, what="the probe to deliver", timeout=20)
    assert time.monotonic() - tripped_at < 25  # before the others' 30 s backoff ended
    done = [v for v in views if v["status"] == "succeeded"]
    assert [v["attempts"] for v in done] == [2]
    others = [v for v in views if v["status"] != "succeeded"]
    assert [(v["status"], v["attempts"]) for v in others] == [("retrying", 1)] * (failures - 1)
    # Its run (a failed attempt that says the endpoint has a lane now) replays on this code.
    history = await hookline.temporal.get_workflow_handle(done[0]["workflow_id"]).fetch_history()
    assert await replay_failures([history]) == {}


async def test_a_retry_after_holds_every_delivery_to_the_endpoint(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    retry = {"initial_interval_s": 1, "max_interval_s": 10, "window_s": 60}
    endpoint = await hookline.create_endpoint(app_id, receiver.url, retry=retry)
    receiver.respond((429, {"Retry-After": "4"}))
    first = await hookline.send_event(app_id, "job.done", {"n": 0})
    await wait_for(lambda: len(receiver.requests) == 1, what="the 429")
    told_at = receiver.requests[0].at

    lane = hookline.temporal.get_workflow_handle(lane_workflow_id(app_id, endpoint["id"]))

    async def lane_started() -> bool:
        try:
            await lane.describe()
        except RPCError:
            return False
        return True

    await wait_for(lane_started, what="the endpoint's lane to start, holding")
    others = [await hookline.send_event(app_id, "job.done", {"n": n}) for n in range(1, 4)]
    for event in [first, *others]:
        await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    after = [request.at - told_at for request in receiver.requests[1:]]
    assert len(after) == 4
    assert min(after) >= 3.9, after  # none before the Retry-After, the others' included


async def test_deliveries_waiting_behind_an_open_circuit_fail_when_their_window_closes(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.default = (503, {})  # down for good
    app_id = await hookline.create_app()
    short = {"initial_interval_s": 1, "max_interval_s": 1, "window_s": 6}
    await hookline.create_endpoint(app_id, receiver.url, retry=short)
    events = [await hookline.send_event(app_id, "job.done", {"n": n}) for n in range(12)]

    # Behind the open circuit, probes are 5 s and more apart: most deliveries never get one
    # in their window, and end then rather than wait on.
    views = [
        await hookline.wait_status(app_id, event["deliveries"][0]["id"], "failed", timeout=40)
        for event in events
    ]
    errors = {view["last_attempt"]["error"] for view in views if view["last_attempt"]}
    assert errors == {"HTTP 503"}
    assert len(receiver.requests) < 12 * 6  # each would have made about 6 on its own


async def _first_task_started(hookline: Hookline, app_id: str, delivery_id: str) -> float:
    """When the delivery's first workflow task started (seconds since the epoch), once it has."""
    workflow_id = (await hookline.delivery(app_id, delivery_id))["workflow_id"]
    handle = hookline.temporal.get_workflow_handle(workflow_id)

    async def started() -> float | None:
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_task_started_event_attributes"):
                return event.event_time.ToDatetime().timestamp()
        return None

    return await wait_for(started, what=f"{delivery_id}'s first workflow task")


async def test_a_backlog_behind_an_open_circuit_yields_to_healthy_endpoints(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # No worker yet: deliveries to an endpoint whose breaker is tripped are accepted first,
    # then deliveries to a healthy one, and their workflow tasks queue up at Temporal. When a
    # worker comes, polling two at a time (with its usual 40 pollers it takes the whole
    # queue at once, in no order), the healthy endpoint's go first.
    two_pollers = settings.model_copy(update={"worker_pollers": 2})
    async with (
        Receiver.running() as down,
        Hookline.running(two_pollers, temporal_client, settings.api_keys[0], worker=False) as (
            hookline
        ),
    ):
        down.default = (503, {})
        app_id = await hookline.create_app()
        broken = await hookline.create_endpoint(app_id, down.url, event_types=["job.stuck"])
        await hookline.create_endpoint(app_id, receiver.url, event_types=["job.done"])
        async with opened_registry(settings) as registry:
            assert await registry.endpoints.trip_breaker(broken["id"])
        stuck = [await hookline.send_event(app_id, "job.stuck", {"n": n}) for n in range(20)]
        done = [await hookline.send_event(app_id, "job.done", {"n": n}) for n in range(10)]

        await hookline.start_worker()
        for event in done:
            await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
        healthy = [
            await _first_task_started(hookline, app_id, event["deliveries"][0]["id"])
            for event in done
        ]
        waiting = [
            await _first_task_started(hookline, app_id, event["deliveries"][0]["id"])
            for event in stuck
        ]
    assert sorted(r.body for r in receiver.requests) == sorted(
        f'{{"n":{n}}}'.encode() for n in range(10)
    )
    # Without priorities the queue is first come, first served: every waiting delivery
    # would go before the healthy ones accepted after them.
    assert sum(healthy) / len(healthy) < sum(waiting) / len(waiting)
    assert sorted(healthy)[len(healthy) // 2] < sorted(waiting)[len(waiting) // 2]


LONG_BACKOFF = {"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200}


async def _is_open(hookline: Hookline, path: str) -> bool:
    return (await _health(hookline, path))["state"] in ("open", "half_open")


def _asker(event: HistoryEvent) -> str | None:
    """The delivery whose ask this lane history event is (``None``: not an ask)."""
    signaled = event.workflow_execution_signaled_event_attributes
    if not event.HasField("workflow_execution_signaled_event_attributes"):
        return None
    if signaled.signal_name != LANE_ASK_SIGNAL:
        return None
    return cast(str, json.loads(signaled.input.payloads[0].data)["delivery"])


async def _endpoint_asking_mid_second(hookline: Hookline, app_id: str, url: str) -> dict[str, Any]:
    """An endpoint whose asks go out between 0.4 and 0.6 s into each second, far from the
    whole second (ids are random: one in five is; the others are deleted)."""
    for _ in range(100):
        endpoint = await hookline.create_endpoint(app_id, url, retry=LONG_BACKOFF)
        if 0.4 <= asks_phase_s(endpoint["id"]) <= 0.6:
            return endpoint
        await hookline.ok("DELETE", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}")
    raise AssertionError("no endpoint of 100 asks mid-second")


async def test_asks_behind_an_open_circuit_reach_the_lane_together(
    hookline: Hookline, receiver: Receiver
) -> None:
    # Once the breaker tripped, deliveries ask the lane once a second, at the endpoint's
    # point in it: ten accepted in quick succession take the lane a workflow task or two a
    # second, not one each.
    receiver.default = (503, {})  # down
    app_id = await hookline.create_app()
    endpoint = await _endpoint_asking_mid_second(hookline, app_id, receiver.url)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    for n in range(5):  # the threshold, in a row
        await hookline.send_event(app_id, "job.done", {"n": n})
    await wait_for(lambda: _is_open(hookline, path), what="the circuit to open")
    later = [await hookline.send_event(app_id, "job.done", {"n": n}) for n in range(5, 15)]
    asking = {
        (await hookline.delivery(app_id, event["deliveries"][0]["id"]))["workflow_id"]
        for event in later
    }
    lane = hookline.temporal.get_workflow_handle(lane_workflow_id(app_id, endpoint["id"]))

    async def asked() -> Sequence[HistoryEvent] | None:
        events = (await lane.fetch_history()).events
        asks = [i for i, e in enumerate(events) if _asker(e) in asking]
        return events[asks[0] : asks[-1] + 1] if len(asks) == len(asking) else None

    between = await wait_for(asked, what="the ten asks to reach the lane")
    # Each reached the lane soon after the endpoint's point in the second, mid-second (sent as
    # accepted, one after the other, they would reach it spread over the half second or more
    # the sends took; held to the whole second, at least 0.4 s after that point).
    phase = asks_phase_s(endpoint["id"])
    arrived = [
        (e.event_time.ToDatetime().timestamp() - phase) % 1 for e in between if _asker(e) in asking
    ]
    assert max(arrived) < 0.35, arrived
    tasks = [e for e in between if e.HasField("workflow_task_started_event_attributes")]
    assert len(tasks) <= 6, len(tasks)  # one each would be 9


_PRINT_PHASES = (
    "import sys; from hookline.activities.lanes import asks_phase_s; "
    "print(*(repr(asks_phase_s(i)) for i in sys.argv[1:]))"
)


def test_each_tripped_endpoint_asks_at_its_own_point_in_the_second() -> None:
    # Every worker process holds an endpoint's asks until the same instant (a hash that does
    # not change from process to process), and different endpoints' asks, with the workflow
    # tasks they hold, spread over the second instead of all landing on the whole second.
    ids = [f"ep_{n:04d}" for n in range(200)]
    phases = [asks_phase_s(i) for i in ids]
    assert all(0 <= p < 1 for p in phases)
    # Another process, with another string hash seed, puts them at the same points.
    other = subprocess.run(
        [sys.executable, "-c", _PRINT_PHASES, *ids[:20]],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert [float(p) for p in other.stdout.split()] == phases[:20]
    tenths = {int(p * 10) for p in phases}
    assert tenths == set(range(10))  # 200 endpoints fall in every tenth of the second
    now = 1_764_000_000.25
    for endpoint_id, phase in zip(ids, phases, strict=True):
        wait = until_asks_go_together(endpoint_id, now)
        assert 0 < wait <= 1
        assert abs((now + wait - phase) % 1) < 1e-6 or abs((now + wait - phase) % 1 - 1) < 1e-6
        # Any moment up to that instant waits for the same one.
        assert abs(until_asks_go_together(endpoint_id, now + wait / 2) - wait / 2) < 1e-6

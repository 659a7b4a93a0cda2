"""A lane's permit planned ahead is kept to by the worker: an attempt that cannot start within
the tolerance of its planned start sends nothing (``PermitExpired``), whether it was late to
start or held up waiting for one of the endpoint's slots in its worker."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from hookline.activities.delivery import DeliveryActivities
from hookline.config.settings import Settings
from hookline.contracts.delivery import PERMIT_EXPIRED, AttemptInput
from hookline.contracts.late_permits import LATE_PERMIT_TOLERANCE, PERMIT_TOLERANCE
from hookline.storage.registry import opened_registry
from tests.harness import Hookline, Receiver, wait_for


def attempt_for(app_id: str, endpoint_id: str, n: int, **fields: object) -> AttemptInput:
    """The first attempt of a delivery of ``{"n": n}`` to the endpoint, with ``fields``."""
    return AttemptInput(
        delivery_id=f"permit-start-{n}",
        app_id=app_id,
        event_id=f"evt_permit_start_{n}",
        endpoint_id=endpoint_id,
        body=f'{{"n":{n}}}',
        timeout_s=10,
    ).model_copy(update=fields)


def _permitted(
    app_id: str, endpoint_id: str, n: int, start_at: datetime, strict: bool = True
) -> AttemptInput:
    return attempt_for(
        app_id, endpoint_id, n, permitted=True, start_at=start_at, strict_start=strict
    )


def _started_at(
    now: datetime, *, local: bool = False, scheduled: datetime | None = None
) -> ActivityEnvironment:
    """An activity environment whose attempt started at ``now`` (the server's time; a
    ``local`` one's is its worker's, which scheduled it at ``scheduled``)."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        started_time=now,
        is_local=local,
        current_attempt_scheduled_time=scheduled or now,
    )
    return env


async def test_a_permit_the_worker_is_too_late_for_sends_nothing(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, max_in_flight=2)
    now = datetime.now(UTC)
    async with opened_registry(settings) as registry, aiohttp.ClientSession() as session:
        activities = DeliveryActivities(session, registry, settings.max_response_bytes)
        late = _permitted(app_id, endpoint["id"], 1, now - PERMIT_TOLERANCE * 2)
        with pytest.raises(ApplicationError) as refused:
            await _started_at(now).run(activities.post_signed, late)
        # Not strict (it may start however late), so it goes however busy the machine running
        # the test is: it waits for its planned start all the same.
        on_time = _permitted(app_id, endpoint["id"], 2, now + timedelta(milliseconds=300), False)
        started = time.monotonic()
        record = await _started_at(now).run(activities.post_signed, on_time)

    assert refused.value.type == PERMIT_EXPIRED
    # It says how late it was: its delivery asks for a permit planned as much further ahead.
    late_by = refused.value.details[0]
    assert PERMIT_TOLERANCE.total_seconds() * 2 <= late_by < 10, late_by
    assert record.status_code == 200
    assert time.monotonic() - started >= 0.25  # it waited for its planned start
    assert [r.body for r in receiver.requests] == [b'{"n":2}']  # the late one sent nothing


async def test_a_permit_may_start_as_late_as_its_tolerance_says_and_no_later(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    # A delivery whose permits expired even planned 2 s ahead allows the next one 2 s: half a
    # second late, it goes; twenty seconds late (made again after its worker died, with its
    # workflow task's old time), it would land among other permits' slots: it does not. A
    # permit a release before 2026-12 marked not strict goes however late.
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, max_in_flight=2)
    lenient = {"start_tolerance_s": LATE_PERMIT_TOLERANCE.total_seconds()}

    def late_by(n: int, late: timedelta, **update: object) -> AttemptInput:
        planned = datetime.now(UTC) - late
        return _permitted(app_id, endpoint["id"], n, planned).model_copy(
            update={"planned_from": planned, **update}
        )

    async with opened_registry(settings) as registry, aiohttp.ClientSession() as session:
        activities = DeliveryActivities(session, registry, settings.max_response_bytes)
        crashed = late_by(1, timedelta(seconds=20), **lenient)
        with pytest.raises(ApplicationError) as refused:
            await _started_at(datetime.now(UTC), local=True).run(activities.post_signed, crashed)
        records = []
        for attempt in (
            late_by(2, timedelta(milliseconds=500), **lenient),
            late_by(3, timedelta(seconds=20), strict_start=False),
        ):
            env = _started_at(datetime.now(UTC), local=True)
            records.append(await env.run(activities.post_signed, attempt))

    assert refused.value.type == PERMIT_EXPIRED
    assert refused.value.details[0] >= 20
    assert [record.status_code for record in records] == [200, 200]
    assert [r.body for r in receiver.requests] == [b'{"n":2}', b'{"n":3}']


async def test_a_permit_held_up_behind_the_endpoints_slot_in_its_worker_sends_nothing(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, max_in_flight=2)
    receiver.delays = [1.0]  # the first request holds the worker's one slot a second
    now = datetime.now(UTC)
    async with opened_registry(settings) as registry, aiohttp.ClientSession() as session:
        activities = DeliveryActivities(
            session, registry, settings.max_response_bytes, per_endpoint_concurrency=1
        )
        holder = _permitted(app_id, endpoint["id"], 1, now, strict=False)
        slow = asyncio.create_task(_started_at(now).run(activities.post_signed, holder))
        await wait_for(lambda: len(receiver.requests) == 1, what="the first request", timeout=10)
        behind = _permitted(app_id, endpoint["id"], 2, datetime.now(UTC))
        with pytest.raises(ApplicationError) as refused:
            await _started_at(datetime.now(UTC)).run(activities.post_signed, behind)
        first = await slow

    assert refused.value.type == PERMIT_EXPIRED
    assert first.status_code == 200
    assert [r.body for r in receiver.requests] == [b'{"n":1}']


async def test_a_local_attempt_late_for_its_permit_sends_nothing(
    hookline: Hookline, receiver: Receiver, settings: Settings
) -> None:
    # A local attempt counts from its workflow task's time (the server's): it is late if it
    # queued for a slot in its worker meanwhile, or if its worker died and another made it
    # again with that task's old time, long after. And by the worker's clock: a task that
    # started 0.5 s ago on the server and reached its worker late has 0.3 s to go by the
    # server's times, but is 0.2 s late (sent, it would bunch up with the next permits).
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, max_in_flight=2)
    now = datetime.now(UTC)
    ahead = timedelta(milliseconds=300)
    queued = _permitted(app_id, endpoint["id"], 1, now + ahead).model_copy(
        update={"planned_from": now}
    )
    crashed = _permitted(app_id, endpoint["id"], 2, now - timedelta(seconds=20) + ahead)
    crashed = crashed.model_copy(update={"planned_from": now - timedelta(seconds=20)})
    task_started = now - timedelta(milliseconds=500)
    reached_late = _permitted(app_id, endpoint["id"], 4, task_started + ahead).model_copy(
        update={"planned_from": task_started}
    )
    async with opened_registry(settings) as registry, aiohttp.ClientSession() as session:
        activities = DeliveryActivities(session, registry, settings.max_response_bytes)
        refusals = []
        for late, scheduled in (
            (queued, now - timedelta(seconds=1)),
            (crashed, now),
            (reached_late, now),
        ):
            with pytest.raises(ApplicationError) as refused:
                await _started_at(now, local=True, scheduled=scheduled).run(
                    activities.post_signed, late
                )
            refusals.append(refused.value.type)
        # Planned from now: its workflow task's time is now, and its start 0.3 s ahead.
        now = datetime.now(UTC)
        on_time = _permitted(app_id, endpoint["id"], 3, now + ahead).model_copy(
            update={"planned_from": now}
        )
        record = await _started_at(now, local=True).run(activities.post_signed, on_time)

    assert refusals == [PERMIT_EXPIRED] * 3
    assert record.status_code == 200
    assert [r.body for r in receiver.requests] == [b'{"n":3}']

"""A delivery's first attempt, made inside its workflow task: what cancels it, what it leaves to
an activity (an endpoint whose slots are taken), and how a Retry-After fits its window."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from hookline.config.settings import Settings
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for


async def test_cancelling_a_delivery_during_its_first_attempt_stops_it(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.delays = [4.0]  # the first attempt is in flight when the cancel comes
    receiver.default = (503, {})
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, retry={"initial_interval_s": 1})
    event = await hookline.send_event(app_id, "batch.completed", {})
    view = await hookline.delivery(app_id, event["deliveries"][0]["id"])
    await wait_for(lambda: len(receiver.requests) == 1, what="the first attempt")

    handle = hookline.temporal.get_workflow_handle(view["workflow_id"])
    await handle.cancel()

    async def ended() -> WorkflowExecutionStatus | None:
        status = (await handle.describe()).status
        return status if status != WorkflowExecutionStatus.RUNNING else None

    assert await wait_for(ended, what="the delivery to end") == WorkflowExecutionStatus.CANCELED
    assert len(receiver.requests) == 1  # no attempt after the cancel
    endpoint = (await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints"))["data"][0]
    assert endpoint["failing_since"] is None  # an operator's cancel is not the endpoint's fault
    assert (await hookline.delivery(app_id, view["id"]))["status"] == "failed"


@pytest.fixture
async def one_slot(settings: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    narrow = settings.model_copy(update={"endpoint_max_concurrent_attempts": 1})
    async with Hookline.running(narrow, temporal_client, API_KEY) as running:
        yield running


async def test_a_busy_endpoint_leaves_the_first_attempt_to_an_activity(
    one_slot: Hookline, receiver: Receiver
) -> None:
    receiver.delays = [3.0]  # the first delivery holds the endpoint's only slot
    app_id = await one_slot.create_app()
    await one_slot.create_endpoint(app_id, receiver.url)
    slow = await one_slot.send_event(app_id, "batch.completed", {"n": 1})
    await wait_for(lambda: len(receiver.requests) == 1, what="the slow attempt")
    waiting = await one_slot.send_event(app_id, "batch.completed", {"n": 2})

    first = await one_slot.wait_status(app_id, slow["deliveries"][0]["id"], "succeeded")
    second = await one_slot.wait_status(app_id, waiting["deliveries"][0]["id"], "succeeded")

    assert first["attempts"] == 1 and second["attempts"] == 1
    assert [r.body for r in receiver.requests] == [b'{"n":1}', b'{"n":2}']
    # The second POST went out only once the first had its answer, from an activity.
    handle = one_slot.temporal.get_workflow_handle(second["workflow_id"])
    history = await handle.fetch_history()
    scheduled = [
        e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled] == [
        "post_signed"
    ]


async def test_retry_after_on_the_first_attempt_is_shortened_to_fit_the_window(
    hookline: Hookline, receiver: Receiver
) -> None:
    # Window 20 s, an attempt may take 15 s: a 100 s Retry-After becomes a wait of about 5 s.
    receiver.respond((429, {"Retry-After": "100"}))
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id, receiver.url, retry={"initial_interval_s": 1, "max_interval_s": 120, "window_s": 20}
    )
    event = await hookline.send_event(app_id, "batch.completed", {})

    done = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    assert done["attempts"] == 2
    waited = receiver.requests[1].at - receiver.requests[0].at
    assert 3.5 < waited < 12, waited

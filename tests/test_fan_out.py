"""An event for more endpoints than ``fan_out_inline_max``: the API answers after starting one
fan-out workflow, which starts every delivery; each endpoint gets the event exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.contracts.delivery import EventFanOut
from hookline.contracts.ids import delivery_id, fan_out_workflow_id
from hookline.delivery.starts import start_fan_out
from hookline.storage.entities import DeliveryRef
from hookline.storage.registry import opened_registry
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for

ENDPOINTS = 12


@pytest.fixture
async def fanning(settings: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    fan_out_settings = settings.model_copy(update={"fan_out_inline_max": 3})
    async with Hookline.running(fan_out_settings, temporal_client, API_KEY) as running:
        yield running


async def test_fan_out_workflow_delivers_to_every_endpoint_once(
    fanning: Hookline, receiver: Receiver
) -> None:
    app_id = await fanning.create_app()
    secrets = {}
    for n in range(ENDPOINTS):
        endpoint = await fanning.create_endpoint(app_id, receiver.url_for(f"/e{n}"))
        secrets[f"/e{n}"] = endpoint["secret"]
    await fanning.create_endpoint(app_id, receiver.url_for("/other"), event_types=["invoice.paid"])

    accepted = await fanning.send_event(app_id, "batch.completed", {"rows": 3}, id="evt_many")
    again = await fanning.send_event(app_id, "batch.completed", {"rows": 3}, id="evt_many")

    assert len(accepted["deliveries"]) == ENDPOINTS and accepted["duplicate"] is False
    assert again["duplicate"] is True
    for delivery in accepted["deliveries"]:
        view = await fanning.wait_status(app_id, delivery["id"], "succeeded")
        assert view["event_type"] == "batch.completed" and view["attempts"] == 1
    fan_out = fanning.temporal.get_workflow_handle(fan_out_workflow_id(app_id, "evt_many"))
    assert await fan_out.result() == ENDPOINTS
    paths = Counter(r.path for r in receiver.requests)
    assert paths == Counter({f"/e{n}": 1 for n in range(ENDPOINTS)})
    for request in receiver.requests:
        assert request.body == b'{"rows":3}'
        Webhook(secrets[request.path]).verify(request.body, request.headers)


async def test_a_delivery_not_yet_started_reads_as_pending(
    fanning: Hookline, receiver: Receiver
) -> None:
    app_id = await fanning.create_app()
    for n in range(ENDPOINTS):
        await fanning.create_endpoint(app_id, receiver.url_for(f"/e{n}"))
    # With no worker, the fan-out workflow cannot start the deliveries yet.
    await fanning.stop_worker()

    accepted = await fanning.send_event(app_id, "batch.completed", {})
    delivery_id = accepted["deliveries"][0]["id"]
    view = await fanning.delivery(app_id, delivery_id)
    status, retry = await fanning.call("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")

    assert view["status"] == "pending" and view["attempts"] == 0
    assert view["event_type"] == "batch.completed"
    assert view["url"] in {receiver.url_for(f"/e{n}") for n in range(ENDPOINTS)}
    assert status == 409 and retry["error"]["code"] == "not_started"
    await fanning.start_worker()
    await fanning.wait_status(app_id, delivery_id, "succeeded")
    await wait_for(lambda: len(receiver.requests) == ENDPOINTS, what="every delivery")


async def test_a_delivery_temporal_no_longer_has_is_not_found(
    fanning: Hookline, receiver: Receiver
) -> None:
    app_id = await fanning.create_app()
    endpoint = await fanning.create_endpoint(app_id, receiver.url)
    # An event recorded with a delivery that Temporal does not know and no fan-out will
    # start: what a delivery past the namespace's retention looks like.
    ref = DeliveryRef(
        id=delivery_id(app_id, "evt_gone", endpoint["id"]),
        app_id=app_id,
        event_id="evt_gone",
        endpoint_id=endpoint["id"],
        created_at=datetime.now(UTC),
    )
    async with opened_registry(fanning.settings) as registry:
        await registry.events.record(app_id, "evt_gone", "batch.completed", [ref], "{}")

    status, body = await fanning.call("GET", f"/v1/apps/{app_id}/deliveries/{ref.id}")
    retry_status, _ = await fanning.call("POST", f"/v1/apps/{app_id}/deliveries/{ref.id}/retry")

    assert status == 404 and body["error"]["code"] == "not_found"
    assert retry_status == 404


async def test_a_retried_event_keeps_the_endpoints_its_fan_out_started_with(
    fanning: Hookline, receiver: Receiver
) -> None:
    app_id = await fanning.create_app()
    first = [await fanning.create_endpoint(app_id, receiver.url_for(f"/e{n}")) for n in range(4)]
    # A first request started the fan-out, then died before recording the event ...
    await start_fan_out(
        fanning.temporal,
        fanning.settings,
        EventFanOut(
            app_id=app_id,
            event_id="evt_retried",
            event_type="batch.completed",
            body='{"n":1}',
            endpoint_ids=[endpoint["id"] for endpoint in first],
        ),
    )
    # ... and an endpoint was added before the client's retry.
    await fanning.create_endpoint(app_id, receiver.url_for("/late"))

    accepted = await fanning.send_event(app_id, "batch.completed", {"n": 1}, id="evt_retried")

    assert sorted(d["endpoint_id"] for d in accepted["deliveries"]) == sorted(
        endpoint["id"] for endpoint in first
    )
    for delivery in accepted["deliveries"]:
        await fanning.wait_status(app_id, delivery["id"], "succeeded")
    assert sorted(r.path for r in receiver.requests) == [f"/e{n}" for n in range(4)]

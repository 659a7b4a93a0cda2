"""End to end: events through the API reach real receivers, signed and byte-identical."""

from __future__ import annotations

import json

import pytest
from standardwebhooks.webhooks import Webhook

from tests.harness import Hookline, Receiver, wait_for


async def test_fan_out_respects_event_type_filters(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    every = await hookline.create_endpoint(app_id, receiver.url_for("/every"))
    batches = await hookline.create_endpoint(
        app_id, receiver.url_for("/batches"), event_types=["batch.*"]
    )
    await hookline.create_endpoint(app_id, receiver.url_for("/jobs"), event_types=["job.failed"])

    event = await hookline.send_event(app_id, "batch.completed", {"batch": 42})

    assert sorted(d["endpoint_id"] for d in event["deliveries"]) == sorted(
        [every["id"], batches["id"]]
    )
    for delivery in event["deliveries"]:
        view = await hookline.wait_status(app_id, delivery["id"], "succeeded")
        assert view["attempts"] == 1
        assert view["last_attempt"]["status_code"] == 200
        assert view["event_type"] == "batch.completed"
    assert len(receiver.requests) == 2
    assert sorted(r.path for r in receiver.requests) == ["/batches", "/every"]
    assert {r.body for r in receiver.requests} == {b'{"batch":42}'}


async def test_receiver_verifies_signature_with_standardwebhooks(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, headers={"X-Customer": "acme"})
    payload = {"job": "j-1", "note": "café ☕", "n": [1, 2.5, None]}

    event = await hookline.send_event(app_id, "job.failed", payload, id="evt_sig_1")
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    [request] = receiver.requests
    verified = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert verified == payload
    assert request.headers["webhook-id"] == "evt_sig_1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("Hookline")
    assert request.headers["X-Customer"] == "acme"
    assert json.loads(request.body) == payload


async def test_tampered_body_fails_verification(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    event = await hookline.send_event(app_id, "job.failed", {"amount": 10})
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    [request] = receiver.requests
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(endpoint["secret"]).verify(b'{"amount":1000}', request.headers)


async def test_failing_twice_then_succeeding_sends_identical_bodies(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(500, 502)
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)

    event = await hookline.send_event(app_id, "batch.completed", {"rows": list(range(50))})
    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert view["attempts"] == 3
    assert view["last_attempt"]["status_code"] == 200


async def test_retrying_delivery_reports_attempts_and_last_status(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.default = (503, {})
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id,
        receiver.url,
        retry={"initial_interval_s": 60, "max_interval_s": 60, "window_s": 3600},
    )
    event = await hookline.send_event(app_id, "batch.completed", {})

    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "retrying")

    assert view["attempts"] == 1
    assert view["last_attempt"]["status_code"] == 503
    assert view["last_attempt"]["error"] == "HTTP 503"
    assert view["next_attempt_at"] is not None


async def test_duplicate_event_id_delivers_once(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)

    first = await hookline.send_event(app_id, "batch.completed", {"v": 1}, id="evt_dup")
    second = await hookline.send_event(app_id, "batch.completed", {"v": 1}, id="evt_dup")
    by_header = await hookline.ok(
        "POST",
        f"/v1/apps/{app_id}/events",
        {"type": "batch.completed", "payload": {"v": 1}},
        headers={"Idempotency-Key": "evt_dup"},
    )

    assert first["duplicate"] is False
    assert second["duplicate"] is True and by_header["duplicate"] is True
    assert [d["id"] for d in second["deliveries"]] == [d["id"] for d in first["deliveries"]]
    assert [d["id"] for d in by_header["deliveries"]] == [d["id"] for d in first["deliveries"]]
    await hookline.wait_status(app_id, first["deliveries"][0]["id"], "succeeded")
    again = await hookline.send_event(app_id, "batch.completed", {"v": 1}, id="evt_dup")
    assert again["deliveries"][0]["status"] == "succeeded"
    assert len(receiver.requests) == 1


async def test_event_matching_no_endpoint_is_accepted_empty(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    event = await hookline.send_event(app_id, "nobody.listens", {"x": 1})
    assert event["deliveries"] == []


async def test_app_uid_addresses_the_app(hookline: Hookline, receiver: Receiver) -> None:
    app = await hookline.ok("POST", "/v1/apps", {"name": "Globex", "uid": "globex"})
    await hookline.create_endpoint("globex", receiver.url)
    event = await hookline.send_event("globex", "batch.completed", {"ok": True})
    view = await hookline.wait_status(app["id"], event["deliveries"][0]["id"], "succeeded")
    assert view["id"] == event["deliveries"][0]["id"]
    assert (await hookline.ok("GET", "/v1/apps/globex"))["id"] == app["id"]


async def test_endpoint_url_change_applies_to_next_attempt(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(500)
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url_for("/old"), retry={"initial_interval_s": 2, "max_interval_s": 2}
    )
    event = await hookline.send_event(app_id, "batch.completed", {})
    await wait_for(lambda: len(receiver.requests) == 1, what="first attempt")
    await hookline.ok(
        "PATCH",
        f"/v1/apps/{app_id}/endpoints/{endpoint['id']}",
        {"url": receiver.url_for("/new")},
    )
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    assert [r.path for r in receiver.requests] == ["/old", "/new"]

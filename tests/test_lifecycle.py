"""The delivery lifecycle: attempt log, test sends, events, callbacks, schedules, disabling."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

from hookline.storage.attempt_log import LoggedAttempt
from hookline.storage.registry import opened_registry
from hookline.worker.schedules import purge_schedule_id
from tests.harness import Hookline, Receiver, wait_for


async def test_attempt_log_lists_every_attempt_with_the_response(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(500, 502)
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    event = await hookline.send_event(app_id, "batch.completed", {"n": 1})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")

    log = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries/{delivery_id}/attempts")

    assert [a["attempt"] for a in log["data"]] == [1, 2, 3]
    assert [a["status_code"] for a in log["data"]] == [500, 502, 200]
    assert [a["error"] for a in log["data"]] == ["HTTP 500", "HTTP 502", None]
    assert all(a["response_body"] == "ok" for a in log["data"])
    times = [datetime.fromisoformat(a["at"]) for a in log["data"]]
    assert times == sorted(times)
    status, body = await hookline.call("GET", f"/v1/apps/{app_id}/deliveries/dlv_nope/attempts")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_attempt_log_keeps_only_the_first_kilobyte_of_a_response(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    receiver.body = "x" * 5000
    event = await hookline.send_event(app_id, "batch.completed", {})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")

    log = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries/{delivery_id}/attempts")

    assert log["data"][0]["response_body"] == "x" * 1024


async def test_scheduled_purge_drops_attempts_past_retention(hookline: Hookline) -> None:
    old = datetime.now(UTC) - timedelta(days=hookline.settings.attempt_log_retention_days + 1)
    recent = datetime.now(UTC) - timedelta(days=1)
    async with opened_registry(hookline.settings) as registry:
        for at, delivery in ((old, "dlv_old"), (recent, "dlv_recent")):
            await registry.attempts.record(
                LoggedAttempt("app_purge", delivery, "ep_x", 1, at, 500, 10, "HTTP 500", None)
            )

        schedule = hookline.temporal.get_schedule_handle(purge_schedule_id(hookline.settings))
        await schedule.trigger()

        async def purged() -> bool:
            return not await registry.attempts.list_for("app_purge", "dlv_old")

        await wait_for(purged, what="the old attempt to be purged")
        assert len(await registry.attempts.list_for("app_purge", "dlv_recent")) == 1


async def test_housekeeping_drops_previous_secrets_after_their_grace(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    rotate = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/secret/rotate"
    await hookline.ok("POST", rotate, {"grace_s": 0})
    async with opened_registry(hookline.settings) as registry:
        before = await registry.endpoints.get(endpoint["id"])
        assert before is not None and before.previous_secret == endpoint["secret"]

        schedule = hookline.temporal.get_schedule_handle(purge_schedule_id(hookline.settings))
        await schedule.trigger()

        async def dropped() -> bool:
            found = await registry.endpoints.get(endpoint["id"])
            return found is not None and found.previous_secret is None

        await wait_for(dropped, what="the expired previous secret to be dropped")


async def test_test_send_delivers_a_signed_webhook_test_event(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, event_types=["batch.completed"])
    base = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/test"

    default = await hookline.ok("POST", base, {})
    custom = await hookline.ok("POST", base, {"payload": {"hello": "world"}})

    assert default["type"] == custom["type"] == "webhook.test"
    for sent in (default, custom):
        [delivery] = sent["deliveries"]
        assert delivery["endpoint_id"] == endpoint["id"]
        await hookline.wait_status(app_id, delivery["id"], "succeeded")
    bodies = [Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in receiver.requests]
    assert sorted(map(str, bodies)) == sorted(
        map(str, [{"type": "webhook.test"}, {"hello": "world"}])
    )
    status, body = await hookline.call("POST", f"/v1/apps/{app_id}/endpoints/ep_nope/test", {})
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_events_can_be_read_back_and_listed(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, event_types=["job.*"])
    sent = [
        await hookline.send_event(app_id, event_type, {"i": i}, id=f"evt_list_{i}")
        for i, event_type in enumerate(["job.failed", "batch.completed", "job.failed", "job.done"])
    ]
    await hookline.wait_status(app_id, sent[0]["deliveries"][0]["id"], "succeeded")

    one = await hookline.ok("GET", f"/v1/apps/{app_id}/events/evt_list_0")
    assert one["payload"] == {"i": 0} and one["type"] == "job.failed"
    assert one["deliveries"] == [
        {**sent[0]["deliveries"][0], "status": "succeeded"},
    ]
    assert (await hookline.ok("GET", f"/v1/apps/{app_id}/events/evt_list_1"))["deliveries"] == []

    base = f"/v1/apps/{app_id}/events"
    everything = await hookline.ok("GET", base)
    assert [e["id"] for e in everything["data"]] == [f"evt_list_{i}" for i in (3, 2, 1, 0)]
    failed = await hookline.ok("GET", f"{base}?type=job.failed")
    assert [e["id"] for e in failed["data"]] == ["evt_list_2", "evt_list_0"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await hookline.ok("GET", f"{base}?since={future.replace('+', '%2B')}"))["data"] == []

    pages: list[str] = []
    cursor = ""
    for _ in range(10):
        page = await hookline.ok("GET", f"{base}?limit=3{cursor}")
        pages += [e["id"] for e in page["data"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert pages == [f"evt_list_{i}" for i in (3, 2, 1, 0)]

    for bad in ("?since=yesterday", "?type=not%20a%20type", "?limit=0", "?cursor=forged"):
        status, body = await hookline.call("GET", base + bad)
        assert status == 422 and body["error"]["code"] == "validation_error", bad
    status, body = await hookline.call("GET", f"{base}/evt_missing")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_callback_url_is_signed_with_the_app_secret_and_rotates(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url_for("/registered"))
    first = (await hookline.ok("GET", f"/v1/apps/{app_id}/secret"))["secret"]

    event = await hookline.send_event(
        app_id, "job.done", {"job": 1}, callback_url=receiver.url_for("/job-1")
    )
    [delivery] = event["deliveries"]
    assert delivery["endpoint_id"] == "callback"
    await hookline.wait_status(app_id, delivery["id"], "succeeded")
    [request] = receiver.requests
    assert request.path == "/job-1"  # no fan-out to the registered endpoint
    assert Webhook(first).verify(request.body, request.headers) == {"job": 1}

    rotated = await hookline.ok("POST", f"/v1/apps/{app_id}/secret/rotate", {"grace_s": 600})
    assert rotated["secret"] != first and rotated["previous_secret_expires_at"]
    event = await hookline.send_event(
        app_id, "job.done", {"job": 2}, callback_url=receiver.url_for("/job-2")
    )
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    latest = receiver.requests[-1]
    assert len(latest.headers["webhook-signature"].split(" ")) == 2
    for secret in (first, rotated["secret"]):
        Webhook(secret).verify(latest.body, latest.headers)

    status, body = await hookline.call(
        "POST",
        f"/v1/apps/{app_id}/events",
        {"type": "a.b", "payload": {}, "callback_url": "ftp://x"},
    )
    assert status == 422 and body["error"]["code"] == "invalid_url"


async def test_explicit_schedule_sets_each_delay_then_fails(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.default = (500, {})
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, retry={"schedule_s": [0, 1, 4]})
    event = await hookline.send_event(app_id, "batch.completed", {})

    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    assert view["attempts"] == 3
    first, second, third = (r.at for r in receiver.requests)
    assert 0.5 <= second - first < 3.5, second - first
    assert 3.5 <= third - second < 7, third - second


async def test_disabled_endpoint_gets_no_new_deliveries_until_re_enabled(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"

    disabled = await hookline.ok("PATCH", path, {"disabled": True})
    assert disabled["disabled"] is True and disabled["disabled_reason"]
    assert (await hookline.send_event(app_id, "batch.completed", {}))["deliveries"] == []

    enabled = await hookline.ok("PATCH", path, {"disabled": False})
    assert enabled["disabled"] is False and enabled["disabled_reason"] is None
    event = await hookline.send_event(app_id, "batch.completed", {"back": True})
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    assert [r.body for r in receiver.requests] == [b'{"back":true}']


async def test_explicit_schedule_waits_before_the_first_attempt(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, retry={"schedule_s": [2, 1]})
    started = time.monotonic()
    event = await hookline.send_event(app_id, "batch.completed", {})

    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    assert view["attempts"] == 1
    assert receiver.requests[0].at - started >= 1.5

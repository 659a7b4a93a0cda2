"""Retries: backoff, Retry-After, 410, exhaustion, manual retry, and a worker that goes away."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.conftest import free_port
from tests.harness import Hookline, Receiver, wait_for

LONG_BACKOFF = {"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200}


async def test_retry_after_sets_the_next_delay_capped_by_max_interval(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond((503, {"Retry-After": "4"}), (429, {"Retry-After": "3600"}))
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id,
        receiver.url,
        retry={"initial_interval_s": 1, "max_interval_s": 6, "window_s": 600},
    )
    event = await hookline.send_event(app_id, "quota.warning", {"used": 0.9})
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    first, second, third = (r.at for r in receiver.requests)
    # Retry-After: 4 replaces the 1 s backoff...
    assert 3.5 <= second - first < 6, second - first
    # ...and an hour-long Retry-After is capped by the endpoint's 6 s maximum interval.
    assert 5.5 <= third - second < 10, third - second


async def test_gone_ends_the_delivery_without_retries(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(410)
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    event = await hookline.send_event(app_id, "job.failed", {"job": 7})

    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    assert view["attempts"] == 1
    assert view["last_attempt"]["status_code"] == 410
    assert len(receiver.requests) == 1


async def test_exhausted_delivery_is_delivered_by_a_manual_retry(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.default = (500, {})
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id, receiver.url, retry={"initial_interval_s": 1, "max_interval_s": 1, "window_s": 3}
    )
    event = await hookline.send_event(app_id, "batch.completed", {"batch": 9})
    delivery_id = event["deliveries"][0]["id"]
    failed = await hookline.wait_status(app_id, delivery_id, "failed")
    assert failed["attempts"] >= 2
    assert failed["last_attempt"]["status_code"] == 500
    listed = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries?status=failed")
    assert [d["id"] for d in listed["data"]] == [delivery_id]

    receiver.default = (200, {})
    status, body = await hookline.call("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")
    assert status == 202, body
    done = await hookline.wait_status(app_id, delivery_id, "succeeded")

    assert done["attempts"] == failed["attempts"] + 1
    assert done["created_at"] == failed["created_at"]
    base = f"/v1/apps/{app_id}/deliveries"
    assert (await hookline.ok("GET", f"{base}?status=failed"))["data"] == []
    everything = await hookline.ok("GET", base)
    assert [(d["id"], d["status"]) for d in everything["data"]] == [(delivery_id, "succeeded")]
    assert len({r.body for r in receiver.requests}) == 1
    assert len(receiver.requests) == failed["attempts"] + 1
    status, body = await hookline.call("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")
    assert status == 409 and body["error"]["code"] == "already_succeeded"


async def test_retry_signal_cuts_a_long_backoff_short(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(500)
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, retry=LONG_BACKOFF)
    event = await hookline.send_event(app_id, "batch.completed", {})
    delivery_id = event["deliveries"][0]["id"]
    waiting = await hookline.wait_status(app_id, delivery_id, "retrying")
    next_at = datetime.fromisoformat(waiting["next_attempt_at"])
    assert (next_at - datetime.now(UTC)).total_seconds() > 3000

    status, _ = await hookline.call("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")
    assert status == 202
    done = await hookline.wait_status(app_id, delivery_id, "succeeded", timeout=15)

    assert done["attempts"] == 2
    assert len(receiver.requests) == 2


async def test_worker_stopped_mid_backoff_delivers_after_restart(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(500)
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id, receiver.url, retry={"initial_interval_s": 2, "max_interval_s": 2}
    )
    event = await hookline.send_event(app_id, "batch.completed", {"n": 1})
    delivery_id = event["deliveries"][0]["id"]
    waiting = await hookline.wait_status(app_id, delivery_id, "retrying")

    await hookline.stop_worker()
    due = datetime.fromisoformat(waiting["next_attempt_at"])
    # Let the backoff run out while no worker is there to take the attempt.
    await wait_for(lambda: datetime.now(UTC) > due, what="backoff to expire")
    assert len(receiver.requests) == 1
    await hookline.start_worker()

    done = await hookline.wait_status(app_id, delivery_id, "succeeded")
    assert done["attempts"] == 2
    assert len(receiver.requests) == 2


async def test_connection_refused_is_retried_with_a_clear_error(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id, f"http://127.0.0.1:{free_port()}/closed", retry=LONG_BACKOFF
    )
    event = await hookline.send_event(app_id, "batch.completed", {})

    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "retrying")

    assert view["last_attempt"]["status_code"] is None
    assert view["last_attempt"]["error"].startswith("cannot connect to 127.0.0.1")


async def test_slow_receiver_times_out_and_is_retried(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.delays = [5.0]
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, timeout_s=1)
    event = await hookline.send_event(app_id, "batch.completed", {})

    done = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    assert done["attempts"] == 2
    assert len(receiver.requests) == 2


async def test_redirects_are_not_followed(hookline: Hookline, receiver: Receiver) -> None:
    receiver.default = (302, {"Location": receiver.url_for("/elsewhere")})
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, retry=LONG_BACKOFF)
    event = await hookline.send_event(app_id, "batch.completed", {})

    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "retrying")

    assert view["last_attempt"]["status_code"] == 302
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_deleted_endpoint_ends_its_pending_deliveries(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(500)
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, retry=LONG_BACKOFF)
    event = await hookline.send_event(app_id, "batch.completed", {})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "retrying")

    await hookline.ok("DELETE", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}")
    await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")

    view = await hookline.wait_status(app_id, delivery_id, "failed")
    assert view["last_attempt"]["error"] == "endpoint was deleted"
    assert len(receiver.requests) == 1
    # No retry can mend a deleted endpoint: the run closes, not held open for one.
    closed = await wait_for(
        lambda: _finished(hookline, app_id, delivery_id), what="the delivery to close"
    )
    assert closed["status"] == "failed"


async def _finished(hookline: Hookline, app_id: str, delivery_id: str) -> dict[str, Any] | None:
    view = await hookline.delivery(app_id, delivery_id)
    return view if view["finished_at"] is not None else None


async def test_window_closing_mid_attempt_keeps_the_attempt_count(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(500)
    receiver.delays = [0.0, 30.0]  # the second attempt is still waiting when the window closes
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id,
        receiver.url,
        timeout_s=20,
        retry={"initial_interval_s": 1, "max_interval_s": 1, "window_s": 4},
    )
    event = await hookline.send_event(app_id, "batch.completed", {})

    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    assert view["attempts"] >= 1
    assert view["last_attempt"] is not None and view["last_attempt"]["status_code"] == 500


async def test_disabling_an_endpoint_stops_its_retries(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.default = (500, {})
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url, retry={"initial_interval_s": 1, "max_interval_s": 1, "window_s": 600}
    )
    event = await hookline.send_event(app_id, "batch.completed", {})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "retrying")
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"

    await hookline.ok("PATCH", path, {"disabled": True})

    view = await hookline.wait_status(app_id, delivery_id, "failed")
    assert view["last_attempt"]["error"] == "endpoint is disabled"
    sent = len(receiver.requests)
    for method, action in (
        ("POST", f"{path}/test"),
        ("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry"),
    ):
        status, body = await hookline.call(method, action, {})
        assert status == 409 and body["error"]["code"] == "endpoint_disabled"
    assert len(receiver.requests) == sent

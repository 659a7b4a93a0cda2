"""What a delivery says about itself is true: where each attempt went after its endpoint's URL
changed, when the next attempt is after a manual retry, one time format, and the same
creation time as its event."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from hookline.config.settings import Settings
from tests.harness import Hookline, Receiver

LONG_BACKOFF = {"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
TIME_FIELDS = {"at", "created_at", "updated_at", "next_attempt_at", "finished_at", "failing_since"}


def _times(value: Any) -> list[str]:
    """Every time field's value in an API answer, however deep."""
    if isinstance(value, list):
        return [t for item in value for t in _times(item)]
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k in TIME_FIELDS and isinstance(v, str)]
        return found + [t for v in value.values() for t in _times(v)]
    return []


async def test_each_attempt_records_where_it_went_when_the_url_changes(
    hookline: Hookline, receiver: Receiver
) -> None:
    async with Receiver.running() as moved:
        receiver.default = (500, {})
        app_id = await hookline.create_app()
        # A token in the query: reads of deliveries and attempts leave it out.
        endpoint = await hookline.create_endpoint(
            app_id, receiver.url + "?token=s3cret", retry=LONG_BACKOFF
        )
        event = await hookline.send_event(app_id, "batch.completed", {"batch": 1})
        delivery_id = event["deliveries"][0]["id"]
        failing = await hookline.wait_status(app_id, delivery_id, "retrying")
        assert (failing["url"], failing["endpoint_url"]) == (receiver.url, None)

        await hookline.ok(
            "PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", {"url": moved.url}
        )
        before_retry = await hookline.delivery(app_id, delivery_id)
        # The last attempt went to the old URL; the next goes to the endpoint's new one.
        assert (before_retry["url"], before_retry["endpoint_url"]) == (receiver.url, moved.url)

        retried = await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")
        done = await hookline.wait_status(app_id, delivery_id, "succeeded")

        assert (done["url"], done["endpoint_url"]) == (moved.url, None)
        assert len(moved.requests) == 1 and moved.requests[0].body == receiver.requests[0].body
        log = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries/{delivery_id}/attempts")
        assert [(a["url"], a["status_code"]) for a in log["data"]] == [
            (receiver.url, 500),
            (moved.url, 200),
        ]
        # The retry's answer says the next attempt is now, not null.
        assert retried["status"] == "retrying" and retried["next_attempt_at"] is not None
        asked = datetime.fromisoformat(retried["next_attempt_at"])
        assert abs((asked - datetime.now(UTC)).total_seconds()) < 30
        for answer in (failing, before_retry, retried, done, log):
            assert all(RFC3339_UTC.fullmatch(t) for t in _times(answer)), _times(answer)
            assert "s3cret" not in json.dumps(answer)


async def test_a_failed_delivery_restarted_by_hand_says_its_next_attempt_is_now(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # No hold: the failed run closes, and the retry starts a new run (its other path).
    retry = settings.retry.model_copy(update={"failed_hold_s": 0})
    no_hold = settings.model_copy(update={"retry": retry})
    async with Hookline.running(no_hold, temporal_client, settings.api_keys[0]) as hookline:
        await _restarted_by_hand(hookline, receiver)


async def _restarted_by_hand(hookline: Hookline, receiver: Receiver) -> None:
    receiver.default = (500, {})
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id, receiver.url, retry={"initial_interval_s": 1, "max_interval_s": 1, "window_s": 2}
    )
    event = await hookline.send_event(app_id, "batch.completed", {})
    delivery_id = event["deliveries"][0]["id"]
    failed = await hookline.wait_status(app_id, delivery_id, "failed")
    assert failed["finished_at"] is not None  # closed: the retry starts a new run
    receiver.default = (200, {})

    retried = await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")

    assert retried["status"] == "retrying" and retried["finished_at"] is None
    assert retried["attempts"] == failed["attempts"]
    assert retried["next_attempt_at"] is not None
    assert retried["created_at"] == failed["created_at"] == event["created_at"]
    done = await hookline.wait_status(app_id, delivery_id, "succeeded")
    # The new run keeps the delivery's creation time, and its attempts go on from the old's.
    assert done["created_at"] == event["created_at"]
    assert done["attempts"] == failed["attempts"] + 1


async def test_an_event_and_its_deliveries_share_their_creation_time(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # Three endpoints inline, and a fan-out workflow for more than two.
    fan_out = settings.model_copy(update={"fan_out_inline_max": 2})
    async with Hookline.running(fan_out, temporal_client, settings.api_keys[0]) as hookline:
        for endpoints in (1, 3):
            app_id = await hookline.create_app()
            for _ in range(endpoints):
                await hookline.create_endpoint(app_id, receiver.url)
            event = await hookline.send_event(app_id, "batch.completed", {})
            read = await hookline.ok("GET", f"/v1/apps/{app_id}/events/{event['id']}")
            assert read["created_at"] == event["created_at"]
            for delivery in event["deliveries"]:
                view = await hookline.wait_status(app_id, delivery["id"], "succeeded")
                assert view["created_at"] == event["created_at"], (endpoints, view)
            listed = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries")
            assert {d["created_at"] for d in listed["data"]} == {event["created_at"]}

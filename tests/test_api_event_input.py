"""Event types, event ids and Idempotency-Key: what the API refuses and what it accepts."""

from __future__ import annotations

import pytest

from tests.api_calls import app_with_endpoint, expect
from tests.harness import Hookline, Receiver

pytestmark = pytest.mark.shared_stack
"""These tests only check what the API answers: they share one running Hookline."""


# Event types and event ids


@pytest.mark.parametrize(
    "event_type",
    ["has space", "a..b", ".a", "a.", "", "a.*", "*", "a/b", "café", "a" * 257, "a\nb"],
    ids=repr,
)
async def test_invalid_event_type_is_422(hookline: Hookline, event_type: str) -> None:
    app_id = await hookline.create_app()
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/events",
        422,
        "validation_error",
        json_body={"type": event_type, "payload": {}},
    )


@pytest.mark.parametrize(
    "pattern", ["has space", "a..b", "*", ".*", "a.*.b", "a*", "a.**", "", "a.", "é"], ids=repr
)
async def test_invalid_event_type_pattern_of_endpoint_is_422(
    hookline: Hookline, pattern: str
) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        422,
        "validation_error",
        json_body={"url": "https://e.com/", "event_types": [pattern]},
    )
    await expect(
        hookline,
        "PATCH",
        f"/v1/apps/{app_id}/endpoints/{endpoint_id}",
        422,
        "validation_error",
        json_body={"event_types": ["ok.type", pattern]},
    )


async def test_too_many_event_types_or_headers_is_422(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    limit = hookline.settings.max_event_types_per_endpoint
    too_many_types = [f"t{i}" for i in range(limit + 1)]
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        422,
        "validation_error",
        json_body={"url": "https://e.com/", "event_types": too_many_types},
    )
    headers = {f"X-H{i}": "v" for i in range(hookline.settings.max_headers_per_endpoint + 1)}
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        422,
        "validation_error",
        json_body={"url": "https://e.com/", "headers": headers},
    )
    assert (await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints"))["data"] == []


@pytest.mark.parametrize(
    "event_id", ["has space", "a/b", "é", "evt#1", "evt?x", "", "e" * 129, "a\tb"], ids=repr
)
async def test_invalid_event_id_is_422(hookline: Hookline, event_id: str) -> None:
    app_id = await hookline.create_app()
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/events",
        422,
        "validation_error",
        json_body={"type": "a.b", "payload": {}, "id": event_id},
    )


async def test_event_id_of_128_allowed_characters_is_accepted(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    event_id = ("Az09_.:-" * 16)[:128]
    event = await hookline.send_event(app_id, "a.b", {}, id=event_id)
    assert event["id"] == event_id


@pytest.mark.parametrize(
    "key", ["has space", "a/b", "k" * 129, "", "evt#1", "a,b"], ids=lambda v: repr(v)[:20]
)
async def test_invalid_idempotency_key_is_422(hookline: Hookline, key: str) -> None:
    app_id = await hookline.create_app()
    message = await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/events",
        422,
        "validation_error",
        json_body={"type": "a.b", "payload": {}},
        headers={"Idempotency-Key": key},
    )
    assert "Idempotency-Key" in message


async def test_id_and_idempotency_key_must_agree(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    message = await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/events",
        422,
        "validation_error",
        json_body={"type": "a.b", "payload": {}, "id": "evt_1"},
        headers={"Idempotency-Key": "evt_2"},
    )
    assert "differ" in message
    # Agreeing values are one event id.
    event = await hookline.ok(
        "POST",
        f"/v1/apps/{app_id}/events",
        {"type": "a.b", "payload": {}, "id": "evt_1"},
        headers={"Idempotency-Key": "evt_1"},
    )
    assert event["id"] == "evt_1"
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["evt_1"]

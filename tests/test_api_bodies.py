"""Request bodies: not JSON, not an object, unknown fields, wrong types, and sizes over the
limits each get their exact status and the error shape."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.api_calls import GOOD_SECRET, app_with_endpoint, assert_error, expect, send
from tests.harness import Hookline, Receiver, wait_for

pytestmark = pytest.mark.shared_stack
"""These tests only check what the API answers: they share one running Hookline."""


# Bodies that are not JSON, or not an object


MALFORMED_JSON = [
    "{",
    '{"name": "x",}',
    "{'name': 'x'}",
    "not json",
    '{"name": "x"} trailing',
    b"\xff\xfe\x00garbage",
    '{"name": "\\ud800"',
]


def _malformed_ids(value: object) -> str:
    return repr(value)[:20]


@pytest.mark.parametrize("body", MALFORMED_JSON, ids=_malformed_ids)
async def test_malformed_json_is_422_invalid_json(hookline: Hookline, body: str | bytes) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    for method, path in [
        ("POST", "/v1/apps"),
        ("POST", f"/v1/apps/{app_id}/endpoints"),
        ("PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint_id}"),
        ("POST", f"/v1/apps/{app_id}/events"),
    ]:
        message = await expect(
            hookline,
            method,
            path,
            422,
            "invalid_json",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert message == "request body is not valid JSON"


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'"text"', b"42", b"true"])
async def test_empty_or_non_object_body_is_422(hookline: Hookline, body: bytes) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    for method, path in [
        ("POST", "/v1/apps"),
        ("POST", f"/v1/apps/{app_id}/endpoints"),
        ("PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint_id}"),
        ("POST", f"/v1/apps/{app_id}/events"),
    ]:
        await expect(hookline, method, path, 422, "validation_error", data=body)
    assert (await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints"))["data"][0]["url"] == (
        "https://example.com/hook"
    )


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
async def test_non_standard_json_numbers_in_payload_are_refused(
    hookline: Hookline, token: str
) -> None:
    app_id = await hookline.create_app()
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/events",
        422,
        "invalid_json",
        data='{"type": "a.b", "payload": {"x": ' + token + "}}",
    )


# Unknown fields and wrong types


async def test_unknown_fields_are_422(hookline: Hookline) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    endpoints = f"/v1/apps/{app_id}/endpoints"
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/v1/apps", {"name": "a", "colour": "red"}, "colour"),
        ("POST", endpoints, {"url": "https://e.com/", "secrett": GOOD_SECRET}, "secrett"),
        ("POST", endpoints, {"url": "https://e.com/", "retry": {"initial": 5}}, "retry.initial"),
        ("PATCH", f"{endpoints}/{endpoint_id}", {"uri": "https://e.com/"}, "uri"),
        ("PATCH", f"{endpoints}/{endpoint_id}", {"secret": GOOD_SECRET}, "secret"),
        ("PATCH", f"{endpoints}/{endpoint_id}", {"retry": {"tries": 3}}, "retry.tries"),
        ("POST", f"/v1/apps/{app_id}/events", {"type": "a", "payload": 1, "ts": 1}, "ts"),
    ]
    for method, path, body, field in cases:
        reply = await send(hookline, method, path, json_body=body)
        message = assert_error(reply, 422, "validation_error")
        assert field in message, (body, message)
        assert [d["field"] for d in reply.body["error"]["details"]] == [field], reply.text


WRONG_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("apps", {"name": 123}),
    ("apps", {"name": None}),
    ("apps", {"name": ""}),
    ("apps", {"name": "n" * 257}),
    ("apps", {"name": ["a"]}),
    ("apps", {}),
    ("apps", {"name": "a", "uid": 5}),
    ("endpoints", {}),
    ("endpoints", {"url": 123}),
    ("endpoints", {"url": ""}),
    ("endpoints", {"url": "https://e.com/", "event_types": "batch.completed"}),
    ("endpoints", {"url": "https://e.com/", "event_types": [1]}),
    ("endpoints", {"url": "https://e.com/", "headers": {"X-Count": 1}}),
    ("endpoints", {"url": "https://e.com/", "headers": {"X-Flag": True}}),
    ("endpoints", {"url": "https://e.com/", "headers": ["X-A: 1"]}),
    ("endpoints", {"url": "https://e.com/", "timeout_s": "fast"}),
    ("endpoints", {"url": "https://e.com/", "retry": "often"}),
    ("endpoints", {"url": "https://e.com/", "retry": {"window_s": "long"}}),
    ("endpoints", {"url": "https://e.com/", "description": 5}),
    ("endpoints", {"url": "https://e.com/", "description": "d" * 1025}),
    ("endpoints", {"url": "https://e.com/", "secret": 12345}),
    ("patch", {"event_types": "batch.completed"}),
    ("patch", {"headers": {"X-Count": 1}}),
    ("patch", {"timeout_s": "fast"}),
    ("events", {"payload": {}}),
    ("events", {"type": "a.b"}),
    ("events", {"type": 5, "payload": {}}),
    ("events", {"type": None, "payload": {}}),
    ("events", {"type": "a.b", "payload": {}, "id": 5}),
]


@pytest.mark.parametrize(("target", "body"), WRONG_BODIES, ids=lambda v: json.dumps(v)[:40])
async def test_wrong_types_and_missing_fields_are_422(
    hookline: Hookline, target: str, body: dict[str, Any]
) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    method, path = {
        "apps": ("POST", "/v1/apps"),
        "endpoints": ("POST", f"/v1/apps/{app_id}/endpoints"),
        "patch": ("PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint_id}"),
        "events": ("POST", f"/v1/apps/{app_id}/events"),
    }[target]
    reply = await send(hookline, method, path, json_body=body)
    assert_error(reply, 422, "validation_error")
    assert reply.body["error"]["details"], reply.text


# Sizes


async def test_payload_over_the_limit_is_413_and_delivers_nothing(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    limit = hookline.settings.max_payload_bytes
    assert limit == 256 * 1024
    big = {"blob": "x" * limit}

    message = await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/events",
        413,
        "payload_too_large",
        json_body={"type": "a.b", "payload": big, "id": "evt_big"},
    )
    assert str(limit) in message
    assert receiver.requests == []
    assert (await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries"))["data"] == []

    # A barrier: once a later small event is delivered and listed, the refused one would
    # have shown up too, had anything been started for it.
    small = await hookline.send_event(app_id, "a.b", {"small": True}, id="evt_small")
    await hookline.wait_status(app_id, small["deliveries"][0]["id"], "succeeded")

    async def listed() -> list[dict[str, Any]] | None:
        data = (await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries"))["data"]
        return data or None

    data = await wait_for(listed, what="the small event's delivery to be listed")
    assert [d["event_id"] for d in data] == ["evt_small"]
    assert [r.body for r in receiver.requests] == [b'{"small":true}']
    # The refused event id was not recorded: it can be used again for a small payload.
    again = await hookline.send_event(app_id, "a.b", {}, id="evt_big")
    assert again["duplicate"] is False


async def test_payload_limit_counts_serialized_utf8_bytes(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    limit = hookline.settings.max_payload_bytes
    path = f"/v1/apps/{app_id}/events"

    # A JSON string of n characters serializes to n + 2 bytes (its quotes).
    exactly = await hookline.send_event(app_id, "a.b", "x" * (limit - 2))
    assert exactly["deliveries"] == []
    await expect(
        hookline,
        "POST",
        path,
        413,
        "payload_too_large",
        json_body={"type": "a", "payload": "x" * (limit - 1)},
    )
    # Fewer characters than the limit, but more bytes: "é" is two bytes in UTF-8.
    await expect(
        hookline,
        "POST",
        path,
        413,
        "payload_too_large",
        json_body={"type": "a", "payload": "é" * (limit // 2)},
    )


async def test_request_body_over_max_request_bytes_is_413(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    too_big = hookline.settings.max_request_bytes + 1
    padding = "y" * too_big
    for path, body in (
        ("/v1/apps", {"name": padding}),
        (f"/v1/apps/{app_id}/events", {"type": "a.b", "payload": padding}),
        (f"/v1/apps/{app_id}/endpoints", {"url": "https://e.com/", "description": padding}),
        ("/v1/apps", "{" + " " * too_big + "}"),
    ):
        raw = body if isinstance(body, str) else json.dumps(body)
        await expect(
            hookline,
            "POST",
            path,
            413,
            "payload_too_large",
            # A stream: aiohttp warns about (and the suite errors on) huge in-memory bytes.
            data=io.BytesIO(raw.encode()),
            headers={"Content-Type": "application/json"},
        )
    assert (await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints"))["data"] == []
    assert (await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries"))["data"] == []

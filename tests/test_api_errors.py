"""Every bad input of the HTTP API gets the exact status and the ``{"error": {...}}`` shape."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for

GOOD_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@dataclass
class Reply:
    status: int
    content_type: str
    body: Any
    text: str
    headers: dict[str, str]


async def send(
    hookline: Hookline,
    method: str,
    path: str,
    *,
    data: bytes | str | io.BytesIO | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Reply:
    """One raw request to the API (by default with the test's API key)."""
    http = session or hookline.http
    kwargs: dict[str, Any] = {"headers": headers}
    if json_body is not None:
        kwargs["json"] = json_body
    else:
        kwargs["data"] = data
    async with http.request(method, hookline.api_url + path, **kwargs) as resp:
        text = await resp.text()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return Reply(resp.status, resp.content_type, body, text, dict(resp.headers))


def assert_error(reply: Reply, status: int, code: str) -> str:
    """Assert ``reply`` is the API's error JSON with this status and code; its message."""
    assert reply.status == status, (reply.status, reply.text)
    assert reply.content_type == "application/json", reply.content_type
    assert isinstance(reply.body, dict) and set(reply.body) == {"error"}, reply.text
    error = reply.body["error"]
    assert isinstance(error, dict), reply.text
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, reply.text
    assert error["code"] == code, reply.text
    assert isinstance(error["message"], str) and error["message"], reply.text
    if "details" in error:
        assert isinstance(error["details"], list), reply.text
        for detail in error["details"]:
            assert isinstance(detail["field"], str) and isinstance(detail["message"], str)
    return error["message"]


async def expect(
    hookline: Hookline,
    method: str,
    path: str,
    status: int,
    code: str,
    *,
    json_body: Any = None,
    data: bytes | str | io.BytesIO | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """Make the request and assert the error; the error message."""
    reply = await send(hookline, method, path, json_body=json_body, data=data, headers=headers)
    return assert_error(reply, status, code)


async def app_with_endpoint(
    hookline: Hookline, url: str = "https://example.com/hook"
) -> tuple[str, str]:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, url)
    return app_id, endpoint["id"]


# Authentication


async def test_healthz_is_public(hookline: Hookline) -> None:
    async with aiohttp.ClientSession() as anonymous:
        reply = await send(hookline, "GET", "/healthz", session=anonymous)
        assert (reply.status, reply.body) == (200, {"status": "ok"})
        reply = await send(
            hookline, "GET", "/healthz", session=anonymous, headers={"Authorization": "Bearer no"}
        )
        assert (reply.status, reply.body) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer wrong-key",
        f"Bearer {API_KEY}x",
        f"Bearer {API_KEY[:-1]}",
        f"Bearer {API_KEY.upper()}",
        API_KEY,
        f"Basic {base64.b64encode(f'user:{API_KEY}'.encode()).decode()}",
        f"Basic {API_KEY}",
        f"Token {API_KEY}",
        f"Bearer{API_KEY}",
    ],
    ids=lambda value: repr(value),
)
async def test_bad_authorization_is_401(hookline: Hookline, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with aiohttp.ClientSession() as anonymous:
        for method, path in [
            ("GET", "/v1/apps/app_x"),
            ("POST", "/v1/apps"),
            ("GET", "/v1/apps/app_x/deliveries"),
            ("GET", "/nope"),
        ]:
            reply = await send(
                hookline,
                method,
                path,
                json_body={"name": "x", "uid": "unauthorized-app"} if method == "POST" else None,
                headers=headers,
                session=anonymous,
            )
            message = assert_error(reply, 401, "unauthorized")
            assert API_KEY not in reply.text and API_KEY not in message
    # Nothing was created by the refused request.
    status, _ = await hookline.call("GET", "/v1/apps/unauthorized-app")
    assert status == 404


async def test_bearer_scheme_is_case_insensitive(hookline: Hookline) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for scheme in ("bearer", "BEARER", "Bearer"):
            reply = await send(
                hookline,
                "POST",
                "/v1/apps",
                json_body={"name": "x"},
                headers={"Authorization": f"{scheme} {API_KEY}"},
                session=anonymous,
            )
            assert reply.status == 201, reply.text


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


# Unknown resources


async def test_unknown_app_is_404(hookline: Hookline) -> None:
    for app_id in ("app_doesnotexist", "no-such-uid"):
        base = f"/v1/apps/{app_id}"
        cases: list[tuple[str, str, Any]] = [
            ("GET", base, None),
            ("GET", f"{base}/endpoints", None),
            ("POST", f"{base}/endpoints", {"url": "https://e.com/"}),
            ("GET", f"{base}/endpoints/ep_x", None),
            ("PATCH", f"{base}/endpoints/ep_x", {"description": "x"}),
            ("DELETE", f"{base}/endpoints/ep_x", None),
            ("POST", f"{base}/events", {"type": "a.b", "payload": {}}),
            ("GET", f"{base}/deliveries", None),
            ("GET", f"{base}/deliveries/dlv_x", None),
            ("POST", f"{base}/deliveries/dlv_x/retry", None),
        ]
        for method, path, body in cases:
            message = await expect(hookline, method, path, 404, "not_found", json_body=body)
            assert message == "app not found", (method, path, message)


async def test_unknown_endpoint_is_404(hookline: Hookline) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    other_app = await hookline.create_app("Other")
    for path in (
        f"/v1/apps/{app_id}/endpoints/ep_doesnotexist",
        # An endpoint exists only under its own app.
        f"/v1/apps/{other_app}/endpoints/{endpoint_id}",
    ):
        for method, body in (("GET", None), ("PATCH", {"description": "x"}), ("DELETE", None)):
            message = await expect(hookline, method, path, 404, "not_found", json_body=body)
            assert message == "endpoint not found"
    endpoint = await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints/{endpoint_id}")
    assert endpoint["description"] == ""


async def test_unknown_delivery_is_404(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    other_app = await hookline.create_app("Other")
    event = await hookline.send_event(app_id, "a.b", {})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")

    for path in (
        f"/v1/apps/{app_id}/deliveries/dlv_doesnotexist",
        f"/v1/apps/{other_app}/deliveries/{delivery_id}",
    ):
        message = await expect(hookline, "GET", path, 404, "not_found")
        assert message == "delivery not found"
        message = await expect(hookline, "POST", f"{path}/retry", 404, "not_found")
        assert message == "delivery not found"


async def test_retrying_a_succeeded_delivery_is_409(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    event = await hookline.send_event(app_id, "a.b", {})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")

    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry",
        409,
        "already_succeeded",
    )
    assert len(receiver.requests) == 1


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


# Endpoint URLs, secrets, headers, retry and timeout


def _long_url(length: int) -> str:
    base = "https://example.com/"
    return base + "p" * (length - len(base))


INVALID_URLS = [
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "mailto:ops@example.com",
    "http://",
    "https:///path-only",
    "http:example.com",
    "/relative/hook",
    "example.com/hook",
    "//example.com/hook",
    "http://exa mple.com/",
    "http://example.com/a b",
    " http://example.com/",
    "http://example.com/\n",
    "http://example.com/hook#fragment",
    "http://example.com:99999/",
    "http://example.com:-1/",
    "http://example.com:port/",
    "http://[::1/",
    _long_url(2049),
]


@pytest.mark.parametrize("url", INVALID_URLS, ids=lambda v: repr(v)[:40])
async def test_invalid_url_is_422_invalid_url(hookline: Hookline, url: str) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        422,
        "invalid_url",
        json_body={"url": url},
    )
    await expect(
        hookline,
        "PATCH",
        f"/v1/apps/{app_id}/endpoints/{endpoint_id}",
        422,
        "invalid_url",
        json_body={"url": url},
    )
    endpoints = (await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints"))["data"]
    assert [e["url"] for e in endpoints] == ["https://example.com/hook"]


async def test_url_limits_and_null(hookline: Hookline) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    assert hookline.settings.max_url_length == 2048
    longest = await hookline.create_endpoint(app_id, _long_url(2048))
    assert longest["url"] == _long_url(2048)
    await expect(
        hookline,
        "PATCH",
        f"/v1/apps/{app_id}/endpoints/{endpoint_id}",
        422,
        "invalid_url",
        json_body={"url": None},
    )


BAD_SECRETS = {
    "no prefix": base64.b64encode(b"S" * 32).decode(),
    "wrong prefix": "whsek_" + base64.b64encode(b"S" * 32).decode(),
    "bad base64": "whsec_NotBase64!!ThisIsMySecretValue$$",
    "bad padding": "whsec_" + base64.b64encode(b"S" * 32).decode().rstrip("="),
    "too short": "whsec_" + base64.b64encode(b"short-secret-xyz").decode(),
    "too long": "whsec_" + base64.b64encode(b"L" * 65).decode(),
    "empty": "whsec_",
}


@pytest.mark.parametrize("secret", list(BAD_SECRETS.values()), ids=list(BAD_SECRETS))
async def test_invalid_secret_is_422_and_not_echoed(hookline: Hookline, secret: str) -> None:
    app_id = await hookline.create_app()
    reply = await send(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        json_body={"url": "https://e.com/", "secret": secret},
    )
    message = assert_error(reply, 422, "validation_error")
    assert "secret" in message
    assert secret not in reply.text
    body = secret.removeprefix("whsec_")
    if body:
        assert body not in reply.text
    assert (await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints"))["data"] == []


INVALID_HEADERS: list[dict[str, str]] = [
    {"webhook-signature": "v1,forged"},
    {"Webhook-Id": "evt_forged"},
    {"WEBHOOK-TIMESTAMP": "0"},
    {"Content-Type": "text/plain"},
    {"Host": "evil.example"},
    {"Content-Length": "0"},
    {"Transfer-Encoding": "chunked"},
    {"User-Agent": "me"},
    {"X-Injected": "a\r\nX-Evil: 1"},
    {"X-Injected": "line\nbreak"},
    {"X-Injected": "carriage\rreturn"},
    {"X-Nul": "a\x00b"},
    {"X-Long": "v" * 4097},
    {"Bad Header": "v"},
    {"X:Colon": "v"},
    {"": "v"},
    {"X-Café": "v"},
    {"X-A\r\n": "v"},
    {"(X)": "v"},
]


@pytest.mark.parametrize("headers", INVALID_HEADERS, ids=lambda v: repr(v)[:40])
async def test_invalid_headers_are_422(hookline: Hookline, headers: dict[str, str]) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        422,
        "validation_error",
        json_body={"url": "https://e.com/", "headers": headers},
    )
    await expect(
        hookline,
        "PATCH",
        f"/v1/apps/{app_id}/endpoints/{endpoint_id}",
        422,
        "validation_error",
        json_body={"headers": {"X-Fine": "ok", **headers}},
    )
    endpoint = await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints/{endpoint_id}")
    assert endpoint["headers"] == {}


@pytest.mark.parametrize(
    "retry",
    [
        {"initial_interval_s": 60, "max_interval_s": 10},
        {"initial_interval_s": 5},  # the default max interval in these tests is 1 s
        {"initial_interval_s": 0},
        {"initial_interval_s": 86_401},
        {"backoff_coefficient": 0.5},
        {"backoff_coefficient": 101},
        {"max_interval_s": 0.5},
        {"window_s": 0},
        {"window_s": 30 * 86_400 + 1},
        {"initial_interval_s": -1},
    ],
    ids=lambda v: json.dumps(v),
)
async def test_invalid_retry_override_is_422(hookline: Hookline, retry: dict[str, float]) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        422,
        "validation_error",
        json_body={"url": "https://e.com/", "retry": retry},
    )
    await expect(
        hookline,
        "PATCH",
        f"/v1/apps/{app_id}/endpoints/{endpoint_id}",
        422,
        "validation_error",
        json_body={"retry": retry},
    )
    endpoint = await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints/{endpoint_id}")
    assert endpoint["retry"] is None


@pytest.mark.parametrize("timeout_s", [0, -1, 300.001, 301, 1e9])
async def test_invalid_timeout_is_422(hookline: Hookline, timeout_s: float) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        422,
        "validation_error",
        json_body={"url": "https://e.com/", "timeout_s": timeout_s},
    )
    await expect(
        hookline,
        "PATCH",
        f"/v1/apps/{app_id}/endpoints/{endpoint_id}",
        422,
        "validation_error",
        json_body={"timeout_s": timeout_s},
    )


async def test_timeout_bounds_are_accepted(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    for timeout_s in (0.001, 300):
        endpoint = await hookline.create_endpoint(app_id, "https://e.com/", timeout_s=timeout_s)
        assert endpoint["timeout_s"] == timeout_s


# App uids


async def test_duplicate_uid_is_409(hookline: Hookline) -> None:
    first = await hookline.ok("POST", "/v1/apps", {"name": "First", "uid": "acme"})
    message = await expect(
        hookline,
        "POST",
        "/v1/apps",
        409,
        "uid_taken",
        json_body={"name": "Second", "uid": "acme"},
    )
    assert "uid" in message
    assert (await hookline.ok("GET", "/v1/apps/acme"))["id"] == first["id"]


@pytest.mark.parametrize("uid", ["app_acme", "app_", "has space", "u" * 65, "", "a/b", "é"])
async def test_invalid_uid_is_422(hookline: Hookline, uid: str) -> None:
    await expect(
        hookline,
        "POST",
        "/v1/apps",
        422,
        "validation_error",
        json_body={"name": "Acme", "uid": uid},
    )
    if uid:
        status, _ = await hookline.call("GET", f"/v1/apps/{quote(uid, safe='')}")
        assert status == 404


# Listing deliveries


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "status=",
        "status=SUCCEEDED",
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "limit=%201",
        "cursor=a",
        "cursor=not-base64-at-all",
        "endpoint_id=a%20b",
        'endpoint_id=a"b',
        'event_type=x"%20OR%20HooklineAppId%20!=%20"',
    ],
)
async def test_bad_delivery_listing_parameters_are_422(hookline: Hookline, query: str) -> None:
    app_id = await hookline.create_app()
    await expect(hookline, "GET", f"/v1/apps/{app_id}/deliveries?{query}", 422, "validation_error")


async def test_cursor_outside_the_base64_alphabet_is_422(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    await expect(
        hookline, "GET", f"/v1/apps/{app_id}/deliveries?cursor=!!!!", 422, "validation_error"
    )


async def test_well_formed_but_forged_cursor_is_422(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    forged = base64.urlsafe_b64encode(b"garbage").decode()
    await expect(
        hookline, "GET", f"/v1/apps/{app_id}/deliveries?cursor={forged}", 422, "validation_error"
    )


async def test_limit_with_unicode_digit_is_422(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    await expect(hookline, "GET", f"/v1/apps/{app_id}/deliveries?limit=²", 422, "validation_error")


# Routing


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/apps"),
        ("PUT", "/v1/apps"),
        ("DELETE", "/v1/apps/app_x"),
        ("PUT", "/v1/apps/app_x/endpoints/ep_x"),
        ("DELETE", "/v1/apps/app_x/events"),
        ("GET", "/v1/apps/app_x/deliveries/dlv_x/retry"),
        ("POST", "/healthz"),
    ],
)
async def test_method_not_allowed_is_405(hookline: Hookline, method: str, path: str) -> None:
    await expect(hookline, method, path, 405, "method_not_allowed")


async def test_method_not_allowed_lists_allowed_methods(hookline: Hookline) -> None:
    reply = await send(hookline, "DELETE", "/v1/apps/app_x")
    assert_error(reply, 405, "method_not_allowed")
    assert "GET" in reply.headers.get("Allow", ""), reply.headers


@pytest.mark.parametrize(
    "path", ["/nope", "/v1", "/v1/apps/app_x/unknown", "/v1/apps/app_x/endpoints/ep_x/more", "/"]
)
async def test_unknown_path_is_404(hookline: Hookline, path: str) -> None:
    await expect(hookline, "GET", path, 404, "not_found")
    await expect(hookline, "POST", path, 404, "not_found", json_body={})


# The endpoint lifecycle, end to end


async def test_endpoint_crud(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    base = f"/v1/apps/{app_id}/endpoints"

    created = await hookline.create_endpoint(
        app_id,
        "https://example.com/hook",
        event_types=["job.failed", "batch.*", "job.failed"],
        description="ops",
        headers={"X-Customer": "acme"},
        retry={"initial_interval_s": 1, "max_interval_s": 1},
        timeout_s=10,
    )
    generated = await hookline.create_endpoint(app_id, "https://example.com/other")
    given = await hookline.create_endpoint(app_id, "https://example.com/given", secret=GOOD_SECRET)

    assert created["id"].startswith("ep_") and created["app_id"] == app_id
    assert created["url"] == "https://example.com/hook"
    assert created["event_types"] == ["batch.*", "job.failed"]
    assert created["description"] == "ops"
    assert created["headers"] == {"X-Customer": "********"}  # values are never read back
    assert created["retry"] == {"initial_interval_s": 1, "max_interval_s": 1}
    assert created["timeout_s"] == 10
    for endpoint in (created, generated):
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert created["secret"] != generated["secret"]
    assert given["secret"] == GOOD_SECRET
    fetched = await hookline.ok("GET", f"{base}/{given['id']}")
    assert "secret" not in fetched  # revealed only by the /secret endpoint
    assert (await hookline.ok("GET", f"{base}/{given['id']}/secret"))["secret"] == GOOD_SECRET

    fetched = await hookline.ok("GET", f"{base}/{created['id']}")
    assert fetched == {k: v for k, v in created.items() if k != "secret"}

    listed = (await hookline.ok("GET", base))["data"]
    assert [e["id"] for e in listed] == [created["id"], generated["id"], given["id"]]
    for item in listed:
        assert "secret" not in item
    listed_text = json.dumps(listed)
    for endpoint in (created, generated, given):
        assert endpoint["secret"] not in listed_text
    assert {k: v for k, v in created.items() if k != "secret"} == listed[0]

    patched = await hookline.ok(
        "PATCH",
        f"{base}/{created['id']}",
        {"event_types": None, "headers": {"X-Other": "2"}, "description": None},
    )
    assert patched["event_types"] is None
    assert patched["headers"] == {"X-Other": "********"}
    assert patched["description"] == ""
    assert patched["url"] == created["url"] and "secret" not in patched
    revealed = await hookline.ok("GET", f"{base}/{created['id']}/secret")
    assert revealed["secret"] == created["secret"]
    assert patched["retry"] == created["retry"] and patched["timeout_s"] == 10
    assert patched["created_at"] == created["created_at"]
    assert patched["updated_at"] >= created["updated_at"]

    cleared = await hookline.ok(
        "PATCH", f"{base}/{created['id']}", {"headers": None, "retry": None, "timeout_s": None}
    )
    assert cleared["headers"] == {} and cleared["retry"] is None and cleared["timeout_s"] is None
    assert cleared["event_types"] is None
    unchanged = await hookline.ok("PATCH", f"{base}/{created['id']}", {})
    assert unchanged["headers"] == {} and unchanged["url"] == created["url"]

    status, body = await hookline.call("DELETE", f"{base}/{created['id']}")
    assert (status, body) == (204, None)
    for method in ("GET", "DELETE"):
        await expect(hookline, method, f"{base}/{created['id']}", 404, "not_found")
    await expect(
        hookline,
        "PATCH",
        f"{base}/{created['id']}",
        404,
        "not_found",
        json_body={"description": "x"},
    )
    assert [e["id"] for e in (await hookline.ok("GET", base))["data"]] == [
        generated["id"],
        given["id"],
    ]


async def test_review_edge_cases_are_clean_4xx(hookline: Hookline) -> None:
    app_id, _ = await app_with_endpoint(hookline)
    for path in ("/v1/apps/a%00b", f"/v1/apps/{app_id}/events/a%00b"):
        assert_error(await send(hookline, "GET", path), 404, "not_found")
    reply = await send(hookline, "POST", "/v1/apps", json_body={"name": "a\u0000b"})
    assert_error(reply, 422, "validation_error")
    reply = await send(
        hookline,
        "GET",
        "/v1/apps",
        headers={
            "Authorization": "Bearer \udcff\udcfe".encode("utf-8", "surrogateescape").decode(
                "latin-1"
            )
        },
    )
    assert_error(reply, 401, "unauthorized")
    reply = await send(
        hookline, "GET", f"/v1/apps/{app_id}/events?since=0001-01-01T00:00:00%2B01:00"
    )
    assert_error(reply, 422, "validation_error")
    events_page = await hookline.ok("GET", f"/v1/apps/{app_id}/events?limit=1")
    for n in range(2):
        await hookline.send_event(app_id, "x.y", {"n": n})
    events_page = await hookline.ok("GET", f"/v1/apps/{app_id}/events?limit=1")
    assert events_page["next_cursor"]
    reply = await send(
        hookline, "GET", f"/v1/apps/{app_id}/deliveries?cursor={events_page['next_cursor']}"
    )
    assert_error(reply, 422, "validation_error")

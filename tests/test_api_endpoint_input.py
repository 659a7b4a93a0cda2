"""Endpoint URLs, secrets, headers, retry overrides, timeouts and app uids: what the API
refuses, and the bounds it accepts."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from tests.api_calls import app_with_endpoint, assert_error, expect, send
from tests.harness import Hookline

pytestmark = pytest.mark.shared_stack
"""These tests only check what the API answers: they share one running Hookline."""


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

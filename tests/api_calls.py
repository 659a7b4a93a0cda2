"""Raw calls to a running API and the assertions on its error shape, for the API's tests."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.harness import Hookline

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

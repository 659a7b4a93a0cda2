"""Authentication: what is public, and every malformed or unknown key is a 401 with the
error shape."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from tests.api_calls import assert_error, send
from tests.conftest import API_KEY
from tests.harness import Hookline

pytestmark = pytest.mark.shared_stack
"""These tests only check what the API answers: they share one running Hookline."""


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

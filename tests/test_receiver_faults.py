"""Receivers that misbehave: stalled bodies, huge bodies, dropped connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypedDict

import pytest
from aiohttp import web

from tests.harness import Hookline

HUGE_BYTES = 100 * 2**20
CHUNK = b"x" * 65536
LONG_BACKOFF = {"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200}


class Delivered(TypedDict):
    """A delivery's view and its attempts, as the API answers them."""

    view: dict[str, Any]
    attempts: list[dict[str, Any]]


@pytest.fixture
async def misbehaving() -> AsyncIterator[Callable[[str], str]]:
    """A receiver on 127.0.0.1 with one misbehaviour per path; yields path -> URL."""
    served: dict[str, int] = {}

    async def stalled_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_length = 1000
        await response.prepare(request)
        await asyncio.Event().wait()  # the body never comes (until Hookline hangs up)
        return response

    async def huge_body(request: web.Request) -> web.StreamResponse:
        status = int(request.query.get("status", "200"))
        response = web.StreamResponse(status=status)
        response.content_length = HUGE_BYTES
        await response.prepare(request)
        sent = 0
        try:
            while sent < HUGE_BYTES:
                await response.write(CHUNK)
                sent += len(CHUNK)
        except (ConnectionError, RuntimeError):
            pass  # Hookline hung up after the prefix it wanted
        served[request.path] = sent
        return response

    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/stalled-body", stalled_body)
    app.router.add_post("/huge-body", huge_body)
    app.router.add_post("/hang-up", hang_up)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield lambda path: f"http://127.0.0.1:{port}{path}"
    finally:
        await runner.cleanup()


async def _deliver(hookline: Hookline, url: str, status: str, **endpoint: object) -> Delivered:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, url, **endpoint)
    event = await hookline.send_event(app_id, "batch.completed", {"n": 1})
    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], status)
    attempts = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries/{view['id']}/attempts")
    return {"view": view, "attempts": attempts["data"]}


async def test_a_2xx_whose_body_stalls_counts_once_as_delivered(
    hookline: Hookline, misbehaving: Callable[[str], str]
) -> None:
    result = await _deliver(hookline, misbehaving("/stalled-body"), "succeeded", timeout_s=1)
    [attempt] = result["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["duration_ms"] < 5000


@pytest.mark.parametrize(("status", "outcome"), [(200, "succeeded"), (500, "retrying")])
async def test_a_100_mb_body_is_not_read(
    hookline: Hookline, misbehaving: Callable[[str], str], status: int, outcome: str
) -> None:
    url = misbehaving(f"/huge-body?status={status}")
    result = await _deliver(
        hookline,
        url,
        outcome,
        retry=LONG_BACKOFF,
    )
    first = result["attempts"][0]
    assert first["status_code"] == status
    assert first["response_body"] == "x" * 1024


async def test_a_connection_dropped_without_an_answer_is_retried(
    hookline: Hookline, misbehaving: Callable[[str], str]
) -> None:
    result = await _deliver(
        hookline,
        misbehaving("/hang-up"),
        "retrying",
        retry=LONG_BACKOFF,
    )
    view = result["view"]
    assert view["last_attempt"]["status_code"] is None
    assert view["last_attempt"]["error"]

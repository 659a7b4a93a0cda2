"""Rate limits: per API key on the API, per endpoint concurrency in the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from temporalio.client import Client

from api.rate_limits import KeyRateLimiter
from hookline.registry import opened_registry
from hookline.settings import Settings
from tests.conftest import API_KEY
from tests.harness import Hookline, wait_for


def test_bucket_refills_at_the_rate() -> None:
    limiter = KeyRateLimiter(rate_per_s=10, burst=2)
    assert limiter.wait_for("k") == 0 and limiter.wait_for("k") == 0
    wait = limiter.wait_for("k")
    assert 0 < wait <= 0.1
    assert limiter.wait_for("other") == 0  # buckets are per key


@pytest.fixture
async def limited(settings: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    # A token every 20 s: the test does not depend on how fast a loaded machine runs it.
    strict = settings.model_copy(update={"api_rate_limit_per_s": 0.05, "api_rate_limit_burst": 3})
    async with Hookline.running(strict, temporal_client, API_KEY) as hookline:
        yield hookline


async def test_a_key_past_its_rate_gets_429_with_retry_after(limited: Hookline) -> None:
    app_id = await limited.create_app()  # one of the 3
    statuses = [(await limited.call("GET", f"/v1/apps/{app_id}"))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    async with limited.http.get(f"{limited.api_url}/v1/apps/{app_id}") as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert (await response.json())["error"]["code"] == "rate_limited"

    async with opened_registry(limited.settings) as registry:
        _, other_key = await registry.keys.create("other", None)
    async with aiohttp.ClientSession(headers={"authorization": f"Bearer {other_key}"}) as http:
        async with http.get(f"{limited.api_url}/v1/apps/{app_id}") as response:
            assert response.status == 200  # another key has its own bucket
    async with limited.http.get(limited.api_url + "/healthz") as response:
        assert response.status == 200  # health checks are never limited


@pytest.fixture
async def slow_receiver() -> AsyncIterator[tuple[str, list[tuple[float, float]]]]:
    """A receiver that takes 0.5 s per request and records when each was in flight."""
    spans: list[tuple[float, float]] = []

    async def handle(request: web.Request) -> web.Response:
        started = time.monotonic()
        await request.read()
        await asyncio.sleep(0.5)
        spans.append((started, time.monotonic()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/slow", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/slow", spans
    finally:
        await runner.cleanup()


async def test_one_endpoint_never_gets_more_than_its_concurrency(
    settings: Settings,
    temporal_client: Client,
    slow_receiver: tuple[str, list[tuple[float, float]]],
) -> None:
    url, spans = slow_receiver
    one_at_a_time = settings.model_copy(update={"endpoint_max_concurrent_attempts": 1})
    async with Hookline.running(one_at_a_time, temporal_client, API_KEY) as hookline:
        app_id = await hookline.create_app()
        await hookline.create_endpoint(app_id, url)
        for n in range(4):
            await hookline.send_event(app_id, "batch.completed", {"n": n})
        await wait_for(lambda: len(spans) == 4, what="four deliveries")

    in_flight_at_once = max(
        sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans
    )
    assert in_flight_at_once == 1

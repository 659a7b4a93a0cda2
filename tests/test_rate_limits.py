"""Rate limits: per API key on the API, per endpoint concurrency in the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from temporalio.client import Client

from hookline.api.rate_limits import KeyRateLimiter, client_network
from hookline.config.settings import Settings
from hookline.storage.registry import opened_registry
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


def test_failures_spend_tokens_and_lookups_cost_nothing() -> None:
    limiter = KeyRateLimiter(rate_per_s=0.001, burst=2)  # a token every 1000 s
    assert limiter.delay("k") == 0 and limiter.delay("k") == 0  # looking takes nothing
    limiter.spend("k")
    limiter.spend("k")
    assert 0 < limiter.delay("k") <= 1000
    limiter.spend("k")  # a failure already in flight when the budget ran out still counts
    assert 1000 < limiter.delay("k") <= 2000
    assert limiter.delay("other") == 0


def test_ipv6_clients_count_by_their_64() -> None:
    assert client_network("2001:db8:0:1::a") == client_network("2001:db8:0:1:ffff::b")
    assert client_network("2001:db8:0:1::a") != client_network("2001:db8:0:2::a")
    assert client_network("::ffff:192.0.2.7") == client_network("192.0.2.7") == "192.0.2.7"


@pytest.fixture
async def guarded(settings: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    # A token every 20 s: nothing refills while the test runs.
    strict = settings.model_copy(
        update={"api_auth_failures_per_s": 0.05, "api_auth_failure_burst": 5}
    )
    async with Hookline.running(strict, temporal_client, API_KEY) as hookline:
        yield hookline


async def _get_apps(hookline: Hookline, key: str) -> tuple[int, dict[str, str], dict]:
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {key}"}) as http,
        http.get(f"{hookline.api_url}/v1/apps/app_none") as response,
    ):
        return response.status, dict(response.headers), await response.json()


async def test_an_address_past_its_failed_authentications_gets_429_before_any_lookup(
    guarded: Hookline,
) -> None:
    async with opened_registry(guarded.settings) as registry:
        _, valid = await registry.keys.create("ci", None)
    for _ in range(10):  # keys that are found spend nothing
        assert (await _get_apps(guarded, valid))[0] == 404

    statuses = [(await _get_apps(guarded, f"wrong-key-{n}"))[0] for n in range(6)]
    assert statuses == [401] * 5 + [429]
    # Now even a valid registry key waits: the answer comes before any lookup.
    status, headers, body = await _get_apps(guarded, valid)
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert int(headers["Retry-After"]) >= 1
    # Keys of HOOKLINE_API_KEYS need no lookup: an operator is not locked out with the rest.
    assert (await _get_apps(guarded, API_KEY))[0] == 404
    async with aiohttp.ClientSession() as http, http.get(guarded.api_url + "/healthz") as reply:
        assert reply.status == 200


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

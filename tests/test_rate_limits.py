"""Rate limits: per API key on the API, per endpoint concurrency in the worker."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from temporalio.client import Client

from hookline.api.keys import REGISTRY
from hookline.api.rate_limits import KeyRateLimiter, client_network
from hookline.api.serving import api_runner
from hookline.config.settings import Settings
from hookline.storage.api_keys import KEY_PREFIX, ApiKey, ApiKeyStore, VerifiedKeys
from hookline.storage.engine import create_engine
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


def test_a_failure_takes_its_token_before_the_lookup_and_a_found_key_gives_it_back() -> None:
    limiter = KeyRateLimiter(rate_per_s=0.001, burst=2)  # a token every 1000 s
    assert limiter.wait_for("k") == 0  # taken before the lookup...
    limiter.give_back("k")  # ...and returned: the key was found
    assert limiter.wait_for("k") == 0 and limiter.wait_for("k") == 0
    assert 0 < limiter.wait_for("k") <= 1000
    limiter.give_back("other")  # nothing to give back to a client that took nothing
    assert limiter.wait_for("other") == 0 and limiter.wait_for("other") == 0
    assert limiter.wait_for("other") > 0


def test_a_full_table_forgets_the_least_recently_used_bucket_only() -> None:
    limiter = KeyRateLimiter(rate_per_s=0.001, burst=1, max_keys=3)
    for key in ("a", "b", "c"):
        assert limiter.wait_for(key) == 0
    assert limiter.wait_for("a") > 0  # "a" is the most recently used now; "b" the least
    assert limiter.wait_for("d") == 0  # a fourth key pushes "b" out, and only "b"
    assert limiter.wait_for("a") > 0 and limiter.wait_for("c") > 0 and limiter.wait_for("d") > 0
    assert limiter.wait_for("b") == 0


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


async def _get_app(hookline: Hookline, key: str, app_id: str = "app_none") -> int:
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {key}"}) as http,
        http.get(f"{hookline.api_url}/v1/apps/{app_id}") as response,
    ):
        return response.status


def _well_shaped() -> str:
    """A key shaped like those ``hookline keys create`` makes, that no registry holds."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def test_an_exhausted_address_still_serves_keys_it_verified_recently(
    guarded: Hookline,
) -> None:
    app_id = await guarded.create_app()
    async with opened_registry(guarded.settings) as registry:
        _, scoped = await registry.keys.create("tenant", app_id)
        _, unseen = await registry.keys.create("never used yet", None)
    assert await _get_app(guarded, scoped, app_id) == 200  # verified once: remembered

    statuses = [await _get_app(guarded, _well_shaped()) for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {_well_shaped()}"}) as http,
        http.get(f"{guarded.api_url}/v1/apps/app_none") as response,
    ):
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
        assert (await response.json())["error"]["code"] == "rate_limited"

    # One attacker behind the same address does not lock the tenant out...
    assert [await _get_app(guarded, scoped, app_id) for _ in range(3)] == [200] * 3
    # ...but a key this process has not verified yet waits, as a guess would: no lookup.
    assert await _get_app(guarded, unseen) == 429
    # Keys of HOOKLINE_API_KEYS need no lookup: an operator is not locked out with the rest.
    assert await _get_app(guarded, API_KEY) == 404
    async with aiohttp.ClientSession() as http, http.get(guarded.api_url + "/healthz") as reply:
        assert reply.status == 200


async def test_keys_that_cannot_be_keys_get_401_without_spending_the_budget(
    guarded: Hookline,
) -> None:
    malformed = [
        "wrong-key",
        KEY_PREFIX,
        _well_shaped() + "A",
        _well_shaped()[:-1],
        _well_shaped().replace("hl_", "HL_"),
        _well_shaped()[:-1] + "=",
        _well_shaped()[:-1] + "\u00e9",
    ]
    assert [await _get_app(guarded, key) for key in malformed * 3] == [401] * len(malformed) * 3
    # The whole budget (5) is still there for keys that might exist.
    statuses = [await _get_app(guarded, _well_shaped()) for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    assert await _get_app(guarded, "wrong-key") == 401  # refused by shape, exhausted or not


class CountingKeyStore(ApiKeyStore):
    """The real key store, counting the lookups the API makes."""

    lookups = 0

    async def find(self, key: str) -> ApiKey | None:
        self.lookups += 1
        return await super().find(key)


@pytest.fixture
async def counted(
    settings: Settings, temporal_client: Client
) -> AsyncIterator[tuple[str, CountingKeyStore]]:
    """The API alone (no worker), burst of 5 failed authentications, lookups counted."""
    strict = settings.model_copy(
        update={"api_auth_failures_per_s": 0.05, "api_auth_failure_burst": 5}
    )
    runner = api_runner(strict, temporal_client, access_log=False)
    await runner.setup()
    engine = create_engine(strict.resolved_database_url)
    try:
        store = runner.app[REGISTRY].keys = CountingKeyStore(engine)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", store
    finally:
        await runner.cleanup()
        await engine.dispose()


async def test_concurrent_bad_keys_make_no_more_lookups_than_the_burst(
    counted: tuple[str, CountingKeyStore],
) -> None:
    api_url, store = counted

    async def attempt(http: aiohttp.ClientSession) -> int:
        headers = {"authorization": f"Bearer {_well_shaped()}"}
        async with http.get(f"{api_url}/v1/apps/app_none", headers=headers) as response:
            return response.status

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        statuses = await asyncio.gather(*(attempt(http) for _ in range(100)))
    assert sorted(set(statuses)) == [401, 429], statuses
    assert statuses.count(401) <= 5, statuses.count(401)
    assert 0 < store.lookups <= 5, store.lookups


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


def test_verified_keys_expire_into_known_and_stay_bounded() -> None:
    record = ApiKey("key_1", "ci", "hl_abcdefg", None, datetime.now(UTC), None)
    expired = VerifiedKeys(ttl_s=0, max_keys=2)
    expired.remember("h1", record)
    # Past the TTL a key is looked up again (revocations elsewhere take effect), but as a key
    # known to be real: the address's budget does not hold it back.
    assert expired.fresh("h1") is None and expired.known("h1")

    verified = VerifiedKeys(ttl_s=60, max_keys=2)
    for digest in ("h1", "h2", "h3"):
        verified.remember(digest, record)
    assert not verified.known("h1") and verified.fresh("h3") == record  # the oldest went
    verified.forget_id("key_1")  # revoked through this process: forgotten at once
    assert not verified.known("h2") and not verified.known("h3")

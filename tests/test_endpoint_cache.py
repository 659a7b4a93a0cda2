"""The worker's endpoint cache: fresh copies within the TTL, re-read after it, and the last
copy (with a warning) while the registry is unreachable."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from hookline.activities.endpoint_cache import EndpointCache
from hookline.contracts.signing import generate_secret
from hookline.storage.engine import create_engine
from hookline.storage.entities import Endpoint
from hookline.storage.registry import Registry
from hookline.storage.secret_box import SecretBox, generate_key
from tests.test_database_outage import TcpProxy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def new_endpoint(registry: Registry, app_id: str, url: str) -> Endpoint:
    """An endpoint of ``app_id`` written straight to ``registry``, with defaults."""
    return await registry.endpoints.create(
        app_id,
        url=url,
        description="",
        event_types=None,
        secret=generate_secret(),
        headers={},
        retry=None,
        timeout_s=None,
    )


async def _endpoint_of(registry: Registry, url: str) -> tuple[str, str]:
    app = await registry.apps.create("Acme", None, generate_secret())
    endpoint = await new_endpoint(registry, app.id, url)
    return app.id, endpoint.id


@pytest.fixture
def registry(sqlite_registry: Registry) -> Registry:
    return sqlite_registry


async def test_a_change_reaches_attempts_once_the_ttl_has_passed(registry: Registry) -> None:
    app_id, endpoint_id = await _endpoint_of(registry, "https://a.example/old")
    clock = Clock()
    cache = EndpointCache(registry, ttl_s=5, clock=clock)

    first = await cache.get(app_id, endpoint_id)
    await registry.endpoints.update(app_id, endpoint_id, url="https://a.example/new")
    clock.now += 4.9
    within_ttl = await cache.get(app_id, endpoint_id)
    clock.now += 0.2
    after_ttl = await cache.get(app_id, endpoint_id)

    assert first is not None and within_ttl is not None and after_ttl is not None
    assert within_ttl.url == "https://a.example/old"
    assert after_ttl.url == "https://a.example/new"


async def test_ttl_zero_reads_every_time_and_deletion_is_seen(registry: Registry) -> None:
    app_id, endpoint_id = await _endpoint_of(registry, "https://a.example/hook")
    cache = EndpointCache(registry, ttl_s=0, clock=Clock())

    assert await cache.get(app_id, endpoint_id) is not None
    await registry.endpoints.delete(app_id, endpoint_id)
    assert await cache.get(app_id, endpoint_id) is None
    assert await cache.get("app_other", endpoint_id) is None


@pytest.mark.parametrize("doubt", ["forget", "expire"])
async def test_a_doubted_copy_is_read_again_before_its_ttl(registry: Registry, doubt: str) -> None:
    """``forget`` drops the copy; ``expire`` keeps it for when the registry is down."""
    app_id, endpoint_id = await _endpoint_of(registry, "https://a.example/hook")
    cache = EndpointCache(registry, ttl_s=300, clock=Clock())
    await cache.get(app_id, endpoint_id)
    await registry.endpoints.update(app_id, endpoint_id, paused=True)

    getattr(cache, doubt)(app_id, endpoint_id)

    endpoint = await cache.get(app_id, endpoint_id)
    assert endpoint is not None and endpoint.paused


async def test_unreachable_registry_serves_the_last_copy_and_says_so(
    postgres_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    if postgres_url is None:
        pytest.skip("set HOOKLINE_TEST_DATABASE_URL to cut a PostgreSQL connection")
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    engine = create_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )
    registry = Registry(engine, SecretBox([generate_key()]))
    try:
        await registry.create_schema()
        app_id, endpoint_id = await _endpoint_of(registry, "https://a.example/hook?token=s3cret")
        _, never_read_id = await _endpoint_of(registry, "https://b.example/hook")
        clock = Clock()
        cache = EndpointCache(registry, ttl_s=5, clock=clock)
        read = await cache.get(app_id, endpoint_id)

        await proxy.cut()
        clock.now += 60
        with caplog.at_level(logging.WARNING, logger="hookline.activities.endpoint_cache"):
            stale = await cache.get(app_id, endpoint_id)
        with pytest.raises((SQLAlchemyError, OSError)):
            await cache.get(app_id, never_read_id)
        cache.expire(app_id, endpoint_id)  # doubted, but still the copy to go on with
        expired = await cache.get(app_id, endpoint_id)
    finally:
        await proxy.start()
        await engine.dispose()
        await proxy.cut()

    assert stale == read
    assert expired == read
    # One warning for each read that went on with the copy.
    warning, _ = [r for r in caplog.records if r.name == "hookline.activities.endpoint_cache"]
    message = warning.getMessage()
    assert endpoint_id in message and "read 60 s ago" in message
    assert "s3cret" not in message and "a.example" not in message

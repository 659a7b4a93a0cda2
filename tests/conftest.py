"""Shared fixtures: a real Temporal dev server, a running Hookline, and real receivers."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.contracts.retry_settings import RetrySettings
from hookline.storage.engine import create_engine
from hookline.storage.registry import Registry
from hookline.storage.secret_box import SecretBox, generate_key
from hookline.temporal.client import connect_temporal
from hookline.temporal.dev_server import start_dev_server, stop_dev_server
from tests.harness import Hookline, Receiver

API_KEY = "test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
async def temporal_address() -> AsyncIterator[str]:
    """A headless, in-memory dev server with Hookline's search attributes, for the session."""
    port = free_port()
    server = await start_dev_server(port, None, None)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_dev_server(server)


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str | None]:
    """A fresh PostgreSQL database for this session, made on the server that
    ``HOOKLINE_TEST_DATABASE_URL`` names and dropped afterwards; ``None`` when it is unset."""
    base = os.environ.get("HOOKLINE_TEST_DATABASE_URL")
    if not base:
        yield None
        return
    url = make_url(base)
    name = f"hookline_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session")
async def temporal_client(temporal_address: str) -> Client:
    return await connect_temporal(Settings(temporal_address=temporal_address))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the Temporal dev server ``temporal``: ``-m "not temporal"``
    runs the fast part alone (no server, no worker, a few seconds)."""
    for item in items:
        if "temporal_address" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.temporal)


def settings_for_tests(data_dir: Path, temporal_address: str) -> Settings:
    """Settings for tests: their own task queue and registry, short retries."""
    return Settings(
        data_dir=data_dir,
        api_keys=[API_KEY],
        temporal_address=temporal_address,
        task_queue=f"test-{uuid.uuid4()}",
        retry=RetrySettings(
            initial_interval_s=1, backoff_coefficient=1, max_interval_s=1, window_s=60
        ),
        attempt_timeout_s=5,
        api_rate_limit_per_s=None,  # tests call fast; tests/test_rate_limits.py sets one
        # Attempts see endpoint changes at once; tests/test_endpoint_cache.py covers the cache.
        endpoint_cache_ttl_s=0,
        worker_graceful_shutdown_s=1,
        # Off: with it, tests that fail several deliveries quickly would wait for its probes;
        # tests/test_endpoint_breaker.py turns it on.
        endpoint_breaker_failures=0,
    )


@pytest.fixture
def settings(tmp_path: Path, temporal_address: str) -> Settings:
    """Settings for one test: its own task queue and registry, short retries."""
    return settings_for_tests(tmp_path, temporal_address)


@pytest.fixture(scope="session")
async def shared_hookline(
    tmp_path_factory: pytest.TempPathFactory, temporal_address: str, temporal_client: Client
) -> AsyncIterator[Hookline]:
    """One running worker and API for the session, for tests that only check what the API
    answers (``pytest.mark.shared_stack``): starting a stack per test cost them most of their
    time. Its worker only polls while idle."""
    shared = settings_for_tests(tmp_path_factory.mktemp("shared"), temporal_address)
    async with Hookline.running(shared, temporal_client, API_KEY) as running:
        yield running


@pytest.fixture
async def sqlite_registry(tmp_path: Path) -> AsyncIterator[Registry]:
    """A fresh registry on a SQLite file, its schema made, for tests of the registry alone."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    registry = Registry(engine, SecretBox([generate_key()]))
    try:
        await registry.create_schema()
        yield registry
    finally:
        await engine.dispose()


@pytest.fixture
async def hookline(
    request: pytest.FixtureRequest,
    settings: Settings,
    temporal_client: Client,
    shared_hookline: Hookline,
) -> AsyncIterator[Hookline]:
    """A running worker and API for ``settings``, and a client for the API; in a test marked
    ``shared_stack``, the session's one (see ``shared_hookline``)."""
    if request.node.get_closest_marker("shared_stack"):
        yield shared_hookline
        return
    async with Hookline.running(settings, temporal_client, API_KEY) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on 127.0.0.1 that records requests and answers as scripted."""
    async with Receiver.running() as running:
        yield running

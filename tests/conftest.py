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
from hookline.storage.registry import Registry, create_engine
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


@pytest.fixture
def settings(tmp_path: Path, temporal_address: str) -> Settings:
    """Settings for one test: its own task queue and registry, short retries."""
    return Settings(
        data_dir=tmp_path,
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
    )


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
async def hookline(settings: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    """A running worker and API for ``settings``, and a client for the API."""
    async with Hookline.running(settings, temporal_client, API_KEY) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on 127.0.0.1 that records requests and answers as scripted."""
    async with Receiver.running() as running:
        yield running

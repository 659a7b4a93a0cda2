"""The registry's database going away: the API answers 503 with the error JSON, then recovers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import make_url
from temporalio.client import Client

from hookline.settings import Settings
from tests.conftest import API_KEY
from tests.harness import Hookline


class TcpProxy:
    """A loopback TCP proxy that can be cut, to take a database away without stopping it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        if self._server is not None and self._server.is_serving():
            return
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, upstream_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


@pytest.fixture
async def proxied(
    settings: Settings, temporal_client: Client, postgres_url: str | None
) -> AsyncIterator[tuple[Hookline, TcpProxy]]:
    if postgres_url is None:
        pytest.skip("set HOOKLINE_TEST_DATABASE_URL to test a PostgreSQL outage")
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port)
    proxied_settings = settings.model_copy(
        update={"database_url": through_proxy.render_as_string(hide_password=False)}
    )
    try:
        async with Hookline.running(proxied_settings, temporal_client, API_KEY) as hookline:
            yield hookline, proxy
            await proxy.start()  # let the fixture's teardown reach the database again
    finally:
        await proxy.cut()


async def test_database_outage_is_a_503_then_service_resumes(
    proxied: tuple[Hookline, TcpProxy],
) -> None:
    hookline, proxy = proxied
    app_id = await hookline.create_app()

    await proxy.cut()
    for method, path, body in (
        ("POST", "/v1/apps", {"name": "Down"}),
        ("GET", f"/v1/apps/{app_id}", None),
        ("POST", f"/v1/apps/{app_id}/events", {"type": "a.b", "payload": {}}),
    ):
        status, reply = await asyncio.wait_for(hookline.call(method, path, body), 30)
        assert status == 503, (path, reply)
        assert reply == {
            "error": {
                "code": "database_unavailable",
                "message": "the database is not reachable; retry",
            }
        }

    await proxy.start()
    assert (await hookline.ok("GET", f"/v1/apps/{app_id}"))["id"] == app_id

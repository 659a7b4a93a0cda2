"""The registry's database going away: the API answers 503 with the error JSON, then recovers;
the worker goes on delivering with the endpoint configuration it last read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import make_url
from standardwebhooks import Webhook
from temporalio.client import Client

from hookline.config.settings import Settings
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver


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
        ("GET", f"/v1/apps/{app_id}/endpoints", None),
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


async def test_worker_keeps_delivering_with_cached_endpoints_during_an_outage(
    proxied: tuple[Hookline, TcpProxy], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    hookline, proxy = proxied
    receiver.respond(503)  # the first attempt fails: the second comes during the outage
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url, retry={"initial_interval_s": 2, "max_interval_s": 2}
    )
    event = await hookline.send_event(app_id, "batch.completed", {"n": 1})
    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "retrying")

    with caplog.at_level(logging.WARNING):
        await proxy.cut()
        handle = hookline.temporal.get_workflow_handle(view["workflow_id"])
        result = await asyncio.wait_for(handle.result(), 30)

    assert result["status"] == "succeeded" and result["attempts"] == 2
    assert len(receiver.requests) == 2
    Webhook(endpoint["secret"]).verify(receiver.requests[1].body, receiver.requests[1].headers)
    said = [
        r.getMessage() for r in caplog.records if r.name == "hookline.activities.endpoint_cache"
    ]
    assert said and endpoint["id"] in said[0] and "registry unreachable" in said[0]

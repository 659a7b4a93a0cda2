"""The API against slow, vanishing and careless clients, and ``hookline api`` without Temporal:
raw sockets on 127.0.0.1 against the real serving path (``api.serving.api_runner``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from temporalio.client import Client
from yarl import URL

from hookline.api import response_models as out
from hookline.api.errors import error_middleware
from hookline.api.schemas import AppCreate
from hookline.api.serving import api_runner
from hookline.config.settings import Settings
from hookline.storage.engine import create_engine
from tests.conftest import API_KEY, free_port
from tests.harness import Hookline, run_hookline, wait_for

TIMEOUT_S = 0.5
"""The header and body read timeouts of these tests."""
MARGIN_S = 5.0
"""How much later than the timeout a loaded machine may close a connection."""


@pytest.fixture
async def strict(settings: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    quick = settings.model_copy(
        update={"api_header_read_timeout_s": TIMEOUT_S, "api_body_read_timeout_s": TIMEOUT_S}
    )
    async with Hookline.running(quick, temporal_client, API_KEY) as hookline:
        yield hookline


async def _connect(hookline: Hookline) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = URL(hookline.api_url)
    assert url.host is not None and url.port is not None
    return await asyncio.open_connection(url.host, url.port)


async def _until_closed(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """All the server sends until it closes the connection, and how long that took.

    Raises:
        TimeoutError: the server kept the connection past ``TIMEOUT_S + MARGIN_S``.
    """
    started = time.monotonic()
    received = b""
    async with asyncio.timeout(TIMEOUT_S + MARGIN_S):
        with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread
            while chunk := await reader.read(65536):
                received += chunk
    return received, time.monotonic() - started


async def _drip(writer: asyncio.StreamWriter, data: bytes, every_s: float = 0.05) -> None:
    """Send ``data`` a byte at a time, as a slow client would, until the server hangs up."""
    with contextlib.suppress(ConnectionError):
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every_s)  # the client's pace, not a wait for the server


@contextlib.asynccontextmanager
async def _dripping(writer: asyncio.StreamWriter, data: bytes) -> AsyncIterator[None]:
    task = asyncio.create_task(_drip(writer, data))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()


def _request_head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *map(": ".join, headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_client_slow_with_its_headers_is_disconnected(strict: Hookline) -> None:
    reader, writer = await _connect(strict)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    async with _dripping(writer, b"X-Slow: " + b"a" * 10_000):  # longer than any timeout
        received, took = await _until_closed(reader)
    assert received == b"" and took >= TIMEOUT_S * 0.8

    reader, writer = await _connect(strict)  # a connection that never sends a byte
    received, _ = await _until_closed(reader)
    writer.close()
    assert received == b""


async def test_a_client_slow_with_its_body_gets_408_and_is_disconnected(
    strict: Hookline,
) -> None:
    reader, writer = await _connect(strict)
    writer.write(
        _request_head(
            "POST",
            "/v1/apps",
            Authorization=f"Bearer {API_KEY}",
            **{"Content-Type": "application/json", "Content-Length": "1000"},
        )
    )
    async with _dripping(writer, b'{"name": "' + b"a" * 980 + b'"}'):
        received, _ = await _until_closed(reader)

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), received
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert (await strict.call("GET", "/healthz"))[0] == 200


async def test_prompt_clients_are_served_and_idle_connections_closed(strict: Hookline) -> None:
    status, app = await strict.call("POST", "/v1/apps", {"name": "Prompt"})
    assert status == 201, app
    reader, writer = await _connect(strict)
    # Two requests on one connection, the second in its own packet once the first is answered.
    writer.write(_request_head("GET", "/healthz"))
    first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), MARGIN_S)
    writer.write(_request_head("GET", f"/v1/apps/{app['id']}", Authorization=f"Bearer {API_KEY}"))
    rest, _ = await _until_closed(reader)  # then left idle past the header timeout
    writer.close()
    assert first.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"HTTP/1.1 200 ") and app["id"].encode() in rest


async def _scrape(hookline: Hookline) -> str:
    async with aiohttp.ClientSession() as http, http.get(hookline.api_url + "/metrics") as reply:
        return await reply.text()


async def test_a_client_gone_mid_body_is_no_database_outage(
    settings: Settings, temporal_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # A body timeout shorter than the wait below: the answer comes whichever way aiohttp
    # learns of the disconnect.
    quick = settings.model_copy(update={"api_body_read_timeout_s": 2.0})
    async with Hookline.running(quick, temporal_client, API_KEY) as hookline:
        _, writer = await _connect(hookline)
        writer.write(
            _request_head(
                "POST", "/v1/apps", Authorization=f"Bearer {API_KEY}", **{"Content-Length": "1000"}
            )
            + b'{"name": "'
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

        async def answered() -> str | None:
            text = await _scrape(hookline)
            return text if re.search(r'method="POST",route="/v1/apps"', text) else None

        text = await wait_for(answered, what="the request to be answered")
    # Answered as the client's doing (or, had aiohttp not noticed, as a body that never came).
    assert re.search(r'method="POST",route="/v1/apps",status="(400|408)"', text), text
    assert 'status="503"' not in text
    assert not [r for r in caplog.records if "database unavailable" in r.getMessage()]


async def test_access_log_has_the_path_but_not_the_query(
    settings: Settings, temporal_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    runner = api_runner(settings, temporal_client)  # as `hookline api` serves: access log on
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz?api_key=SECRET123") as reply,
        ):
            assert reply.status == 200

        def logged() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]

        lines = await wait_for(logged, what="an access log line")
    finally:
        await runner.cleanup()
    assert any('"GET /healthz"' in line and " 200 " in line for line in lines), lines
    assert not any("SECRET123" in line or "api_key" in line for line in lines), lines


def test_api_without_temporal_exits_with_one_clear_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOOKLINE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens there
        "HOOKLINE_API_KEYS": "some-key-of-at-least-32-characters-xxxxxxxx",
        "HOOKLINE_API_PORT": str(free_port()),
        "HOOKLINE_DATA_DIR": str(tmp_path),
    }
    env.pop("HOOKLINE_DATABASE_URL", None)
    done = run_hookline(["api"], env, timeout=90)
    assert done.returncode != 0
    assert "cannot connect to Temporal" in done.stderr
    assert "Traceback" not in done.stderr and "aclose" not in done.stderr, done.stderr


@pytest.fixture
async def strict_runner(
    settings: Settings, temporal_client: Client
) -> AsyncIterator[tuple[web.AppRunner, int]]:
    """The API alone (no worker) with the short timeouts, and the runner, to see its
    connections."""
    quick = settings.model_copy(
        update={"api_header_read_timeout_s": TIMEOUT_S, "api_body_read_timeout_s": TIMEOUT_S}
    )
    runner = api_runner(quick, temporal_client, access_log=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner, runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_a_client_that_never_reads_its_answers_is_cut_off(
    strict_runner: tuple[web.AppRunner, int],
) -> None:
    runner, port = strict_runner
    server = runner.server
    assert server is not None
    sock = socket.socket()
    # A small receive window: the server's buffers fill after a few answers, not megabytes.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(_request_head("GET", "/v1/openapi.json") * 2000)  # and never read
        await wait_for(lambda: server.connections, timeout=MARGIN_S, what="the connection")
        started = time.monotonic()
        await wait_for(
            lambda: not server.connections,
            timeout=TIMEOUT_S + MARGIN_S,
            what="the server to drop a connection whose answers are not read",
        )
        assert time.monotonic() - started >= TIMEOUT_S * 0.5
        # Cut off, not closed politely: the client sees the end at once however much it reads.
        async with asyncio.timeout(MARGIN_S):
            with contextlib.suppress(ConnectionResetError):
                while await reader.read(1 << 20):
                    pass
    finally:
        writer.close()


async def test_logged_request_paths_cannot_forge_log_lines(
    hookline: Hookline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hookline")
    engine = create_engine(hookline.settings.resolved_database_url)
    try:
        async with engine.begin() as conn:  # a database that fails every read of apps
            await conn.execute(text("ALTER TABLE apps RENAME TO apps_away"))
        status, body = await hookline.call("GET", "/v1/apps/app_x%0A2024-01-01 FORGED%0D")
        assert status == 503, body
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE apps_away RENAME TO apps"))
        await engine.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("hookline.api")]
    assert any("database unavailable" in line for line in lines), lines
    assert not any("\n" in line or "\r" in line for line in lines), lines
    assert any("app_x%0A2024-01-01" in line for line in lines), lines


async def test_an_answer_that_does_not_fit_its_model_is_a_500_not_the_clients_422(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def bad_answer(_request: web.Request) -> web.Response:
        # The bug under test: a value its model refuses.
        out.Secret(secret="whsec_never_logged", previous_secret_expires_at="not a time")  # type: ignore[arg-type]
        raise AssertionError("unreachable")

    async def bad_request(request: web.Request) -> web.Response:
        AppCreate.model_validate_json(await request.read())
        raise AssertionError("unreachable")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/answer", bad_answer)
    app.router.add_post("/request", bad_request)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        answer = await client.get("/answer")
        request = await client.post("/request", data=b'{"name": 5}')
        assert (answer.status, (await answer.json())["error"]["code"]) == (500, "internal_error")
        assert (request.status, (await request.json())["error"]["code"]) == (
            422,
            "validation_error",
        )
    assert "whsec_never_logged" not in caplog.text
    assert "Secret on GET /answer" in caplog.text

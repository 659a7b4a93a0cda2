"""Serving the API: aiohttp's runner, with time limits on request headers and on clients that
do not read their answers, and an access log that leaves query strings out. ``hookline api``
and the tests serve through ``api_runner``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger, AbstractStreamWriter
from aiohttp.http import RawRequestMessage
from aiohttp.log import access_logger
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from temporalio.client import Client

from hookline.api.app import create_app
from hookline.config.settings import Settings

log = logging.getLogger(__name__)

RequestFactory = Callable[
    [RawRequestMessage, StreamReader, RequestHandler, AbstractStreamWriter, "asyncio.Task[None]"],
    web.BaseRequest,
]
"""What makes aiohttp's request object once a request's headers are parsed."""


def api_runner(
    settings: Settings, temporal: Client | None = None, *, access_log: bool = True
) -> web.AppRunner:
    """The runner that serves ``create_app(settings, temporal)``; add a site and start it.

    Args:
        settings: Hookline's settings (``api_header_read_timeout_s``, which also bounds how
            long an answer may wait for a client that does not read it, among them).
        temporal: A connected client to use; by default the app connects one at startup.
        access_log: Log one line per request on ``aiohttp.access``.
    """
    return ApiRunner(
        create_app(settings, temporal),
        header_read_timeout_s=settings.api_header_read_timeout_s,
        access_log_class=PathAccessLogger,
        access_log=access_logger if access_log else None,
    )


class PathAccessLogger(AbstractAccessLogger):
    """One line per request, with the path but never the query string (a client may put a
    key in it), nor headers such as ``Referer``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log ``request``'s client, method, path (still percent-encoded), status and time."""
        path = request.rel_url.raw_path
        self.logger.info(
            '%s "%s %s" %d %.3fs',
            request.remote,
            request.method,
            path,
            response.status,
            time,
            extra={
                "remote": request.remote,
                "method": request.method,
                "path": path,
                "status_code": response.status,
                "duration_s": round(time, 6),
            },
        )

    @property
    def enabled(self) -> bool:
        """Whether the logger would record the line at all (it skips the work if not)."""
        return self.logger.isEnabledFor(logging.INFO)


class ApiRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are cut off when a request's headers are late, or
    its answers are not read (see ``ApiRequestHandler``).

    Args:
        app: The application.
        header_read_timeout_s: See ``ApiRequestHandler``.
        **kwargs: As ``web.AppRunner`` takes them.
    """

    def __init__(
        self, app: web.Application, *, header_read_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._header_read_timeout_s = header_read_timeout_s

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # the application starts up here
        return _ApiServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            header_read_timeout_s=self._header_read_timeout_s,
            **server._kwargs,  # what aiohttp gives each connection: access log, debug, ...
        )


class _ApiServer(web.Server):
    """aiohttp's server, making ``ApiRequestHandler`` connections and telling each when a
    request's headers are in (its request object is made then)."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        request_factory: RequestFactory,
        header_read_timeout_s: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, request_factory=self._make_api_request, **kwargs)
        self._app_request_factory = request_factory
        self._header_read_timeout_s = header_read_timeout_s

    def __call__(self) -> RequestHandler:
        return ApiRequestHandler(
            self, loop=self._loop, header_read_timeout_s=self._header_read_timeout_s, **self._kwargs
        )

    def _make_api_request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        if isinstance(protocol, ApiRequestHandler):
            protocol.headers_received()
        return self._app_request_factory(message, payload, protocol, writer, task)


class ApiRequestHandler(RequestHandler):
    """aiohttp's protocol for one connection, cutting it off (``transport.abort()``: what is
    still unsent is dropped) when the client is too slow at either end:

    - a request's line and headers take over ``header_read_timeout_s`` to arrive. The clock
      starts when the connection opens and again when a response has been sent (the next
      request on a kept-alive connection); a request's complete headers stop it. So a
      kept-alive connection left idle is closed after the same time, which a proxy in front
      must allow for.
    - what the server writes stays unsent, because the client does not read, for as long. The
      clock runs while the transport holds bytes the kernel would not take (the client's
      receive window and the socket's buffer are full), and stops when they are all sent;
      after the connection is closed too, so a closed connection cannot linger unflushed.

    Pipelined requests need no cap here: aiohttp stops reading a connection that has 32
    requests waiting, so a client that sends without reading is held by the second clock.
    """

    def __init__(self, manager: web.Server, *, header_read_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_read_timeout_s = header_read_timeout_s
        self._header_clock: asyncio.TimerHandle | None = None
        self._write_clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if isinstance(transport, asyncio.WriteTransport):
            # Tell the protocol (pause_writing) as soon as any byte waits for the client.
            transport.set_write_buffer_limits(high=0)
        self._start_header_clock()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_clock()
        self._stop_write_clock()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stop_write_clock()
        self._write_clock = self._loop.call_later(self._header_read_timeout_s, self._writes_late)

    def resume_writing(self) -> None:
        self._stop_write_clock()
        super().resume_writing()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._start_header_clock()

    def headers_received(self) -> None:
        """Stop the clock: a request's line and headers are in."""
        self._stop_header_clock()

    def _start_header_clock(self) -> None:
        self._stop_header_clock()
        if self.transport is not None:
            self._header_clock = self._loop.call_later(
                self._header_read_timeout_s, self._headers_late
            )

    def _stop_header_clock(self) -> None:
        if self._header_clock is not None:
            self._header_clock.cancel()
            self._header_clock = None

    def _stop_write_clock(self) -> None:
        if self._write_clock is not None:
            self._write_clock.cancel()
            self._write_clock = None

    def _headers_late(self) -> None:
        self._header_clock = None
        log.debug(
            "cutting off a connection from %s: no complete request headers in %s s",
            self.peername,
            self._header_read_timeout_s,
        )
        self._cut_off()

    def _writes_late(self) -> None:
        self._write_clock = None
        log.debug(
            "cutting off a connection from %s: its answer waited %s s for it to read",
            self.peername,
            self._header_read_timeout_s,
        )
        self._cut_off()

    def _cut_off(self) -> None:
        # abort(), not close(): close() waits to send what is buffered, to a client that may
        # never read it.
        transport = self.transport
        if transport is not None:
            transport.abort()
        self.force_close()

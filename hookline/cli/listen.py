"""``hookline listen``: a local receiver that verifies, prints and answers each delivery."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from hookline.cli.api_client import (
    ApiAccess,
    ApiCallError,
    ApiClient,
    ApiUnreachableError,
    add_api_options,
    api_access,
)
from hookline.cli.delivery_lines import LOOKUP_FOR_S, DeliveryLine, DeliveryPrinter, EventTypes
from hookline.cli.parsing import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    Subcommands,
    UsageError,
    add_command,
)
from hookline.cli.signature_verifier import (
    NoMatchingSignatureError,
    SignatureError,
    SignatureVerifier,
)
from hookline.config.settings import Settings

COMMAND = "listen"
SUMMARY = "receive an endpoint's deliveries here, for development: verify, print and answer each"
MAX_BODY_BYTES = 1024 * 1024
"""The largest body read (``--max-body-bytes``): four times the payload limit Hookline's API
sets by default (``HOOKLINE_MAX_PAYLOAD_BYTES``), which it never sends more than."""
MAX_FORWARD_ANSWER_BYTES = 1024 * 1024
"""The largest answer of the ``--forward`` application passed on to Hookline."""
REFRESH_EVERY_S = 10.0
"""The endpoint is read again at most this often (for a request whose signature does not
match): anyone can send one, and each read spends the API key's rate limit."""
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What stops the listener (SIGHUP: its terminal closed), deleting the endpoint it made."""

DETAILS = f"""\
Each delivery's signature is checked with the endpoint's scheme and secret, read through the
API at start, and read again (at most once every {REFRESH_EVERY_S:g} s) when a well-formed, fresh
request's signature does not match: a rotated secret applies at once, a changed scheme or
signature header once restarted. One line is printed per delivery, in the order they are
answered: time, webhook-id (the event's id), event type, verified or NOT VERIFIED (why), and
the status answered: 204 when verified, 401 when not (so Hookline retries, as at a real
receiver), 413 for a body over --max-body-bytes. Under the standard scheme, whose signature
covers the webhook-id, the event type is the event's, read through the API once the delivery
is answered (for up to {LOOKUP_FOR_S:g} s: an event is recorded just after its deliveries start);
otherwise, or failing that, it is the body's "type", else a webhook-event-type or x-event-type
header's, else -. With --forward, verified deliveries go on to your application with the same
body and headers, and its answer is Hookline's (502 if it cannot be reached or its answer is
over {MAX_FORWARD_ANSWER_BYTES // 1024 // 1024} MiB). Ctrl-C, SIGTERM or SIGHUP stops it, with exit
code 0 (that is how it is meant to stop), and deletes the endpoint --create made."""
UNVERIFIED_STATUS = 401
TOO_LARGE_STATUS = 413
FORWARD_FAILED_STATUS = 502
API_TIMEOUT_S = 10
FORWARD_TIMEOUT_S = 30
TEMPORARY_DESCRIPTION = "hookline listen (temporary)"
NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",  # recomputed for the same bytes
    }
)
"""Hop-by-hop headers (RFC 9110 7.6.1) and those of this connection only: never forwarded."""

API_ERRORS = (ApiCallError, ApiUnreachableError)
RefreshVerifier = Callable[[], Awaitable[SignatureVerifier]]


def add_commands(commands: Subcommands) -> None:
    """Add ``listen`` to ``hookline``'s subcommands."""
    listen = add_command(commands, COMMAND, SUMMARY)
    listen.epilog = DETAILS
    listen.formatter_class = argparse.RawDescriptionHelpFormatter
    add_api_options(listen)
    listen.add_argument("--app", required=True, help="the endpoint's app (id or uid)")
    target = listen.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoint", help="the endpoint whose deliveries this receives")
    target.add_argument(
        "--create",
        action="store_true",
        help="create a temporary endpoint pointing here, and delete it on exit",
    )
    listen.add_argument(
        "--event-types",
        help="with --create: the comma-separated event types it receives, * matching the rest"
        " (e.g. batch.*,job.failed); default: every type",
    )
    listen.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on; default: 127.0.0.1"
    )
    listen.add_argument(
        "--port", type=_port, default=9000, help="default: 9000; 0 picks a free one"
    )
    listen.add_argument(
        "--forward",
        type=_http_url,
        metavar="URL",
        help="forward verified deliveries to this URL and answer with its answer",
    )
    listen.add_argument("--body", action="store_true", help="print each delivery's body too")
    listen.add_argument(
        "--max-body-bytes",
        type=_positive,
        default=MAX_BODY_BYTES,
        metavar="N",
        help=f"refuse (413) a request with a larger body; default: {MAX_BODY_BYTES}",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Receive deliveries until Ctrl-C, SIGTERM or SIGHUP.

    Args:
        args: The parsed ``hookline listen`` arguments.
        settings: Where the API is, and its key, unless the arguments say.

    Returns:
        The process's exit code: 0 once stopped by SIGINT (Ctrl-C), SIGTERM or SIGHUP, 1 if
        the API answered an error or could not be reached (or the address is taken), 2 a usage
        error.
    """
    try:
        if args.event_types and not args.create:
            raise UsageError("--event-types needs --create")
        return asyncio.run(_listen(args, api_access(args, settings)))
    except UsageError as err:
        print(f"hookline: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before the signal handlers were in place
        return EXIT_OK


@dataclass
class LocalReceiver:
    """Answers deliveries: verifies each, answers or forwards it, and queues its line."""

    verifier: SignatureVerifier
    refresh: RefreshVerifier
    """Reads the endpoint's scheme and secret again (after a rotation)."""
    forward_url: str | None
    forward_http: aiohttp.ClientSession
    printer: DeliveryPrinter
    with_body: bool = False
    """Whether lines print the body (else it is dropped once the request is answered)."""
    max_body_bytes: int = MAX_BODY_BYTES
    refresh_every_s: float = REFRESH_EVERY_S
    _refreshing: asyncio.Future[SignatureVerifier] | None = field(
        default=None, init=False, repr=False
    )
    _refreshed_at: float | None = field(default=None, init=False, repr=False)

    async def handle(self, request: web.Request) -> web.Response:
        """Verify one delivery, answer it, and queue its line (printed once its event's type
        is read, which the answer does not wait for)."""
        received = datetime.now().astimezone()
        declared = request.content_length
        too_large = declared is not None and declared > self.max_body_bytes
        body = None if too_large else await _read_within(request.content, self.max_body_bytes)
        look_up, note = False, ""
        if body is None:
            verdict = f"NOT VERIFIED (body over {self.max_body_bytes} bytes)"
            response = web.Response(
                status=TOO_LARGE_STATUS, text=f"body over {self.max_body_bytes} bytes\n"
            )
        else:
            try:
                verifier = await self._verifier_of(request.headers, body)
            except SignatureError as err:
                verdict = f"NOT VERIFIED ({err})"
                response = web.Response(
                    status=UNVERIFIED_STATUS, text=f"signature not verified: {err}\n"
                )
            else:
                verdict, look_up = "verified", verifier.signs_id
                response = web.Response(status=204)
                if self.forward_url is not None:
                    response, note = await self._forwarded(self.forward_url, request, body)
        answer = f"-> {response.status}{note}"
        line = DeliveryLine.of(received, request.headers, body, verdict, answer, self.with_body)
        self.printer.add(line, look_up=look_up)
        return response

    async def _verifier_of(self, headers: Mapping[str, str], body: bytes) -> SignatureVerifier:
        """The verifier the request verifies with: the endpoint's as last read, else, when the
        only fault is that no signature matches (a rotated secret), as read again now.

        Raises:
            SignatureError: the request does not verify (the message says why).
        """
        verifier = self.verifier
        try:
            verifier.verify(headers, body)
        except NoMatchingSignatureError:
            fresh = await self._refreshed()
            if fresh == verifier:
                raise
            fresh.verify(headers, body)
            return fresh
        return verifier

    async def _refreshed(self) -> SignatureVerifier:
        """The endpoint's verifier, read again unless it was less than ``refresh_every_s``
        ago: anyone can send a request that does not verify, and each read spends the API
        key's rate limit and reveals the secret. Requests made during a read share it."""
        if self._refreshing is None or self._refreshing.done():
            now = time.monotonic()
            if self._refreshed_at is not None and now - self._refreshed_at < self.refresh_every_s:
                return self.verifier
            self._refreshed_at = now
            self._refreshing = asyncio.ensure_future(self._read_again())
        # Shielded: a request that goes away must not cancel the read the others wait for.
        return await asyncio.shield(self._refreshing)

    async def _read_again(self) -> SignatureVerifier:
        try:
            fresh = await self.refresh()
        except (*API_ERRORS, ValueError):  # ValueError: a scheme this command cannot verify
            return self.verifier
        if fresh != self.verifier:
            self.verifier = fresh
        return self.verifier

    async def _forwarded(
        self, url: str, request: web.Request, body: bytes
    ) -> tuple[web.Response, str]:
        """The forward target's answer to the same body and headers, and a note for the line
        (why, when it cannot be reached). Hookline stores the answer, so a failure's says
        nothing of ``url``."""
        dropped = NOT_FORWARDED | {
            name.strip().lower() for name in request.headers.get("connection", "").split(",")
        }
        headers = CIMultiDict(
            (name, value) for name, value in request.headers.items() if name.lower() not in dropped
        )
        try:
            async with self.forward_http.post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                skip_auto_headers=("accept", "accept-encoding", "user-agent", "content-type"),
            ) as answer:
                answer_body = await _read_within(answer.content, MAX_FORWARD_ANSWER_BYTES)
                content_type = answer.headers.get("content-type")
        except (aiohttp.ClientError, TimeoutError) as err:
            reason = str(err) or type(err).__name__
            text = "hookline listen could not reach the application it forwards to\n"
            failed = web.Response(status=FORWARD_FAILED_STATUS, text=text)
            return failed, f" (forward failed: {reason})"
        if answer_body is None:
            limit = MAX_FORWARD_ANSWER_BYTES
            text = f"the application's answer was too large (over {limit} bytes)\n"
            failed = web.Response(status=FORWARD_FAILED_STATUS, text=text)
            return failed, f" (forward failed: a {answer.status} answer over {limit} bytes)"
        answered = web.Response(status=answer.status, body=answer_body)
        if content_type is not None:
            answered.headers["content-type"] = content_type
        return answered, ""


async def _read_within(stream: aiohttp.StreamReader, limit: int) -> bytes | None:
    """All of ``stream``, or ``None`` as soon as it is over ``limit`` bytes (reading no more)."""
    data = bytearray()
    async for chunk in stream.iter_any():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


async def _listen(args: argparse.Namespace, access: ApiAccess) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    api_session = access.session(aiohttp.ClientTimeout(total=API_TIMEOUT_S))
    # Its own session: the API's carries the API key, which must never be forwarded.
    forward_session = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
    )
    async with api_session as api_http, forward_session as forward_http:
        api = ApiClient(api_http, access.url)
        try:
            sock = _bound_socket(args.host, args.port)
        except OSError as err:
            return _failed(f"cannot listen on {args.host}:{args.port}: {err}")
        with sock:
            here = _local_url(args.host, sock.getsockname()[1])
            try:
                if args.create:
                    endpoint = await _created_endpoint(api, args.app, here, args.event_types)
                else:
                    endpoint = await _endpoint_with_secret(api, args.app, args.endpoint)
            except API_ERRORS as err:
                return _failed(access.explain(err))
            code = EXIT_ERROR
            try:
                receiver = LocalReceiver(
                    verifier=_verifier(endpoint),
                    refresh=lambda: _fetched_verifier(api, args.app, endpoint["id"]),
                    forward_url=args.forward,
                    forward_http=forward_http,
                    printer=DeliveryPrinter(EventTypes(api, args.app)),
                    with_body=args.body,
                    max_body_bytes=args.max_body_bytes,
                )
            except ValueError as err:  # a scheme or secret this command cannot verify
                _failed(str(err))
            else:
                code = await _serve(receiver, sock, _startup_lines(args, here, endpoint), stop)
            finally:
                if args.create and not await _deleted(api, args.app, endpoint["id"]):
                    code = EXIT_ERROR
            return code


async def _serve(
    receiver: LocalReceiver, sock: socket.socket, startup: list[str], stop: asyncio.Event
) -> int:
    """Answer deliveries on ``sock`` until ``stop`` is set; the exit code."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    # A short shutdown: a forward in flight must not hold Ctrl-C for long.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    printing = asyncio.ensure_future(receiver.printer.run())
    try:
        await web.SockSite(runner, sock).start()
        print("\n".join(startup), flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()  # the deliveries in flight are answered: their lines are queued
        receiver.printer.close()
        await printing
    return EXIT_OK


def _startup_lines(args: argparse.Namespace, here: str, endpoint: Mapping[str, Any]) -> list[str]:
    temporary = " (temporary: deleted on exit)" if args.create else ""
    lines = [
        f"Listening on {here}",
        f"Endpoint {endpoint['id']} of app {args.app}{temporary}: {endpoint['url']}, "
        f"signature scheme {endpoint['signature_scheme']}",
    ]
    if args.forward:
        lines.append(f"Forwarding verified deliveries to {args.forward}")
    return [*lines, "Ready: Ctrl-C stops."]


async def _created_endpoint(
    api: ApiClient, app: str, url: str, event_types: str | None
) -> dict[str, Any]:
    """A new endpoint of ``app`` for ``url``: its view, with its secret."""
    body: dict[str, Any] = {"url": url, "description": TEMPORARY_DESCRIPTION}
    if event_types:
        body["event_types"] = [t.strip() for t in event_types.split(",")]
    created: dict[str, Any] = await api.call(
        "POST", f"/v1/apps/{quote(app, safe='')}/endpoints", body
    )
    return created


async def _endpoint_with_secret(api: ApiClient, app: str, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's view and, under ``secret``, its current secret."""
    path = f"/v1/apps/{quote(app, safe='')}/endpoints/{quote(endpoint_id, safe='')}"
    endpoint: dict[str, Any] = await api.call("GET", path)
    revealed = await api.call("GET", f"{path}/secret")
    return {**endpoint, "secret": revealed["secret"]}


async def _fetched_verifier(api: ApiClient, app: str, endpoint_id: str) -> SignatureVerifier:
    return _verifier(await _endpoint_with_secret(api, app, endpoint_id))


def _verifier(endpoint: Mapping[str, Any]) -> SignatureVerifier:
    """The verifier of an endpoint's view (with its secret).

    Raises:
        ValueError: a scheme unknown to this command, or a secret that does not fit it.
    """
    return SignatureVerifier(
        endpoint["signature_scheme"], endpoint["secret"], endpoint.get("signature_header")
    )


async def _deleted(api: ApiClient, app: str, endpoint_id: str) -> bool:
    """Delete the temporary endpoint (gone already is fine); whether that worked."""
    path = f"/v1/apps/{quote(app, safe='')}/endpoints/{quote(endpoint_id, safe='')}"
    try:
        await api.call("DELETE", path)
    except API_ERRORS as err:
        if _status(err) != 404:
            _failed(f"could not delete the temporary endpoint {endpoint_id}: {err}")
            return False
    print(f"Deleted the temporary endpoint {endpoint_id}.", flush=True)
    return True


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def _local_url(host: str, port: int) -> str:
    """The URL Hookline reaches this receiver at, on this machine."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _status(err: Exception) -> int | None:
    return err.status if isinstance(err, ApiCallError) else None


def _failed(message: str) -> int:
    print(f"hookline: {message}", file=sys.stderr, flush=True)
    return EXIT_ERROR


def _port(value: str) -> int:
    port = int(value) if value.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return port


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive whole number")
    return int(value)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s):// URL")
    return value

"""``hookline listen``: a local receiver that verifies each delivery's signature, prints a line
for it and answers it (or forwards it), run as a process against a real Hookline."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from hookline.cli import listen as listen_cli
from hookline.cli.api_client import ApiClient
from hookline.cli.delivery_lines import DeliveryPrinter, EventTypes
from hookline.cli.main import build_parser, main
from hookline.cli.signature_verifier import SignatureVerifier
from hookline.config.settings import Settings
from hookline.contracts.signing import signature_headers
from tests.conftest import free_port
from tests.harness import Hookline, Receiver, wait_for
from tests.test_people_cli import finished, hookline_cli, start_cli

CLI = str(Path(sys.executable).parent / "hookline")
SCHEMES = ["standard", "stripe", "sha256-timestamp", "hmac-hex"]
READY = "Ready: Ctrl-C stops."
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@dataclass
class Listener:
    """A running ``hookline listen``: what it printed so far, and where it listens."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    url: str = ""
    endpoint_id: str = ""
    reading: asyncio.Future[None] | None = None

    def start_reading(self) -> None:
        """Collect stdout's lines in ``lines`` as they come, until it ends."""

        async def read() -> None:
            assert self.process.stdout is not None
            while line := await self.process.stdout.readline():
                self.lines.append(line.decode().rstrip("\n"))

        self.reading = asyncio.ensure_future(read())

    async def line_with(self, text: str) -> str:
        """The first line printed that holds ``text`` (waiting for it)."""
        try:
            return await wait_for(
                lambda: next((line for line in self.lines if text in line), None), timeout=30
            )
        except AssertionError:
            raise AssertionError(f"no line with {text!r} in {self.lines}") from None

    def fields(self, line: str) -> list[str]:
        """A delivery line's fields: time, id, event type, verdict, answer."""
        fields = line.split("  ")
        assert TIME.fullmatch(fields[0]), line
        return fields[1:]

    async def stopped(self, sig: signal.Signals) -> tuple[int, str]:
        """Send ``sig``; the exit code and stderr once it has exited (and ``lines`` all)."""
        self.process.send_signal(sig)
        return await self.exited()

    async def exited(self) -> tuple[int, str]:
        assert self.process.stderr is not None and self.reading is not None
        err = await asyncio.wait_for(self.process.stderr.read(), 30)
        await asyncio.wait_for(self.reading, 30)
        return await asyncio.wait_for(self.process.wait(), 30), err.decode()


@asynccontextmanager
async def listening(hookline: Hookline, *args: str) -> AsyncIterator[Listener]:
    """Start ``hookline listen`` against the test API and wait until it says it is ready."""
    listener = Listener(await start_cli(hookline, "listen", *args))
    listener.start_reading()
    try:
        await wait_for(
            lambda: READY in listener.lines or listener.process.returncode is not None,
            what="hookline listen ready",
        )
        assert READY in listener.lines, (listener.lines, await listener.exited())
        [here] = [line for line in listener.lines if line.startswith("Listening on ")]
        [endpoint] = [line for line in listener.lines if line.startswith("Endpoint ")]
        listener.url = here.removeprefix("Listening on ")
        listener.endpoint_id = endpoint.split()[1]
        yield listener
    finally:
        if listener.process.returncode is None:
            listener.process.kill()
            await listener.exited()


async def post(
    url: str, body: bytes | AsyncIterator[bytes], headers: dict[str, str]
) -> tuple[int, str]:
    """POST to the listener as anyone could (chunked, for an iterator); its status and body."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={"content-type": "application/json", **headers}) as r,
    ):
        return r.status, await r.text()


def compact(payload: Any) -> bytes:
    """The bytes Hookline sends for a payload."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def other_secret(scheme: str) -> str:
    if scheme == "standard":
        return "whsec_" + base64.b64encode(os.urandom(32)).decode()
    return "not-the-endpoint-secret-" + os.urandom(4).hex()


async def test_create_verifies_deliveries_and_deletes_its_endpoint(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    args = ["--app", app_id, "--create", "--port", "0", "--event-types", "order.*", "--body"]
    async with listening(hookline, *args) as listener:
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*/", listener.url), listener.url
        path = f"/v1/apps/{app_id}/endpoints/{listener.endpoint_id}"
        endpoint = await hookline.ok("GET", path)
        assert (endpoint["url"], endpoint["event_types"]) == (listener.url, ["order.*"])
        assert "(temporary: deleted on exit)" in listener.lines[1], listener.lines

        payload = {"type": "order.paid", "amount": 1234, "note": "café ☕"}
        event = await hookline.send_event(app_id, "order.paid", payload, id="evt_listen_1")
        await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

        line = await listener.line_with("evt_listen_1")
        assert listener.fields(line) == ["evt_listen_1", "order.paid", "verified", "-> 204"]
        body = listener.lines[listener.lines.index(line) + 1]
        assert body.encode() == compact(payload)

        code, err = await listener.stopped(signal.SIGINT)

    assert code == 0, err
    assert listener.lines[-1] == f"Deleted the temporary endpoint {listener.endpoint_id}."
    status, _ = await hookline.call("GET", path)
    assert status == 404


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_an_endpoint_s_scheme_is_verified_and_forgeries_are_refused(
    hookline: Hookline, scheme: str
) -> None:
    app_id = await hookline.create_app()
    header = "X-Acme-Signature" if scheme in ("stripe", "hmac-hex") else None
    fields: dict[str, Any] = {"signature_scheme": scheme}
    if header:
        fields["signature_header"] = header
    endpoint = await hookline.create_endpoint(app_id, "http://127.0.0.1:9/", **fields)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    args = ["--app", app_id, "--endpoint", endpoint["id"], "--port", "0"]
    async with listening(hookline, *args) as listener:
        assert listener.endpoint_id == endpoint["id"]
        assert "temporary" not in listener.lines[1] and scheme in listener.lines[1]
        await hookline.ok("PATCH", path, {"url": listener.url})

        # The payload has no "type": the line has the event's, read through the API, where
        # the signature covers the webhook-id (else anyone could send a signed body again
        # under another event's id, and the line would show that event's type).
        event = await hookline.send_event(app_id, "job.done", {"n": 1}, id=f"evt_{scheme}_1")
        await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
        line = await listener.line_with(f"evt_{scheme}_1")
        event_type = "job.done" if scheme == "standard" else "-"
        assert listener.fields(line) == [f"evt_{scheme}_1", event_type, "verified", "-> 204"]

        # A rotation without grace: the first delivery after it makes the listener read the
        # new secret, and it verifies at once.
        await hookline.ok("POST", f"{path}/secret/rotate", {"grace_s": 0})
        event = await hookline.send_event(app_id, "job.done", {"n": 2}, id=f"evt_{scheme}_2")
        view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
        assert view["attempts"] == 1, view
        line = await listener.line_with(f"evt_{scheme}_2")
        assert listener.fields(line)[2:] == ["verified", "-> 204"]

        # Well-formed, but signed with another secret.
        body, now = compact({"type": "job.done"}), int(time.time())
        forged = signature_headers(scheme, [other_secret(scheme)], "msg_forged", now, body, header)
        assert await post(listener.url, body, forged) == (
            401,
            "signature not verified: no matching signature\n",
        )
        line = await listener.line_with("msg_forged")
        assert listener.fields(line) == [
            "msg_forged",
            "job.done",
            "NOT VERIFIED (no matching signature)",
            "-> 401",
        ]
        # No signature at all.
        status, _ = await post(listener.url, body, {"webhook-id": "msg_unsigned"})
        assert status == 401
        assert "NOT VERIFIED (no " in await listener.line_with("msg_unsigned")
        if scheme != "hmac-hex":  # the schemes that sign a timestamp
            secret = (await hookline.ok("GET", f"{path}/secret"))["secret"]
            stale = signature_headers(scheme, [secret], "msg_stale", now - 600, body, header)
            status, _ = await post(listener.url, body, stale)
            assert status == 401
            line = await listener.line_with("msg_stale")
            assert re.search(r"NOT VERIFIED \(timestamp 6\d\d s old", line), line

        code, err = await listener.stopped(signal.SIGTERM)

    assert code == 0, err
    assert not any(line.startswith("Deleted") for line in listener.lines)
    await hookline.ok("GET", path)  # not temporary: still there


async def test_forward_passes_the_delivery_on_and_answers_with_the_app_s_answer(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.default, receiver.body = (201, {"content-type": "text/plain"}), "made invoice 7"
    app_id = await hookline.create_app()
    args = ["--app", app_id, "--create", "--port", "0", "--forward", receiver.url]
    async with listening(hookline, *args) as listener:
        assert f"Forwarding verified deliveries to {receiver.url}" in listener.lines
        payload = {"note": "café ☕ — 日本語", "items": [1, 2.5, None, {"ü": "ß"}]}
        event = await hookline.send_event(app_id, "invoice.paid", payload, id="evt_forward")
        delivery_id = event["deliveries"][0]["id"]
        await hookline.wait_status(app_id, delivery_id, "succeeded")

        [request] = receiver.requests
        assert request.body == compact(payload)
        headers = {name.lower(): value for name, value in request.headers.items()}
        assert headers["webhook-id"] == "evt_forward"
        assert headers["user-agent"].startswith("Hookline-Webhooks/")
        assert "authorization" not in headers  # the listener's API key stays with it
        secret = await hookline.ok(
            "GET", f"/v1/apps/{app_id}/endpoints/{listener.endpoint_id}/secret"
        )
        assert Webhook(secret["secret"]).verify(request.body, headers) == payload
        line = await listener.line_with("evt_forward")
        assert listener.fields(line) == ["evt_forward", "invoice.paid", "verified", "-> 201"]
        attempts = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries/{delivery_id}/attempts")
        [attempt] = attempts["data"]
        assert (attempt["status_code"], attempt["response_body"]) == (201, "made invoice 7")

        code, err = await listener.stopped(signal.SIGINT)
        assert code == 0, err

    # An application that is not running: a verified delivery is answered 502.
    dead = f"http://127.0.0.1:{free_port()}/webhooks"
    args = ["--app", app_id, "--create", "--port", "0", "--forward", dead]
    async with listening(hookline, *args) as listener:
        path = f"/v1/apps/{app_id}/endpoints/{listener.endpoint_id}/secret"
        secret = (await hookline.ok("GET", path))["secret"]
        body = compact({"type": "invoice.paid"})
        # Verified, but no such event: the listener looks for it a while (answering at once),
        # then falls back to the body's type.
        signed = signature_headers("standard", [secret], "msg_1", int(time.time()), body)
        # Hookline keeps the answer in the attempt log: it says nothing of the URL.
        assert await post(listener.url, body, signed) == (
            502,
            "hookline listen could not reach the application it forwards to\n",
        )
        # Not verified, so not looked up: its line still waits for the one before it.
        assert (await post(listener.url, body, {"webhook-id": "msg_2"}))[0] == 401
        assert not any("msg_" in line for line in listener.lines), listener.lines
        line = await listener.line_with("msg_1")
        assert listener.fields(line)[:3] == ["msg_1", "invoice.paid", "verified"]
        assert listener.fields(line)[3].startswith("-> 502 (forward failed: "), line
        after = await listener.line_with("msg_2")
        assert listener.lines.index(line) < listener.lines.index(after), listener.lines
        code, err = await listener.stopped(signal.SIGINT)
        assert code == 0, err


async def test_api_errors_exit_1_with_one_line(hookline: Hookline) -> None:
    app_id = await hookline.create_app()

    code, out, err = await hookline_cli(
        hookline, "listen", "--app", app_id, "--endpoint", "ep_nope", "--port", "0"
    )
    assert (code, out) == (1, ""), err
    assert err.startswith("hookline: error 404 not_found") and err.count("\n") == 1, err

    code, out, err = await hookline_cli(
        hookline, "listen", "--app", "no-such-app", "--create", "--port", "0"
    )
    assert (code, out) == (1, ""), err
    assert err.startswith("hookline: error 404 not_found") and err.count("\n") == 1, err


async def run_listen(*args: str) -> tuple[int, str, str]:
    """Run ``hookline listen`` to its end, with no Hookline behind it."""
    process = await asyncio.create_subprocess_exec(
        CLI,
        "listen",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return await finished(process)


@pytest.mark.parametrize(
    "usage",
    [
        ["--app", "acme"],
        ["--app", "acme", "--create", "--endpoint", "ep_1"],
        ["--app", "acme", "--create", "--port", "70000"],
        ["--app", "acme", "--create", "--forward", "ftp://example.com/"],
    ],
)
def test_usage_errors_exit_2(usage: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["listen", *usage])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and re.search(r"\blisten: error: ", err), err


def test_event_types_need_create(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["listen", "--app", "a", "--endpoint", "e", "--event-types", "x"]
    )
    assert listen_cli.run(args, Settings()) == 2
    assert capsys.readouterr().err == "hookline: --event-types needs --create\n"


def test_api_url_must_be_http(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["listen", "--app", "a", "--create", "--api-url", "localhost", "--api-key", "k"]
    )
    assert listen_cli.run(args, Settings()) == 2
    assert "hookline: --api-url must start with http:// or https://" in capsys.readouterr().err


async def test_unreachable_api_or_a_taken_port_exit_1() -> None:
    api = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        no_api, port_taken = await asyncio.gather(  # at once: each starts a Python process
            run_listen(
                "--app", "acme", "--create", "--port", "0", "--api-url", api, "--api-key", "k"
            ),
            run_listen("--app", "acme", "--create", "--port", port, "--api-key", "k"),
        )

    code, out, err = no_api
    assert (code, out) == (1, ""), err
    assert err.startswith(f"hookline: cannot reach the API at {api}") and err.count("\n") == 1
    code, out, err = port_taken
    assert (code, out) == (1, ""), err
    assert err.startswith(f"hookline: cannot listen on 127.0.0.1:{port}"), err


@pytest.mark.shared_stack
async def test_sighup_stops_it_and_deletes_its_endpoint(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    async with listening(hookline, "--app", app_id, "--create", "--port", "0") as listener:
        code, err = await listener.stopped(signal.SIGHUP)  # the terminal closed

    assert code == 0, err
    assert listener.lines[-1] == f"Deleted the temporary endpoint {listener.endpoint_id}."
    status, _ = await hookline.call("GET", f"/v1/apps/{app_id}/endpoints/{listener.endpoint_id}")
    assert status == 404


def test_the_secret_stays_out_of_the_verifier_s_repr() -> None:
    secret = other_secret("standard")
    assert secret not in repr(SignatureVerifier("standard", secret))
    assert "whsec_" not in repr(SignatureVerifier("stripe", "whsec_" + secret))


ReadEndpoint = Callable[[], Awaitable[SignatureVerifier]]


@asynccontextmanager
async def serving(
    verifier: SignatureVerifier, read_endpoint: ReadEndpoint | None = None, **fields: Any
) -> AsyncIterator[tuple[str, listen_cli.LocalReceiver]]:
    """A ``hookline listen`` receiver in this process (its lines on stdout, for ``capsys``),
    with ``read_endpoint`` in place of the API's endpoint; no API behind it (an event's type
    cannot be read). Yields its URL and the receiver; on exit, once it has printed every line."""

    async def unchanged() -> SignatureVerifier:
        return verifier

    async with aiohttp.ClientSession() as http:
        no_api = ApiClient(http, f"http://127.0.0.1:{free_port()}")
        receiver = listen_cli.LocalReceiver(
            verifier=verifier,
            refresh=read_endpoint or unchanged,
            forward_http=http,
            printer=DeliveryPrinter(EventTypes(no_api, "acme")),
            **{"forward_url": None, **fields},
        )
        stop = asyncio.Event()
        with listen_cli._bound_socket("127.0.0.1", 0) as sock:  # accepting from here on
            url = listen_cli._local_url("127.0.0.1", sock.getsockname()[1])
            served = asyncio.ensure_future(listen_cli._serve(receiver, sock, [READY], stop))
            try:
                yield url, receiver
            finally:
                stop.set()
                assert await asyncio.wait_for(served, 30) == 0


async def test_only_a_signature_a_new_secret_could_match_reads_the_endpoint_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, new = other_secret("standard"), other_secret("standard")
    endpoint = SignatureVerifier("standard", old)
    reads = 0

    async def read_endpoint() -> SignatureVerifier:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.3)  # the requests sent meanwhile wait for this read
        return endpoint

    body = compact({"type": "job.done"})
    async with serving(endpoint, read_endpoint, refresh_every_s=0) as (url, receiver):
        assert old not in repr(receiver)
        now = int(time.time())
        signed = signature_headers("standard", [new], "msg_new", now, body)
        never_read_for = [
            {"webhook-id": "msg_unsigned"},
            {**signed, "webhook-signature": "v1"},  # malformed
            signature_headers("standard", [new], "msg_stale", now - 600, body),
            {name: value for name, value in signed.items() if name != "webhook-id"},
        ]
        for headers in never_read_for:
            assert (await post(url, body, headers))[0] == 401
        assert reads == 0

        # The secret rotated: twenty deliveries at once, one read, and all verify.
        endpoint = SignatureVerifier("standard", new)
        answers = await asyncio.gather(*(post(url, body, signed) for _ in range(20)))
        assert [status for status, _ in answers] == [204] * 20
        assert (reads, receiver.verifier) == (1, endpoint)

        # A forgery each time, but the endpoint is read at most once every refresh_every_s.
        receiver.refresh_every_s = 1
        await asyncio.sleep(1.1)
        forged = signature_headers("standard", [old], "msg_forged", int(time.time()), body)
        for expected_reads in (2, 2, 2):
            assert (await post(url, body, forged))[0] == 401
            assert reads == expected_reads
        await asyncio.sleep(1.1)
        assert (await post(url, body, forged))[0] == 401
        assert reads == 3

    out = capsys.readouterr().out
    assert out.count("  msg_new  job.done  verified  -> 204\n") == 20, out
    assert "  msg_forged  job.done  NOT VERIFIED (no matching signature)  -> 401\n" in out


async def test_bodies_are_capped_and_printed_without_control_characters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    verifier = SignatureVerifier("standard", other_secret("standard"))
    limit = 200_000
    async with serving(verifier, with_body=True, max_body_bytes=limit) as (url, _):
        hostile = b'{"x": "\x1b]52;c;aGVsbG8=\x07\x1b[2J\r\n\tnext \xc2\x9b2J"}'
        signed = signature_headers(
            "standard", [verifier.secret], "msg_esc", int(time.time()), hostile
        )
        assert (await post(url, hostile, signed))[0] == 204
        # A body the type's JSON parser gives up on, of the largest size read.
        deep = b"[" * limit
        assert (await post(url, deep, {"webhook-id": "msg_deep"}))[0] == 401

        too_large = (413, f"body over {limit} bytes\n")
        assert await post(url, b"x" * (limit + 1), {"webhook-id": "msg_big"}) == too_large

        async def chunked() -> AsyncIterator[bytes]:  # no content-length to refuse it by
            for _ in range(3):
                yield b"x" * (limit // 2)

        assert await post(url, chunked(), {"webhook-id": "msg_chunked"}) == too_large

    lines = capsys.readouterr().out.splitlines()
    assert "\x1b" not in "".join(lines) and "\x9b" not in "".join(lines), lines
    escaped = lines.index(next(line for line in lines if "  msg_esc  " in line))
    assert lines[escaped + 1 : escaped + 3] == [
        '{"x": "\\x1b]52;c;aGVsbG8=\\x07\\x1b[2J\\r',
        '\tnext \\x9b2J"}',
    ]
    assert any(
        line.endswith("  msg_deep  -  NOT VERIFIED (no webhook-signature header)  -> 401")
        for line in lines
    ), lines
    assert [line.split("  ", 1)[1] for line in lines[-2:]] == [
        f"{msg_id}  -  NOT VERIFIED (body over {limit} bytes)  -> 413"
        for msg_id in ("msg_big", "msg_chunked")
    ]


async def test_forward_passes_on_an_answer_of_at_most_1_mib(
    receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    verifier = SignatureVerifier("standard", other_secret("standard"))
    limit = listen_cli.MAX_FORWARD_ANSWER_BYTES
    body = compact({"type": "report.ready"})
    async with serving(verifier, forward_url=receiver.url) as (url, _):
        for size, msg_id in ((limit, "msg_largest"), (limit + 1, "msg_too_large")):
            receiver.body = "x" * size
            signed = signature_headers(
                "standard", [verifier.secret], msg_id, int(time.time()), body
            )
            status, text = await post(url, body, signed)
            if size == limit:
                assert (status, len(text)) == (200, limit)
            else:
                assert (status, text) == (
                    502,
                    f"the application's answer was too large (over {limit} bytes)\n",
                )

    out = capsys.readouterr().out
    assert "  msg_largest  report.ready  verified  -> 200\n" in out, out
    assert (
        "  msg_too_large  report.ready  verified"
        f"  -> 502 (forward failed: a 200 answer over {limit} bytes)\n" in out
    ), out

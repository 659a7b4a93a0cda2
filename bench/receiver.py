"""The benchmark's webhook receiver, run as its own process: counts deliveries and when they came.

``python -m bench.receiver PORT`` answers 204 on any path, except paths under ``/fail``,
which answer 503. ``GET /stats`` returns ``{"count", "requests", "received": {"<webhook-id>
<path>": t}}`` (``received`` with ``?full=1``), counting first receipts of 2xx answers only.

The lane scenarios (``bench.lanes``) also set how paths behave: ``POST /behave`` with
``{"prefix", "mode", "delay_s"}`` makes every path under ``prefix`` (the longest prefix set
wins) answer ``ok`` (204 after ``delay_s``), ``fail`` (503 at once), ``hang`` (nothing until
the client gives up, or ``delay_s``) or ``flaky`` (503 to a ``fail_ratio`` of requests at
random, from a ``random.Random(seed)`` of the prefix's own, 204 to the rest, each decided when
it arrives and answered after ``delay_s``; a 204 counts as received once it is answered); it
answers ``{"at": t}``, the time the change took effect. ``GET /log`` lists every request as
``[path, webhook-id, start, end, status, peer-port]`` (``status`` is null for a request the
client abandoned, ``end`` for one still open; ``peer-port``, the sender's TCP port, tells
which process holds the connection).
``POST /reset`` forgets receipts, behaviours and the log.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

from aiohttp import web

HANG_AT_MOST_S = 600.0
"""A hanging request gives up by itself after this long, if its client never does."""

received: dict[str, float] = {}
requests = 0
behaviours: dict[str, tuple[str, float]] = {}
flaky: dict[str, tuple[float, random.Random]] = {}
"""Each ``flaky`` prefix's ratio of 503s and its random numbers."""
log: list[list[object]] = []


def _prefix(path: str) -> str | None:
    prefixes = [prefix for prefix in behaviours if path.startswith(prefix)]
    return max(prefixes, key=len) if prefixes else None


def _behaviour(path: str) -> tuple[str, float]:
    prefix = _prefix(path)
    if prefix is not None:
        return behaviours[prefix]
    return ("fail", 0.0) if path.startswith("/fail") else ("ok", 0.0)


async def deliver(request: web.Request) -> web.Response:
    global requests
    await request.read()
    requests += 1
    start = time.time()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    entry: list[object] = [
        request.path,
        request.headers.get("webhook-id"),
        start,
        None,
        None,
        peer[1] if peer else None,
    ]
    log.append(entry)
    mode, delay_s = _behaviour(request.path)
    try:
        if mode == "fail":
            status = 503
        elif mode == "flaky":
            ratio, rng = flaky[_prefix(request.path) or ""]
            status = 503 if rng.random() < ratio else 204
            if delay_s:
                await asyncio.sleep(delay_s)
            if status == 204:
                received.setdefault(f"{entry[1]} {request.path}", start)
        elif mode == "hang":
            # Cancelled when the client closes the connection (handler_cancellation below).
            await asyncio.sleep(min(delay_s or HANG_AT_MOST_S, HANG_AT_MOST_S))
            status = 503
        else:
            received.setdefault(f"{entry[1]} {request.path}", start)
            if delay_s:
                await asyncio.sleep(delay_s)
            status = 204
        entry[4] = status
        return web.Response(status=status)
    finally:
        entry[3] = time.time()


async def stats(request: web.Request) -> web.Response:
    if request.query.get("full") == "1":
        return web.json_response(
            {"count": len(received), "requests": requests, "received": received}
        )
    return web.json_response({"count": len(received), "requests": requests})


async def behave(request: web.Request) -> web.Response:
    body = await request.json()
    mode = str(body["mode"])
    if mode not in ("ok", "fail", "hang", "flaky"):
        raise web.HTTPBadRequest(text=f"unknown mode {mode!r}")
    prefix = str(body["prefix"])
    behaviours[prefix] = (mode, float(body.get("delay_s", 0.0)))
    if mode == "flaky":
        flaky[prefix] = (float(body["fail_ratio"]), random.Random(body.get("seed")))
    return web.json_response({"at": time.time()})


async def request_log(_request: web.Request) -> web.Response:
    return web.json_response(log)


async def reset(_request: web.Request) -> web.Response:
    global requests
    received.clear()
    behaviours.clear()
    flaky.clear()
    log.clear()
    requests = 0
    return web.Response(status=204)


def main() -> None:
    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_get("/log", request_log)
    app.router.add_post("/reset", reset)
    app.router.add_post("/behave", behave)
    app.router.add_post("/{tail:.*}", deliver)
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
        handler_cancellation=True,
    )


if __name__ == "__main__":
    main()

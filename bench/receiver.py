"""The benchmark's webhook receiver, run as its own process: counts deliveries and when they came.

``python -m bench.receiver PORT`` answers 204 on any path, except paths under ``/fail``,
which answer 503. ``GET /stats`` returns ``{"count", "requests", "received": {"<webhook-id>
<path>": t}}`` (``received`` with ``?full=1``), counting first receipts of 2xx answers only.

The lane scenarios (``bench.lanes``) also set how paths behave: ``POST /behave`` with
``{"prefix", "mode", "delay_s"}`` makes every path under ``prefix`` (the longest prefix set
wins) answer ``ok`` (204 after ``delay_s``), ``fail`` (503 at once) or ``hang`` (nothing until
the client gives up, or ``delay_s``); it answers ``{"at": t}``, the time the change took
effect. ``GET /log`` lists every request as ``[path, webhook-id, start, end, status]``
(``status`` is null for a request the client abandoned, ``end`` for one still open).
``POST /reset`` forgets receipts, behaviours and the log.
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web

HANG_AT_MOST_S = 600.0
"""A hanging request gives up by itself after this long, if its client never does."""

received: dict[str, float] = {}
requests = 0
behaviours: dict[str, tuple[str, float]] = {}
log: list[list[object]] = []


def _behaviour(path: str) -> tuple[str, float]:
    prefixes = [prefix for prefix in behaviours if path.startswith(prefix)]
    if prefixes:
        return behaviours[max(prefixes, key=len)]
    return ("fail", 0.0) if path.startswith("/fail") else ("ok", 0.0)


async def deliver(request: web.Request) -> web.Response:
    global requests
    await request.read()
    requests += 1
    start = time.time()
    entry: list[object] = [request.path, request.headers.get("webhook-id"), start, None, None]
    log.append(entry)
    mode, delay_s = _behaviour(request.path)
    try:
        if mode == "fail":
            status = 503
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
    if mode not in ("ok", "fail", "hang"):
        raise web.HTTPBadRequest(text=f"unknown mode {mode!r}")
    behaviours[str(body["prefix"])] = (mode, float(body.get("delay_s", 0.0)))
    return web.json_response({"at": time.time()})


async def request_log(_request: web.Request) -> web.Response:
    return web.json_response(log)


async def reset(_request: web.Request) -> web.Response:
    global requests
    received.clear()
    behaviours.clear()
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

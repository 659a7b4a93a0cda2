"""The benchmark's webhook receiver, run as its own process: counts deliveries and when they came.

``python -m bench.receiver PORT`` answers 200 on any path, except paths under ``/fail``,
which answer 503. ``GET /stats`` returns ``{"count", "received": {"<webhook-id> <path>": t}}``.
"""

from __future__ import annotations

import sys
import time

from aiohttp import web

received: dict[str, float] = {}
requests = 0


async def deliver(request: web.Request) -> web.Response:
    global requests
    await request.read()
    requests += 1
    if request.path.startswith("/fail"):
        return web.Response(status=503)
    received.setdefault(f"{request.headers.get('webhook-id')} {request.path}", time.time())
    return web.Response(status=204)


async def stats(request: web.Request) -> web.Response:
    if request.query.get("full") == "1":
        return web.json_response(
            {"count": len(received), "requests": requests, "received": received}
        )
    return web.json_response({"count": len(received), "requests": requests})


async def reset(_request: web.Request) -> web.Response:
    global requests
    received.clear()
    requests = 0
    return web.Response(status=204)


def main() -> None:
    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/{tail:.*}", deliver)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()

"""``/v1/openapi.json``: the OpenAPI 3.1 document of the whole API, without authentication."""

from __future__ import annotations

import functools
import json

from aiohttp import web

from hookline.api.openapi import openapi_document

routes = web.RouteTableDef()


@routes.get("/v1/openapi.json")
async def get_openapi(_request: web.Request) -> web.Response:
    return web.Response(body=_document_json(), content_type="application/json")


@functools.cache
def _document_json() -> bytes:
    # The document depends on no setting: built on first use, once per process.
    return json.dumps(openapi_document(), separators=(",", ":")).encode()

"""``/v1/apps``: the customer accounts that receive webhooks."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from activities.signing import generate_secret
from api.errors import ApiError
from api.keys import REGISTRY
from api.requests import parse_body, path_app
from api.schemas import AppCreate
from hookline.registry import App, UidTakenError

routes = web.RouteTableDef()


def app_json(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "uid": app.uid,
        "name": app.name,
        "created_at": app.created_at.isoformat(),
    }


@routes.post("/v1/apps")
async def create_app(request: web.Request) -> web.Response:
    body = await parse_body(request, AppCreate)
    try:
        app = await request.app[REGISTRY].create_app(body.name, body.uid, generate_secret())
    except UidTakenError:
        raise ApiError(409, "uid_taken", "another app already has this uid") from None
    return web.json_response(app_json(app), status=201)


@routes.get("/v1/apps/{app_id}")
async def get_app(request: web.Request) -> web.Response:
    return web.json_response(app_json(await path_app(request)))

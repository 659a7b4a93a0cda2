"""``/v1/apps``: the customer accounts that receive webhooks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from hookline.api.auth import require_admin
from hookline.api.errors import ApiError
from hookline.api.keys import REGISTRY
from hookline.api.requests import parse_body, path_app
from hookline.api.routes_endpoints import chosen_secret, secret_json
from hookline.api.schemas import AppCreate, SecretRotate
from hookline.contracts.signing import generate_secret
from hookline.storage.entities import App, UidTakenError

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
    require_admin(request)
    body = await parse_body(request, AppCreate)
    try:
        app = await request.app[REGISTRY].apps.create(body.name, body.uid, generate_secret())
    except UidTakenError:
        raise ApiError(409, "uid_taken", "another app already has this uid") from None
    return web.json_response(app_json(app), status=201)


@routes.get("/v1/apps/{app_id}")
async def get_app(request: web.Request) -> web.Response:
    return web.json_response(app_json(await path_app(request)))


@routes.get("/v1/apps/{app_id}/secret")
async def get_app_secret(request: web.Request) -> web.Response:
    app = await path_app(request)
    return web.json_response(secret_json(await request.app[REGISTRY].apps.secrets(app.id)))


@routes.post("/v1/apps/{app_id}/secret/rotate")
async def rotate_app_secret(request: web.Request) -> web.Response:
    app = await path_app(request)
    body = await parse_body(request, SecretRotate, empty_ok=True)
    new_secret = chosen_secret(body, "standard")
    registry = request.app[REGISTRY]
    await registry.apps.rotate_secret(app.id, new_secret, timedelta(seconds=body.grace_s))
    return web.json_response(secret_json(await registry.apps.secrets(app.id)))

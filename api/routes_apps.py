"""``/v1/apps``: the customer accounts that receive webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from hookline.api import response_models as out
from hookline.api.auth import require_admin
from hookline.api.errors import ApiError
from hookline.api.keys import REGISTRY
from hookline.api.requests import parse_body, path_app
from hookline.api.route_table import RouteTable
from hookline.api.routes_endpoints import chosen_secret
from hookline.api.schemas import AppCreate, SecretRotate
from hookline.contracts.signing import generate_secret
from hookline.storage.entities import UidTakenError

routes = RouteTable("apps")


@routes.route("POST", "/v1/apps", "Create an app", status=201, body=AppCreate, errors=(403, 409))
async def create_app(request: web.Request) -> out.App:
    require_admin(request)
    body = await parse_body(request, AppCreate)
    try:
        app = await request.app[REGISTRY].apps.create(body.name, body.uid, generate_secret())
    except UidTakenError:
        raise ApiError(409, "uid_taken", "another app already has this uid") from None
    return out.App.of(app)


@routes.route("GET", "/v1/apps/{app_id}", "Read an app")
async def get_app(request: web.Request) -> out.App:
    return out.App.of(await path_app(request))


@routes.route("GET", "/v1/apps/{app_id}/secret", "The app's own secret, which signs callbacks")
async def get_app_secret(request: web.Request) -> out.Secret:
    app = await path_app(request)
    return out.Secret.of(await request.app[REGISTRY].apps.secrets(app.id), datetime.now(UTC))


@routes.route(
    "POST",
    "/v1/apps/{app_id}/secret/rotate",
    "Rotate the app's secret",
    body=SecretRotate,
    body_required=False,
)
async def rotate_app_secret(request: web.Request) -> out.Secret:
    app = await path_app(request)
    body = await parse_body(request, SecretRotate, empty_ok=True)
    new_secret = chosen_secret(body, "standard")
    registry = request.app[REGISTRY]
    await registry.apps.rotate_secret(app.id, new_secret, timedelta(seconds=body.grace_s))
    return out.Secret.of(await registry.apps.secrets(app.id), datetime.now(UTC))

"""Reading what a request carries: its JSON body, and the app its path names."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from api.errors import not_found
from api.keys import REGISTRY
from hookline.registry import App

M = TypeVar("M", bound=BaseModel)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as ``model``.

    Raises:
        pydantic.ValidationError: malformed JSON, unknown fields, wrong types (422 upstream).
        web.HTTPRequestEntityTooLarge: the body is over ``max_request_bytes`` (413 upstream).
    """
    raw = await request.read()
    return model.model_validate_json(raw or b"null")


async def path_app(request: web.Request) -> App:
    """The app named by ``{app_id}`` in the path (its id or uid).

    Raises:
        ApiError: 404 if there is no such app.
    """
    app = await request.app[REGISTRY].get_app(request.match_info["app_id"])
    if app is None:
        raise not_found("app")
    return app

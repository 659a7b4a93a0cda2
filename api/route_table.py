"""The API's routes, each declared once: the handler aiohttp serves is also the OpenAPI
operation that documents it, its answer's schema the model the handler returns."""

from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel

JSON = "application/json"

Access = Literal["key", "public", "codec"]
"""``key``: a bearer key is required; ``public``: none (nor a rate limit, but on the codec's
preflight); ``codec``: a key only in production mode."""

Answer = BaseModel | web.StreamResponse | None
"""What a handler returns: a response model (sent as JSON with the operation's status), no
body (``None``), or a response it built itself (metrics, the document, the codec's CORS)."""

_ROUTE_PATTERN = re.compile(r"{(\w+):[^}]+}")
"""A path parameter with the pattern aiohttp routes on: the document shows its name only."""

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[Answer]])


@dataclass(frozen=True)
class Operation:
    """One route of the API, as the OpenAPI document describes it."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    status: int
    """The success status."""
    answer: type[BaseModel] | None
    """The success body's model: the handler's return type; ``None`` for no body (or one
    the document describes on its own, such as ``/metrics``' text)."""
    body: type[BaseModel] | None = None
    body_required: bool = True
    """``False`` where an empty body means every default."""
    parameters: tuple[dict[str, Any], ...] = ()
    errors: tuple[int, ...] = ()
    """Error statuses beyond those every operation of its kind can answer."""
    access: Access = "key"


class RouteTable:
    """One routes module's operations, and the aiohttp routes that serve them."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: list[Operation] = []
        self.routes: list[web.RouteDef] = []

    def route(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        status: int = 200,
        body: type[BaseModel] | None = None,
        body_required: bool = True,
        parameters: tuple[dict[str, Any], ...] = (),
        errors: tuple[int, ...] = (),
        access: Access = "key",
        tag: str | None = None,
        operation_id: str | None = None,
        answer: type[BaseModel] | None = None,
    ) -> Callable[[H], H]:
        """Serve and document the decorated handler at ``method path``.

        Args:
            method: The HTTP method.
            path: The path; a ``{name:regex}`` parameter routes on the regex, and the document
                shows it as ``{name}`` (what each parameter matches is its
                ``_PATH_PARAMETERS``).
            summary: The operation's one-line summary.
            status: The success status, sent with the returned model.
            body: The request body's model, if it takes one.
            body_required: ``False`` where an empty body means every default.
            parameters: Query and header parameters, as OpenAPI parameter objects.
            errors: Error statuses beyond those its kind of operation can answer.
            access: Whether it takes a key.
            tag: The document's group for it; default: the table's.
            operation_id: Default: the handler's name.
            answer: The success body's model where the handler returns a response of its own
                (default: the handler's return annotation, if a model).
        """

        def register(handler: H) -> H:
            self.operations.append(
                Operation(
                    method=method,
                    path=_ROUTE_PATTERN.sub(r"{\1}", path),
                    operation_id=operation_id or handler.__name__.lstrip("_"),
                    summary=summary,
                    tag=tag or self.tag,
                    status=status,
                    answer=answer or _answer_model(handler),
                    body=body,
                    body_required=body_required,
                    parameters=parameters,
                    errors=errors,
                    access=access,
                )
            )
            self.routes.append(web.route(method, path, _serving(handler, status)))
            return handler

        return register


def respond(
    answer: BaseModel, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """``answer`` as a JSON response (times in RFC 3339, UTC as ``Z``)."""
    return web.Response(
        body=answer.model_dump_json().encode(), status=status, content_type=JSON, headers=headers
    )


def _serving(
    handler: Callable[[web.Request], Awaitable[Answer]], status: int
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        answer = await handler(request)
        if answer is None:
            return web.Response(status=status)
        if isinstance(answer, web.StreamResponse):
            return answer
        return respond(answer, status)

    serve.__name__ = serve.__qualname__ = handler.__name__
    return serve


def _answer_model(handler: Callable[..., object]) -> type[BaseModel] | None:
    returned = typing.get_type_hints(handler).get("return")
    if isinstance(returned, type) and issubclass(returned, BaseModel):
        return returned
    return None

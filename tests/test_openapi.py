"""The OpenAPI document: valid OpenAPI 3.1, served without a key, naming every route of the
app, and describing what the API really answers in a normal flow and its errors."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import aiohttp
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import hookline.api
from hookline.api.app import API_ROUTES, create_app
from hookline.api.auth import PUBLIC_PATHS
from hookline.api.openapi import openapi_document
from hookline.config.settings import Settings
from tests.harness import Hookline, Receiver

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DOCUMENT_URI = "urn:hookline:openapi"


class DocumentedAnswers:
    """Holds real answers to the OpenAPI document: status documented for the operation,
    content type as documented, body valid against the documented schema."""

    def __init__(self, document: dict[str, Any]) -> None:
        # Without rfc3339-validator, jsonschema would pass any string as a date-time.
        assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers
        self.document = document
        self._registry = Registry().with_resource(
            DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.seen: set[tuple[str, str, int]] = set()

    def check(
        self, method: str, template: str, status: int, content_type: str, body: bytes
    ) -> None:
        operation = self.document["paths"][template][method.lower()]
        answer = operation["responses"].get(str(status))
        assert answer is not None, f"{method} {template} answered undocumented {status}"
        pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/{status}"
        if "$ref" in answer:
            pointer = answer["$ref"].removeprefix("#")
            answer = self.document["components"]["responses"][pointer.rsplit("/", 1)[1]]
        content = answer.get("content")
        if content is None:
            assert body == b"", f"{method} {template} {status}: documented without a body"
        else:
            assert content_type in content, (method, template, status, content_type)
            if content_type == "application/json":
                schema_pointer = f"{pointer}/content/{_escape(content_type)}/schema"
                validator = Draft202012Validator(
                    {"$ref": f"{DOCUMENT_URI}#{schema_pointer}"},
                    registry=self._registry,
                    format_checker=Draft202012Validator.FORMAT_CHECKER,
                )
                errors = [e.message for e in validator.iter_errors(json.loads(body))]
                assert not errors, (method, template, status, errors)
        self.seen.add((method, template, status))

    async def call(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        method: str,
        template: str,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        **path: str,
    ) -> tuple[int, Any]:
        """Call ``template`` with ``path`` filled in, check the answer, return status and JSON."""
        url = base_url + template.format(**{k: quote(v, safe="") for k, v in path.items()})
        request = http.request(method, url, json=json_body, headers=headers, params=params)
        async with request as resp:
            body = await resp.read()
            self.check(method, template, resp.status, resp.content_type, body)
            is_json = resp.content_type == "application/json"
            return resp.status, (json.loads(body) if body and is_json else None)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def test_every_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    routes = create_app(Settings(data_dir=tmp_path)).router.routes()  # nothing starts
    routed = {(r.method, r.resource.canonical) for r in routes if r.resource is not None}
    gets = {("HEAD", path) for method, path in routed if method == "GET"}
    # aiohttp answers HEAD for every GET; a HEAD of its own would need documenting.
    assert {route for route in routed if route[0] == "HEAD"} <= gets
    documented = {
        (method.upper(), path)
        for path, item in openapi_document(API_ROUTES)["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert routed - gets == documented


OPERATIONS = {
    ("POST", "/v1/apps/{app_id}/endpoints/{endpoint_id}/pause", "pause_endpoint", 200, "key"),
    ("POST", "/v1/apps/{app_id}/endpoints/{endpoint_id}/resume", "resume_endpoint", 200, "key"),
    ("GET", "/v1/apps/{app_id}/endpoints/{endpoint_id}/health", "get_endpoint_health", 200, "key"),
    ("DELETE", "/v1/apps/{app_id}/endpoints/{endpoint_id}", "delete_endpoint", 204, "key"),
    ("GET", "/healthz", "healthz", 200, "public"),
    ("GET", "/metrics", "metrics", 200, "public"),
    ("GET", "/readyz", "readyz", 200, "public"),
    ("GET", "/v1/apps/{app_id}", "get_app", 200, "key"),
    ("GET", "/v1/apps/{app_id}/deliveries", "list_deliveries", 200, "key"),
    ("GET", "/v1/apps/{app_id}/deliveries/{delivery_id}", "get_delivery", 200, "key"),
    ("GET", "/v1/apps/{app_id}/deliveries/{delivery_id}/attempts", "list_attempts", 200, "key"),
    ("GET", "/v1/apps/{app_id}/endpoints", "list_endpoints", 200, "key"),
    ("GET", "/v1/apps/{app_id}/endpoints/{endpoint_id}", "get_endpoint", 200, "key"),
    ("GET", "/v1/apps/{app_id}/endpoints/{endpoint_id}/secret", "get_endpoint_secret", 200, "key"),
    ("GET", "/v1/apps/{app_id}/events", "list_events", 200, "key"),
    ("GET", "/v1/apps/{app_id}/events/{event_id}", "get_event", 200, "key"),
    ("GET", "/v1/apps/{app_id}/recoveries/{recovery_id}", "get_recovery", 200, "key"),
    ("GET", "/v1/apps/{app_id}/secret", "get_app_secret", 200, "key"),
    ("GET", "/v1/openapi.json", "openapi", 200, "public"),
    ("OPTIONS", "/codec/{action}", "codec_preflight", 204, "public"),
    ("PATCH", "/v1/apps/{app_id}/endpoints/{endpoint_id}", "update_endpoint", 200, "key"),
    ("POST", "/codec/{action}", "codec_transcode", 200, "codec"),
    ("POST", "/v1/apps", "create_app", 201, "key"),
    ("POST", "/v1/apps/{app_id}/deliveries/{delivery_id}/retry", "retry_delivery", 202, "key"),
    ("POST", "/v1/apps/{app_id}/endpoints", "create_endpoint", 201, "key"),
    ("POST", "/v1/apps/{app_id}/endpoints/{endpoint_id}/recover", "recover", 202, "key"),
    (
        "POST",
        "/v1/apps/{app_id}/endpoints/{endpoint_id}/secret/rotate",
        "rotate_endpoint_secret",
        200,
        "key",
    ),
    ("POST", "/v1/apps/{app_id}/endpoints/{endpoint_id}/test", "send_test", 202, "key"),
    ("POST", "/v1/apps/{app_id}/events", "create_event", 202, "key"),
    ("POST", "/v1/apps/{app_id}/recoveries/{recovery_id}/cancel", "cancel_recovery", 202, "key"),
    ("POST", "/v1/apps/{app_id}/secret/rotate", "rotate_app_secret", 200, "key"),
}
"""What clients generated from the document, and their keys, depend on: method, path,
operationId, success status and access. A change here breaks them: make it on purpose."""


def test_operations_stay_as_clients_know_them() -> None:
    operations = {
        (op.method, op.path, op.operation_id, op.status, op.access)
        for table in API_ROUTES
        for op in table.operations
    }
    assert operations == OPERATIONS


def test_the_routes_documented_public_are_the_ones_served_without_a_key() -> None:
    public = {op.path for table in API_ROUTES for op in table.operations if op.access == "public"}
    # The codec's preflight is public through the codec's own rule (CORS), not PUBLIC_PATHS.
    assert public - {"/codec/{action}"} == PUBLIC_PATHS


def test_every_error_code_of_the_api_is_documented_under_its_status() -> None:
    document = openapi_document(API_ROUTES)
    documented = {
        (int(status), code)
        for item in document["paths"].values()
        for operation in item.values()
        for status, answer in operation["responses"].items()
        if "$ref" in answer
        for code in _error_codes(document, answer["$ref"])
    }
    raised = set()
    for module in Path(hookline.api.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("ApiError", "error_body")
                and all(isinstance(arg, ast.Constant) for arg in node.args[:2])
            ):
                first, second = cast(list[ast.Constant], node.args[:2])
                raised.add((first.value, second.value))
    raised.discard((500, "internal_error"))  # never meant to happen: the fuzz test says so
    assert raised <= documented, raised - documented


def _error_codes(document: dict[str, Any], ref: str) -> list[str]:
    response = document["components"]["responses"][ref.rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]["allOf"][1]
    return cast(list[str], schema["properties"]["error"]["properties"]["code"]["enum"])


async def test_document_is_valid_openapi_3_1_and_needs_no_key(hookline: Hookline) -> None:
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(hookline.api_url + "/v1/openapi.json") as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "application/json"
        document = await resp.json()
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document == json.loads(json.dumps(openapi_document(API_ROUTES)))


async def test_a_normal_flow_answers_as_documented(hookline: Hookline, receiver: Receiver) -> None:
    answers = DocumentedAnswers(openapi_document(API_ROUTES))
    base = hookline.api_url

    async def call(method: str, template: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await answers.call(hookline.http, base, method, template, body, **kw)

    async def status(method: str, template: str, body: Any = None, **kw: Any) -> int:
        return (await call(method, template, body, **kw))[0]

    async with aiohttp.ClientSession() as anonymous:
        for template in ("/healthz", "/readyz", "/metrics", "/v1/openapi.json"):
            assert (await answers.call(anonymous, base, "GET", template))[0] == 200
        unauthorized = await answers.call(anonymous, base, "GET", "/v1/apps/{app_id}", app_id="x")
        assert unauthorized[0] == 401
        preflight = await answers.call(
            anonymous, base, "OPTIONS", "/codec/{action}", action="decode"
        )
        assert preflight[0] == 204
    assert await status("POST", "/codec/{action}", {"payloads": []}, action="encode") == 404

    code, app = await call("POST", "/v1/apps", {"name": "Acme", "uid": "acme"})
    assert code == 201
    assert await status("POST", "/v1/apps", {"name": "Again", "uid": "acme"}) == 409
    assert await status("POST", "/v1/apps", {"name": ""}) == 422
    assert await status("GET", "/v1/apps/{app_id}", app_id="acme") == 200
    assert await status("GET", "/v1/apps/{app_id}", app_id="nope") == 404
    assert await status("GET", "/v1/apps/{app_id}/secret", app_id="acme") == 200
    assert await status("POST", "/v1/apps/{app_id}/secret/rotate", {}, app_id="acme") == 200

    ids = {"app_id": app["id"]}
    endpoints = "/v1/apps/{app_id}/endpoints"
    new_endpoint = {"url": receiver.url, "event_types": ["batch.*"], "retry": {"window_s": 60}}
    code, endpoint = await call("POST", endpoints, new_endpoint, **ids)
    assert code == 201
    assert await status("POST", endpoints, {"url": "ftp://example.com"}, **ids) == 422
    assert await status("GET", endpoints, **ids) == 200
    ids["endpoint_id"] = endpoint["id"]
    one = endpoints + "/{endpoint_id}"
    assert await status("GET", one, **ids) == 200
    assert await status("PATCH", one, {"description": "batches"}, **ids) == 200
    assert await status("GET", one + "/secret", **ids) == 200
    assert await status("POST", one + "/secret/rotate", None, **ids) == 200

    events = "/v1/apps/{app_id}/events"
    event = {"type": "batch.completed", "payload": {"rows": 1}}
    key = {"Idempotency-Key": "batch-1"}
    code, sent = await call("POST", events, event, headers=key, **ids)
    assert code == 202
    code, again = await call("POST", events, event, headers=key, **ids)
    assert (code, again["duplicate"]) == (202, True)
    too_big = {"type": "batch.big", "payload": "x" * hookline.settings.max_payload_bytes}
    assert await status("POST", events, too_big, **ids) == 413
    assert await status("GET", events + "/{event_id}", event_id="batch-1", **ids) == 200
    assert await status("GET", events, **ids) == 200
    assert await status("GET", events, params={"since": "yesterday"}, **ids) == 422

    deliveries = "/v1/apps/{app_id}/deliveries"
    ids["delivery_id"] = sent["deliveries"][0]["id"]
    await hookline.wait_status(app["id"], ids["delivery_id"], "succeeded")
    assert await status("GET", deliveries + "/{delivery_id}", **ids) == 200
    assert await status("GET", deliveries + "/{delivery_id}/attempts", **ids) == 200
    assert await status("POST", deliveries + "/{delivery_id}/retry", **ids) == 409
    assert await status("GET", deliveries, **ids) == 200
    assert await status("POST", one + "/test", {"payload": {"hi": 1}}, **ids) == 202

    code, recovery = await call("POST", one + "/recover", {"since": "2020-01-01T00:00:00Z"}, **ids)
    assert code == 202
    ids["recovery_id"] = recovery["id"]
    recoveries = "/v1/apps/{app_id}/recoveries/{recovery_id}"
    assert await status("GET", recoveries, **ids) == 200
    assert await status("POST", recoveries + "/cancel", **ids) in (202, 409)

    code, paused = await call("POST", one + "/pause", **ids)
    assert (code, paused["paused"]) == (200, True)
    code, health = await call("GET", one + "/health", **ids)
    assert (code, health["state"]) == (200, "paused")
    assert await status("POST", one + "/resume", **ids) == 200

    assert await status("PATCH", one, {"disabled": True}, **ids) == 200
    assert await status("POST", one + "/test", None, **ids) == 409
    assert await status("DELETE", one, **ids) == 204
    assert await status("GET", one, **ids) == 404
    assert {(method, path) for method, path, _ in answers.seen} == {
        (method.upper(), path)
        for path, item in answers.document["paths"].items()
        for method in item
    }

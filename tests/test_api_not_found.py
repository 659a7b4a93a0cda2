"""Unknown apps, endpoints, deliveries and routes: 404, 405 and 409 with the error shape."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_calls import app_with_endpoint, assert_error, expect, send
from tests.harness import Hookline, Receiver

pytestmark = pytest.mark.shared_stack
"""These tests only check what the API answers: they share one running Hookline."""


# Unknown resources


async def test_unknown_app_is_404(hookline: Hookline) -> None:
    for app_id in ("app_doesnotexist", "no-such-uid"):
        base = f"/v1/apps/{app_id}"
        cases: list[tuple[str, str, Any]] = [
            ("GET", base, None),
            ("GET", f"{base}/endpoints", None),
            ("POST", f"{base}/endpoints", {"url": "https://e.com/"}),
            ("GET", f"{base}/endpoints/ep_x", None),
            ("PATCH", f"{base}/endpoints/ep_x", {"description": "x"}),
            ("DELETE", f"{base}/endpoints/ep_x", None),
            ("POST", f"{base}/events", {"type": "a.b", "payload": {}}),
            ("GET", f"{base}/deliveries", None),
            ("GET", f"{base}/deliveries/dlv_x", None),
            ("POST", f"{base}/deliveries/dlv_x/retry", None),
        ]
        for method, path, body in cases:
            message = await expect(hookline, method, path, 404, "not_found", json_body=body)
            assert message == "app not found", (method, path, message)


async def test_unknown_endpoint_is_404(hookline: Hookline) -> None:
    app_id, endpoint_id = await app_with_endpoint(hookline)
    other_app = await hookline.create_app("Other")
    for path in (
        f"/v1/apps/{app_id}/endpoints/ep_doesnotexist",
        # An endpoint exists only under its own app.
        f"/v1/apps/{other_app}/endpoints/{endpoint_id}",
    ):
        for method, body in (("GET", None), ("PATCH", {"description": "x"}), ("DELETE", None)):
            message = await expect(hookline, method, path, 404, "not_found", json_body=body)
            assert message == "endpoint not found"
    endpoint = await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints/{endpoint_id}")
    assert endpoint["description"] == ""


async def test_unknown_delivery_is_404(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    other_app = await hookline.create_app("Other")
    event = await hookline.send_event(app_id, "a.b", {})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")

    for path in (
        f"/v1/apps/{app_id}/deliveries/dlv_doesnotexist",
        f"/v1/apps/{other_app}/deliveries/{delivery_id}",
    ):
        message = await expect(hookline, "GET", path, 404, "not_found")
        assert message == "delivery not found"
        message = await expect(hookline, "POST", f"{path}/retry", 404, "not_found")
        assert message == "delivery not found"


async def test_retrying_a_succeeded_delivery_is_409(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    event = await hookline.send_event(app_id, "a.b", {})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")

    await expect(
        hookline,
        "POST",
        f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry",
        409,
        "already_succeeded",
    )
    assert len(receiver.requests) == 1


# Routing


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/apps"),
        ("PUT", "/v1/apps"),
        ("DELETE", "/v1/apps/app_x"),
        ("PUT", "/v1/apps/app_x/endpoints/ep_x"),
        ("DELETE", "/v1/apps/app_x/events"),
        ("GET", "/v1/apps/app_x/deliveries/dlv_x/retry"),
        ("POST", "/healthz"),
    ],
)
async def test_method_not_allowed_is_405(hookline: Hookline, method: str, path: str) -> None:
    await expect(hookline, method, path, 405, "method_not_allowed")


async def test_method_not_allowed_lists_allowed_methods(hookline: Hookline) -> None:
    reply = await send(hookline, "DELETE", "/v1/apps/app_x")
    assert_error(reply, 405, "method_not_allowed")
    assert "GET" in reply.headers.get("Allow", ""), reply.headers


@pytest.mark.parametrize(
    "path", ["/nope", "/v1", "/v1/apps/app_x/unknown", "/v1/apps/app_x/endpoints/ep_x/more", "/"]
)
async def test_unknown_path_is_404(hookline: Hookline, path: str) -> None:
    await expect(hookline, "GET", path, 404, "not_found")
    await expect(hookline, "POST", path, 404, "not_found", json_body={})

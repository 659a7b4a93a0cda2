"""The endpoint lifecycle through the API, end to end: create, read, list, patch, delete."""

from __future__ import annotations

import base64
import json

from tests.api_calls import GOOD_SECRET, app_with_endpoint, assert_error, expect, send
from tests.harness import Hookline

# The endpoint lifecycle, end to end


async def test_endpoint_crud(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    base = f"/v1/apps/{app_id}/endpoints"

    created = await hookline.create_endpoint(
        app_id,
        "https://example.com/hook",
        event_types=["job.failed", "batch.*", "job.failed"],
        description="ops",
        headers={"X-Customer": "acme"},
        retry={"initial_interval_s": 1, "max_interval_s": 1},
        timeout_s=10,
    )
    generated = await hookline.create_endpoint(app_id, "https://example.com/other")
    given = await hookline.create_endpoint(app_id, "https://example.com/given", secret=GOOD_SECRET)

    assert created["id"].startswith("ep_") and created["app_id"] == app_id
    assert created["url"] == "https://example.com/hook"
    assert created["event_types"] == ["batch.*", "job.failed"]
    assert created["description"] == "ops"
    assert created["headers"] == {"X-Customer": "********"}  # values are never read back
    assert created["retry"] == {"initial_interval_s": 1, "max_interval_s": 1}
    assert created["timeout_s"] == 10
    for endpoint in (created, generated):
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert created["secret"] != generated["secret"]
    assert given["secret"] == GOOD_SECRET
    fetched = await hookline.ok("GET", f"{base}/{given['id']}")
    assert "secret" not in fetched  # revealed only by the /secret endpoint
    assert (await hookline.ok("GET", f"{base}/{given['id']}/secret"))["secret"] == GOOD_SECRET

    fetched = await hookline.ok("GET", f"{base}/{created['id']}")
    assert fetched == {k: v for k, v in created.items() if k != "secret"}

    listed = (await hookline.ok("GET", base))["data"]
    assert [e["id"] for e in listed] == [created["id"], generated["id"], given["id"]]
    for item in listed:
        assert "secret" not in item
    listed_text = json.dumps(listed)
    for endpoint in (created, generated, given):
        assert endpoint["secret"] not in listed_text
    assert {k: v for k, v in created.items() if k != "secret"} == listed[0]

    patched = await hookline.ok(
        "PATCH",
        f"{base}/{created['id']}",
        {"event_types": None, "headers": {"X-Other": "2"}, "description": None},
    )
    assert patched["event_types"] is None
    assert patched["headers"] == {"X-Other": "********"}
    assert patched["description"] == ""
    assert patched["url"] == created["url"] and "secret" not in patched
    revealed = await hookline.ok("GET", f"{base}/{created['id']}/secret")
    assert revealed["secret"] == created["secret"]
    assert patched["retry"] == created["retry"] and patched["timeout_s"] == 10
    assert patched["created_at"] == created["created_at"]
    assert patched["updated_at"] >= created["updated_at"]

    cleared = await hookline.ok(
        "PATCH", f"{base}/{created['id']}", {"headers": None, "retry": None, "timeout_s": None}
    )
    assert cleared["headers"] == {} and cleared["retry"] is None and cleared["timeout_s"] is None
    assert cleared["event_types"] is None
    unchanged = await hookline.ok("PATCH", f"{base}/{created['id']}", {})
    assert unchanged["headers"] == {} and unchanged["url"] == created["url"]

    status, body = await hookline.call("DELETE", f"{base}/{created['id']}")
    assert (status, body) == (204, None)
    for method in ("GET", "DELETE"):
        await expect(hookline, method, f"{base}/{created['id']}", 404, "not_found")
    await expect(
        hookline,
        "PATCH",
        f"{base}/{created['id']}",
        404,
        "not_found",
        json_body={"description": "x"},
    )
    assert [e["id"] for e in (await hookline.ok("GET", base))["data"]] == [
        generated["id"],
        given["id"],
    ]


async def test_review_edge_cases_are_clean_4xx(hookline: Hookline) -> None:
    app_id, _ = await app_with_endpoint(hookline)
    for path in ("/v1/apps/a%00b", f"/v1/apps/{app_id}/events/a%00b"):
        assert_error(await send(hookline, "GET", path), 404, "not_found")
    reply = await send(hookline, "POST", "/v1/apps", json_body={"name": "a\u0000b"})
    assert_error(reply, 422, "validation_error")
    reply = await send(
        hookline,
        "GET",
        "/v1/apps",
        headers={
            "Authorization": "Bearer \udcff\udcfe".encode("utf-8", "surrogateescape").decode(
                "latin-1"
            )
        },
    )
    assert_error(reply, 401, "unauthorized")
    reply = await send(
        hookline, "GET", f"/v1/apps/{app_id}/events?since=0001-01-01T00:00:00%2B01:00"
    )
    assert_error(reply, 422, "validation_error")
    events_page = await hookline.ok("GET", f"/v1/apps/{app_id}/events?limit=1")
    for n in range(2):
        await hookline.send_event(app_id, "x.y", {"n": n})
    events_page = await hookline.ok("GET", f"/v1/apps/{app_id}/events?limit=1")
    assert events_page["next_cursor"]
    reply = await send(
        hookline, "GET", f"/v1/apps/{app_id}/deliveries?cursor={events_page['next_cursor']}"
    )
    assert_error(reply, 422, "validation_error")

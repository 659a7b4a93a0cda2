"""Endpoints' custom headers: refused when unsendable, sealed at rest, never read back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select

from hookline.config.settings import Settings
from hookline.contracts.signing import generate_secret
from hookline.storage import tables as t
from hookline.storage.engine import create_engine
from hookline.storage.registry import Registry, opened_registry
from hookline.storage.schema import alembic_config
from hookline.storage.secret_box import PREFIX, SecretBox, generate_key
from tests.harness import Hookline, Receiver

CREDENTIAL = "Bearer receiver-credential-7731"
MASK = "********"

# The probes of the security review: each was accepted with 201 and then failed every attempt.
BAD_HEADERS = [
    {"X-Trailing\n": "1"},
    {"Host\n": "example.com"},
    {"X-Vertical-Tab": "a\x0bb"},
    {"X-Form-Feed": "a\x0cb"},
    {"X-Delete": "a\x7fb"},
    {"X-Tab": "a\tb"},
    {"X-Escape": "\x1b[31m"},
    {"X-Bell": "\x07"},
    {"X-Carriage": "a\rb"},
]


async def _refused(hookline: Hookline, method: str, path: str, body: dict[str, Any]) -> None:
    status, answer = await hookline.call(method, path, body)
    assert status == 422, (body, status, answer)
    assert answer["error"]["code"] == "validation_error", answer


@pytest.mark.parametrize("headers", BAD_HEADERS, ids=repr)
async def test_control_characters_in_headers_are_refused(
    hookline: Hookline, receiver: Receiver, headers: dict[str, str]
) -> None:
    app_id = await hookline.create_app()
    endpoints = f"/v1/apps/{app_id}/endpoints"
    await _refused(hookline, "POST", endpoints, {"url": receiver.url, "headers": headers})
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    await _refused(hookline, "PATCH", f"{endpoints}/{endpoint['id']}", {"headers": headers})


@pytest.mark.parametrize("name", ["x-sig\n", "x-sig\r", "x sig", "x-sig\x7f", ""], ids=repr)
async def test_unusable_signature_header_names_are_refused(
    hookline: Hookline, receiver: Receiver, name: str
) -> None:
    app_id = await hookline.create_app()
    body = {"url": receiver.url, "signature_scheme": "hmac-hex", "signature_header": name}
    await _refused(hookline, "POST", f"/v1/apps/{app_id}/endpoints", body)


@pytest.mark.parametrize("secret", ["a" * 16 + "\n", "a" * 16 + "\x7f", "\n" + "a" * 16])
async def test_secrets_with_control_characters_are_refused(
    hookline: Hookline, receiver: Receiver, secret: str
) -> None:
    app_id = await hookline.create_app()
    body = {"url": receiver.url, "signature_scheme": "hmac-hex", "secret": secret}
    await _refused(hookline, "POST", f"/v1/apps/{app_id}/endpoints", body)


@pytest.mark.parametrize(
    ("field", "value"),
    [("type", "batch.completed\n"), ("id", "evt_1\n")],
)
async def test_event_fields_with_a_trailing_newline_are_refused(
    hookline: Hookline, field: str, value: str
) -> None:
    app_id = await hookline.create_app()
    body = {"type": "batch.completed", "payload": {}, field: value}
    await _refused(hookline, "POST", f"/v1/apps/{app_id}/events", body)


async def test_a_uid_with_a_trailing_newline_is_refused(hookline: Hookline) -> None:
    await _refused(hookline, "POST", "/v1/apps", {"name": "Acme", "uid": "acme\n"})


async def test_a_stored_header_that_cannot_be_sent_fails_the_delivery_at_once(
    hookline: Hookline, settings: Settings, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    # A row saved before the API refused such values (written straight to the registry).
    async with opened_registry(settings) as registry:
        await registry.endpoints.update(app_id, endpoint["id"], headers={"X-Old": "a\x0bb"})

    event = await hookline.send_event(app_id, "batch.completed", {})
    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    assert view["attempts"] == 1  # not retried for the whole window
    assert view["last_attempt"]["error"].startswith("request cannot be built: header 'X-Old'")
    assert receiver.requests == []


async def _stored_headers(settings: Settings, endpoint_id: str) -> dict[str, str]:
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as conn:
            query = select(t.endpoints.c.headers).where(t.endpoints.c.id == endpoint_id)
            return dict((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def test_header_values_are_sealed_at_rest_and_never_read_back(
    hookline: Hookline, settings: Settings, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    created = await hookline.create_endpoint(
        app_id, receiver.url, headers={"Authorization": CREDENTIAL, "X-Tenant": "acme"}
    )
    path = f"/v1/apps/{app_id}/endpoints/{created['id']}"

    stored = await _stored_headers(settings, created["id"])
    assert set(stored) == {"Authorization", "X-Tenant"}
    assert all(value.startswith(PREFIX) for value in stored.values())
    assert "receiver-credential" not in repr(stored)

    # No read shows a value: not the create answer, one endpoint, the list, nor a PATCH.
    listed = (await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints"))["data"]
    patched = await hookline.ok("PATCH", path, {"description": "billing"})
    for view in (created, await hookline.ok("GET", path), listed[0], patched):
        assert view["headers"] == {"Authorization": MASK, "X-Tenant": MASK}

    # The receiver gets the real values.
    event = await hookline.send_event(app_id, "batch.completed", {})
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    assert receiver.requests[0].headers["Authorization"] == CREDENTIAL
    assert receiver.requests[0].headers["X-Tenant"] == "acme"


async def test_a_read_endpoints_headers_can_be_sent_back_unchanged(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    created = await hookline.create_endpoint(
        app_id, receiver.url, headers={"Authorization": CREDENTIAL}
    )
    path = f"/v1/apps/{app_id}/endpoints/{created['id']}"
    read = await hookline.ok("GET", path)

    # The masked value keeps the stored one; a header added beside it is stored as sent.
    headers = {**read["headers"], "X-Added": "2"}
    patched = await hookline.ok("PATCH", path, {"headers": headers})
    assert patched["headers"] == {"Authorization": MASK, "X-Added": MASK}
    event = await hookline.send_event(app_id, "batch.completed", {})
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    assert receiver.requests[0].headers["Authorization"] == CREDENTIAL
    assert receiver.requests[0].headers["X-Added"] == "2"

    # The mask of a header the endpoint does not have stands for nothing.
    status, body = await hookline.call("PATCH", path, {"headers": {"X-Unknown": MASK}})
    assert status == 422 and "X-Unknown" in body["error"]["message"], body


async def test_changing_the_urls_origin_needs_the_header_values_again(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    created = await hookline.create_endpoint(
        app_id, receiver.url, headers={"Authorization": CREDENTIAL}
    )
    path = f"/v1/apps/{app_id}/endpoints/{created['id']}"
    elsewhere = receiver.url.replace("127.0.0.1", "localhost")  # another host, same server

    # Stored values never follow the URL to another origin: not silently, not through a mask.
    for patch in ({"url": elsewhere}, {"url": elsewhere, "headers": created["headers"]}):
        status, body = await hookline.call("PATCH", path, patch)
        assert status == 422, (patch, body)
        assert body["error"]["code"] == "validation_error"
        assert "origin" in body["error"]["message"] and "headers" in body["error"]["message"]
    assert (await hookline.ok("GET", path))["url"] == receiver.url

    # A new path on the same origin keeps them.
    same_origin = receiver.url_for("/moved")
    moved = await hookline.ok("PATCH", path, {"url": same_origin})
    assert moved["url"] == same_origin and moved["headers"] == {"Authorization": MASK}
    event = await hookline.send_event(app_id, "batch.completed", {})
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    assert receiver.requests[-1].path == "/moved"
    assert receiver.requests[-1].headers["Authorization"] == CREDENTIAL

    # With the values sent again (or none), the origin may change.
    changed = await hookline.ok(
        "PATCH", path, {"url": elsewhere, "headers": {"Authorization": "Bearer for-localhost"}}
    )
    assert changed["url"] == elsewhere and changed["headers"] == {"Authorization": MASK}
    event = await hookline.send_event(app_id, "batch.completed", {})
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    assert receiver.requests[-1].headers["Authorization"] == "Bearer for-localhost"
    back = await hookline.ok("PATCH", path, {"url": receiver.url, "headers": {}})
    assert back["headers"] == {}
    # An endpoint without custom headers has nothing to carry over: no need to send any.
    assert (await hookline.ok("PATCH", path, {"url": elsewhere}))["url"] == elsewhere


async def test_headers_an_older_version_stored_in_clear_are_sealed_by_the_migration(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    box = SecretBox([generate_key()])
    clear = {
        "Authorization": CREDENTIAL,
        "X-Looks-Sealed": "enc:v1:nokey:AAAA",  # clear text that only looks sealed
        "X-Prefix-Only": PREFIX,
        "X-Empty": "",
    }
    try:
        async with engine.begin() as conn:  # the schema of the previous release
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0002"))
        older = Registry(engine, box)  # writing as the previous release did: in clear
        app = await older.apps.create("Acme", None, generate_secret())
        endpoint_id = "ep_older"
        now = datetime.now(UTC)
        async with engine.begin() as conn:  # only the columns that release had
            await conn.execute(
                t.endpoints.insert().values(
                    id=endpoint_id,
                    app_id=app.id,
                    url="https://example.com/",
                    description="",
                    secret=box.seal(generate_secret()),
                    signature_scheme="standard",
                    headers=clear,
                    disabled=False,
                    created_at=now,
                    updated_at=now,
                )
            )

        upgraded = Registry(engine, box)
        await upgraded.create_schema()  # starts: the one bad-looking value stops nothing

        async with engine.connect() as conn:
            query = select(t.endpoints.c.headers).where(t.endpoints.c.id == endpoint_id)
            stored = (await conn.execute(query)).scalar_one()
        assert set(stored) == set(clear)
        assert all(box.open(value) != value for value in stored.values()), stored
        assert "receiver-credential" not in repr(stored) and "nokey" not in repr(stored)
        opened = await upgraded.endpoints.get(endpoint_id)
        assert opened is not None and opened.headers == clear
    finally:
        await engine.dispose()

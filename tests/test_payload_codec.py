"""Payload encryption: Temporal holds no event body or URL in clear; the UI's codec decodes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.storage.registry import opened_registry
from hookline.storage.secret_box import generate_key
from hookline.temporal.client import connect_temporal
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver

KEY = generate_key()
BODY_MARK = "very-private-payload-4242"


@pytest.fixture
async def encrypting(settings: Settings) -> AsyncIterator[Hookline]:
    sealed = settings.model_copy(update={"payload_keys": [KEY]})
    client = await connect_temporal(sealed)
    async with Hookline.running(sealed, client, API_KEY) as hookline:
        yield hookline


async def test_history_holds_no_body_or_url_in_clear(
    encrypting: Hookline, receiver: Receiver, temporal_client: Client
) -> None:
    app_id = await encrypting.create_app()
    url = receiver.url_for("/private-path")
    await encrypting.create_endpoint(app_id, url)
    event = await encrypting.send_event(app_id, "batch.completed", {"note": BODY_MARK})
    view = await encrypting.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    assert view["url"] == url  # the API, with the key, reads the memo as before
    assert BODY_MARK.encode() in receiver.requests[0].body
    # A client without the key (an operator's, or Temporal's own database) sees only ciphertext.
    history = await temporal_client.get_workflow_handle(view["workflow_id"]).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert BODY_MARK.encode() not in raw and b"private-path" not in raw
    assert b"binary/encrypted" in raw


async def test_codec_endpoint_decodes_for_the_ui(
    encrypting: Hookline, receiver: Receiver, temporal_client: Client
) -> None:
    app_id = await encrypting.create_app()
    await encrypting.create_endpoint(app_id, receiver.url)
    event = await encrypting.send_event(app_id, "batch.completed", {"note": BODY_MARK})
    view = await encrypting.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")
    history = await temporal_client.get_workflow_handle(view["workflow_id"]).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    request = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in started.metadata.items()},
                "data": base64.b64encode(started.data).decode(),
            }
        ]
    }
    origin = {"origin": "http://localhost:8233"}

    async with aiohttp.ClientSession() as http:  # no API key: development mode, the local UI
        async with http.options(
            encrypting.api_url + "/codec/decode",
            headers={**origin, "access-control-request-method": "POST"},
        ) as preflight:
            assert preflight.status == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
            assert "x-namespace" in preflight.headers["Access-Control-Allow-Headers"]
        async with http.post(
            encrypting.api_url + "/codec/decode",
            json=request,
            headers={**origin, "x-namespace": "default"},
        ) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
            decoded = (await response.json())["payloads"][0]
    assert BODY_MARK in base64.b64decode(decoded["data"]).decode()


async def test_codec_is_off_without_keys(hookline: Hookline) -> None:
    status, body = await hookline.call("POST", "/codec/decode", {"payloads": []})
    assert status == 404 and "HOOKLINE_PAYLOAD_KEYS" in body["error"]["message"]


ADMIN_KEY = "admin-key-" + "0123456789abcdef" * 2  # production wants 32 characters or more
PLAIN = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}}]}


@pytest.fixture
async def production_codec(settings: Settings) -> AsyncIterator[Hookline]:
    production = settings.model_copy(
        update={
            "mode": "production",
            "secrets_keys": [generate_key()],
            "api_keys": [ADMIN_KEY],
            "payload_keys": [KEY],
        }
    )
    client = await connect_temporal(production)
    async with Hookline.running(production, client, ADMIN_KEY) as hookline:
        yield hookline


async def test_codec_is_for_admin_keys_only_in_production(production_codec: Hookline) -> None:
    app_id = await production_codec.create_app()
    async with opened_registry(production_codec.settings) as registry:
        _, scoped = await registry.keys.create("ci", app_id)
        _, admin = await registry.keys.create("ops", None)

    async def transcode(action: str, key: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.post(f"{production_codec.api_url}/codec/{action}", json=PLAIN) as response,
        ):
            return response.status, await response.json()

    for action in ("decode", "encode"):
        status, body = await transcode(action, scoped)
        assert status == 403 and body["error"]["code"] == "forbidden", (action, body)
        assert (await transcode(action, None))[0] == 401
        for key in (admin, ADMIN_KEY):  # a registry admin key, and a configured one
            status, body = await transcode(action, key)
            assert status == 200 and len(body["payloads"]) == 1, (action, body)
        async with (
            aiohttp.ClientSession() as http,
            http.options(
                f"{production_codec.api_url}/codec/{action}",
                headers={"access-control-request-method": "POST"},
            ) as preflight,
        ):
            assert preflight.status == 204  # a browser's preflight carries no key

"""SSRF protection: internal destinations refused when saved and at every attempt.

No test here makes a connection anywhere but 127.0.0.1: refused addresses are refused before
any connection, and the attempt-time test uses a loopback name, so even a broken guard would
only reach this machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from hookline.destination_policy import DestinationPolicy
from hookline.secret_box import generate_key
from hookline.settings import Settings
from hookline.worker import running_worker
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver

REFUSED_EVERYWHERE = [
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "fd00::1",
    "fe80::1",
    "::ffff:10.0.0.1",
    "fd00:ec2::254",
]


@pytest.mark.parametrize("address", REFUSED_EVERYWHERE)
def test_policy_refuses_internal_addresses_in_both_modes(address: str) -> None:
    for mode in ("development", "production"):
        assert DestinationPolicy(mode, []).refusal(address), (mode, address)  # type: ignore[arg-type]


def test_policy_allows_public_loopback_in_development_and_the_allowlist() -> None:
    development = DestinationPolicy("development", [])
    production = DestinationPolicy("production", [])
    for public in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert development.refusal(public) is None and production.refusal(public) is None
    for loopback in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert development.refusal(loopback) is None
        assert production.refusal(loopback) == "a loopback address"
    allowing = DestinationPolicy("production", ["10.20.0.0/16", "127.0.0.0/8"])
    assert allowing.refusal("10.20.3.4") is None and allowing.refusal("127.0.0.1") is None
    assert allowing.refusal("10.21.0.1")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fd00::1]:8080/hook",
    ],
)
async def test_internal_destinations_are_refused_when_saved(hookline: Hookline, url: str) -> None:
    app_id = await hookline.create_app()
    status, body = await hookline.call("POST", f"/v1/apps/{app_id}/endpoints", {"url": url})
    assert status == 422 and body["error"]["code"] == "destination_not_allowed", body

    endpoint = await hookline.create_endpoint(app_id, "http://127.0.0.1:9/ok")
    status, body = await hookline.call(
        "PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", {"url": url}
    )
    assert status == 422 and body["error"]["code"] == "destination_not_allowed", body
    status, body = await hookline.call(
        "POST", f"/v1/apps/{app_id}/events", {"type": "a.b", "payload": {}, "callback_url": url}
    )
    assert status == 422 and body["error"]["code"] == "destination_not_allowed", body


@pytest.fixture
def production(settings: Settings) -> Settings:
    return settings.model_copy(update={"mode": "production", "secrets_keys": [generate_key()]})


@pytest.fixture
async def production_api(production: Settings, temporal_client: Client) -> AsyncIterator[Hookline]:
    """The API in production mode, loopback allowlisted; no worker of its own."""
    allowing = production.model_copy(update={"allowed_networks": ["127.0.0.0/8", "::1/128"]})
    async with Hookline.running(allowing, temporal_client, API_KEY) as running:
        await running.stop_worker()
        yield running


async def test_production_requires_https_and_public_addresses(
    production: Settings, temporal_client: Client
) -> None:
    async with Hookline.running(production, temporal_client, API_KEY) as hookline:
        app_id = await hookline.create_app()
        base = f"/v1/apps/{app_id}/endpoints"
        status, body = await hookline.call("POST", base, {"url": "http://example.com/hook"})
        assert status == 422 and "https" in body["error"]["message"]
        for url in ("https://127.0.0.1/hook", "https://localhost/hook", "https://[::1]/"):
            status, body = await hookline.call("POST", base, {"url": url})
            assert status == 422 and body["error"]["code"] == "destination_not_allowed", url


async def test_attempts_check_the_address_they_connect_to(
    production_api: Hookline, production: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # Saved while loopback was allowlisted; the worker's policy (production, no allowlist)
    # refuses it when the attempt resolves the name: as a rebinding name would be refused.
    app_id = await production_api.create_app()
    url = receiver.url.replace("http://127.0.0.1", "https://localhost")
    await production_api.create_endpoint(app_id, url)
    event = await production_api.send_event(app_id, "batch.completed", {})

    async with running_worker(production, temporal_client):
        view = await production_api.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    assert view["attempts"] == 1
    assert view["last_attempt"]["error"].startswith("destination refused: localhost")
    assert receiver.requests == []


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "2002:7f00:1::1"])
def test_policy_looks_inside_ipv6_wrapped_ipv4(address: str) -> None:
    assert DestinationPolicy("production", []).refusal(address)

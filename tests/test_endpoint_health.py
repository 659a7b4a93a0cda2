"""Endpoint health: auto-disable, 410 Gone, recovery, and the operator's signed events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.contracts.signing import generate_secret
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for

SHORT = {"initial_interval_s": 1, "max_interval_s": 1, "window_s": 2}
OPERATOR_SECRET = generate_secret()


@pytest.fixture
async def operator() -> AsyncIterator[Receiver]:
    async with Receiver.running() as running:
        yield running


@pytest.fixture
async def watched(
    settings: Settings, temporal_client: Client, operator: Receiver
) -> AsyncIterator[Hookline]:
    """A Hookline that reports to ``operator`` and disables endpoints failing for 2 s."""
    watched_settings = settings.model_copy(
        update={
            "operator_webhook_url": operator.url,
            "operator_webhook_secret": OPERATOR_SECRET,
            "auto_disable_after_s": 2.0,
        }
    )
    async with Hookline.running(watched_settings, temporal_client, API_KEY) as running:
        yield running


def operator_events(operator: Receiver) -> list[dict[str, Any]]:
    """The operator's events, each verified against the operator secret."""
    webhook = Webhook(OPERATOR_SECRET)
    return [webhook.verify(r.body, r.headers) for r in operator.requests]


def of_type(operator: Receiver, event_type: str) -> list[dict[str, Any]]:
    return [e for e in operator_events(operator) if e["type"] == event_type]


async def test_endpoint_failing_for_the_period_is_disabled_and_reported(
    watched: Hookline, receiver: Receiver, operator: Receiver
) -> None:
    receiver.default = (500, {})
    app_id = await watched.create_app()
    endpoint = await watched.create_endpoint(app_id, receiver.url, retry=SHORT)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"

    first = await watched.send_event(app_id, "batch.completed", {"n": 1})
    await watched.wait_status(app_id, first["deliveries"][0]["id"], "failed")
    failing = await wait_for(
        lambda: _failing_since(watched, path), what="the endpoint to be marked failing"
    )
    assert not (await watched.ok("GET", path))["disabled"]
    # Let the failing period run out before the next failure is recorded.
    await wait_for(lambda: datetime.now(UTC) > failing + timedelta(seconds=2), what="2 s")
    second = await watched.send_event(app_id, "batch.completed", {"n": 2})
    await watched.wait_status(app_id, second["deliveries"][0]["id"], "failed")

    disabled = await wait_for(lambda: _disabled(watched, path), what="the endpoint disabled")
    assert "every delivery failed since" in disabled["disabled_reason"]
    assert (await watched.send_event(app_id, "batch.completed", {"n": 3}))["deliveries"] == []
    reported = await wait_for(
        lambda: of_type(operator, "endpoint.disabled"), what="endpoint.disabled event"
    )
    assert reported[0]["data"]["endpoint_id"] == endpoint["id"]
    failed = await wait_for(
        lambda: (
            len(of_type(operator, "delivery.failed")) == 2 and of_type(operator, "delivery.failed")
        ),
        what="two delivery.failed events",
    )
    assert {e["data"]["event_id"] for e in failed} == {first["id"], second["id"]}


async def test_gone_disables_the_endpoint_at_once(
    watched: Hookline, receiver: Receiver, operator: Receiver
) -> None:
    receiver.respond(410)
    app_id = await watched.create_app()
    endpoint = await watched.create_endpoint(app_id, receiver.url)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    event = await watched.send_event(app_id, "job.failed", {})
    await watched.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    disabled = await wait_for(lambda: _disabled(watched, path), what="the endpoint disabled")

    assert disabled["disabled_reason"] == "the receiver answered 410 Gone"
    await wait_for(lambda: of_type(operator, "endpoint.disabled"), what="endpoint.disabled")


async def test_success_after_failures_reports_recovery(
    watched: Hookline, receiver: Receiver, operator: Receiver
) -> None:
    receiver.default = (500, {})
    app_id = await watched.create_app()
    endpoint = await watched.create_endpoint(app_id, receiver.url, retry=SHORT)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    event = await watched.send_event(app_id, "batch.completed", {})
    await watched.wait_status(app_id, event["deliveries"][0]["id"], "failed")
    await wait_for(lambda: _failing_since(watched, path), what="the endpoint marked failing")

    receiver.default = (200, {})
    event = await watched.send_event(app_id, "batch.completed", {"ok": True})
    await watched.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    recovered = await wait_for(
        lambda: of_type(operator, "endpoint.recovered"), what="endpoint.recovered event"
    )
    assert recovered[0]["data"]["endpoint_id"] == endpoint["id"]
    assert (await watched.ok("GET", path))["failing_since"] is None


async def test_operator_events_are_plain_deliveries_signed_with_the_operator_secret(
    watched: Hookline, receiver: Receiver, operator: Receiver
) -> None:
    receiver.respond(410)
    app_id = await watched.create_app()
    await watched.create_endpoint(app_id, receiver.url)
    await watched.send_event(app_id, "job.failed", {})

    await wait_for(lambda: len(operator.requests) >= 2, what="two operator events")

    for request in operator.requests:
        event = json.loads(request.body)
        assert set(event) == {"type", "timestamp", "data"}
        # The id is derived from the delivery, so a retried bookkeeping step repeats it.
        assert request.headers["webhook-id"].startswith(f"{event['type']}:dlv_")
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(generate_secret()).verify(operator.requests[0].body, operator.requests[0].headers)


async def _failing_since(hookline: Hookline, path: str) -> datetime | None:
    value = (await hookline.ok("GET", path))["failing_since"]
    return datetime.fromisoformat(value) if value else None


async def _disabled(hookline: Hookline, path: str) -> dict[str, Any] | None:
    endpoint = await hookline.ok("GET", path)
    return endpoint if endpoint["disabled"] else None

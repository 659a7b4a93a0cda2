"""The default retry schedule (3-day window) end to end, under Temporal's time skipping.

Both outages run at once on one time-skipping dev server; each delivery's workflow has its own
virtual clock, and the receivers judge "down for N days" on that clock, never on wall time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from hookline.contracts.ids import delivery_workflow_id
from hookline.contracts.retry_settings import RetrySettings
from hookline.contracts.search_attributes import ALL as SEARCH_ATTRIBUTES
from hookline.temporal.dev_server import temporal_cli
from tests.conftest import API_KEY, settings_for_tests
from tests.harness import Hookline, wait_for

DOCUMENTED_ATTEMPTS = 78
"""docs/retries.md: the default schedule "makes about 78 attempts" in its 3-day window."""
OUTCOME_TIMEOUT_S = 300.0
"""Wall seconds for a delivery to end: measured 5-20 s; generous for a busy machine."""
SLACK = timedelta(seconds=15)
"""Virtual time an attempt may add to its backoff (the POST, the server's rounding, load)."""
DEV_SERVER_ARGS = [
    "--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true",
    # A skipped backoff otherwise waits about 1 s of wall time for the history's timer
    # processor to fire it (its default time shift); 10 ms makes it about 0.1 s.
    "--dynamic-config-value", 'history.timerProcessorMaxTimeShift="10ms"',
]  # fmt: skip

# Marked ``temporal`` by hand: it starts its own dev server, not the session's.
pytestmark = [pytest.mark.temporal, pytest.mark.timeout(OUTCOME_TIMEOUT_S + 120)]


@dataclass(frozen=True)
class Hit:
    """One request the receiver got, stamped with the delivery's virtual time."""

    at: datetime
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class OutageReceiver:
    """A real receiver that answers 503 until ``down_for`` has passed on the delivery
    workflow's virtual clock since its first request, then 200."""

    env: WorkflowEnvironment
    down_for: timedelta
    workflow_id: str = ""
    url: str = ""
    hits: list[Hit] = field(default_factory=list)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        handle = self.env.client.get_workflow_handle(self.workflow_id)
        now = await self.env.get_current_time(handle)
        down = not self.hits or now - self.hits[0].at < self.down_for
        status = 503 if down else 200
        self.hits.append(Hit(now, status, dict(request.headers), body))
        return web.Response(status=status)

    @classmethod
    @asynccontextmanager
    async def running(
        cls, env: WorkflowEnvironment, down_for: timedelta
    ) -> AsyncIterator[OutageReceiver]:
        receiver = cls(env, down_for)
        app = web.Application()
        app.router.add_post("/hook", receiver._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        try:
            yield receiver
        finally:
            await runner.cleanup()


@dataclass(frozen=True)
class Outage:
    """How one delivery through an outage ended: the API's view, and what the receiver got."""

    view: dict[str, Any]
    hits: list[Hit]
    secret: str
    body: bytes
    """The event's payload as compact JSON: the bytes every attempt must send."""


def wait_after(retry: RetrySettings, attempt: int) -> timedelta:
    """The backoff after the ``attempt``-th failed attempt: doubling from the initial
    interval, capped at the maximum."""
    backoff = retry.initial_interval_s * retry.backoff_coefficient ** (attempt - 1)
    return timedelta(seconds=min(backoff, retry.max_interval_s))


def attempts_in_window(retry: RetrySettings) -> int:
    """How many attempts ``retry``'s backoff fits in its window, if each takes no time: the
    first at 0, each next one after its wait, as long as it starts before the window closes."""
    made, at, window = 1, timedelta(0), timedelta(seconds=retry.window_s)
    while at + wait_after(retry, made) < window:
        made, at = made + 1, at + wait_after(retry, made)
    return made


async def deliver_through_outage(
    hookline: Hookline, env: WorkflowEnvironment, down_for: timedelta, payload: dict[str, Any]
) -> Outage:
    """Send one event to an endpoint, with the default schedule, that is down for
    ``down_for`` of virtual time; wait (on wall time) for its delivery to end."""
    async with OutageReceiver.running(env, down_for) as receiver:
        app_id = await hookline.create_app()
        endpoint = await hookline.create_endpoint(app_id, receiver.url)
        assert endpoint.get("retry") in (None, {}), endpoint  # the workers' default schedule
        event_id = f"evt_{uuid.uuid4().hex}"
        receiver.workflow_id = delivery_workflow_id(app_id, event_id, endpoint["id"])
        event = await hookline.send_event(app_id, "invoice.paid", payload, id=event_id)
        delivery_id = event["deliveries"][0]["id"]

        async def ended() -> dict[str, Any] | None:
            view = await hookline.delivery(app_id, delivery_id)
            return view if view["status"] in ("succeeded", "failed") else None

        view = await wait_for(
            ended, timeout=OUTCOME_TIMEOUT_S, interval=0.5, what=f"{delivery_id} to end"
        )
        assert view["workflow_id"] == receiver.workflow_id
        compact = json.dumps(payload, separators=(",", ":")).encode()
        return Outage(view, receiver.hits, endpoint["secret"], compact)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping dev server (the project's temporal CLI, offline), for this module."""
    environment = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=temporal_cli(),
        dev_server_extra_args=DEV_SERVER_ARGS,
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
    )
    async with environment:
        yield environment


@pytest.fixture(scope="module")
async def outages(
    env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, asyncio.Task[Outage]]]:
    """Both outages under way at once, through one Hookline whose API and worker use the
    environment's client (which turns time skipping on for every workflow they start)."""
    data_dir: Path = tmp_path_factory.mktemp("three-days")
    address = env.client.service_client.config.target_host
    # The default schedule; the circuit breaker stays off, as in the other tests. With it on,
    # this lone delivery goes through its endpoint's lane after 5 attempts, and time skipping
    # does not wait for the lane's grant (a signal between workflows): it jumps to the
    # delivery's 5-minute re-ask timer first, about 5 virtual minutes lost an attempt.
    settings = settings_for_tests(data_dir, address).model_copy(update={"retry": RetrySettings()})
    async with Hookline.running(settings, env.client, API_KEY) as hookline:
        tasks = {
            "two_days": asyncio.create_task(
                deliver_through_outage(hookline, env, timedelta(days=2), {"invoice": "in_2d"})
            ),
            "four_days": asyncio.create_task(
                deliver_through_outage(hookline, env, timedelta(days=4), {"invoice": "in_4d"})
            ),
        }
        try:
            yield tasks
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)


async def test_receiver_down_two_days_gets_the_event_when_back(
    outages: dict[str, asyncio.Task[Outage]],
) -> None:
    outage = await outages["two_days"]
    hits, view = outage.hits, outage.view

    assert view["status"] == "succeeded", view
    assert view["attempts"] == len(hits)
    assert view["last_attempt"]["status_code"] == 200
    *down, up = hits
    start = hits[0].at
    assert down and all(h.status == 503 and h.at - start < timedelta(days=2) for h in down)
    # Back after two days: the next hourly attempt delivers it.
    assert up.status == 200
    assert timedelta(days=2) <= up.at - start < timedelta(days=2, hours=1) + SLACK
    # The waits are the documented ones: 30 s doubling, capped at 1 h.
    for made, (before, after) in enumerate(itertools.pairwise(hits), start=1):
        wait = wait_after(RetrySettings(), made)
        assert wait <= after.at - before.at < wait + SLACK, (made, after.at - before.at)
    # Every attempt sent the same bytes; the one that got through verifies.
    assert {h.body for h in hits} == {outage.body}
    assert {h.headers["webhook-id"] for h in hits} == {view["event_id"]}
    assert Webhook(outage.secret).verify(up.body, up.headers) == json.loads(outage.body)


async def test_receiver_down_four_days_fails_after_the_window(
    outages: dict[str, asyncio.Task[Outage]],
) -> None:
    outage = await outages["four_days"]
    hits, view = outage.hits, outage.view

    assert attempts_in_window(RetrySettings()) == DOCUMENTED_ATTEMPTS
    # Read from the API; the 7-day hold for a manual retry is skipped too, so by now the run
    # has usually closed as failed (the API reads `failed` either way).
    assert view["status"] == "failed", view
    assert view["attempts"] == DOCUMENTED_ATTEMPTS
    assert len(hits) == DOCUMENTED_ATTEMPTS
    assert view["last_attempt"]["status_code"] == 503
    assert all(h.status == 503 for h in hits)
    # The attempts used the window: the last came in its final hour, and none after it.
    window = timedelta(seconds=RetrySettings().window_s)
    assert window - timedelta(hours=1) <= hits[-1].at - hits[0].at < window
    assert {h.body for h in hits} == {outage.body}

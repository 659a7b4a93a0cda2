"""Prometheus metrics: the worker's (Temporal SDK's and Hookline's) and the API's."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import aiohttp
from aiohttp import web
from temporalio.client import Client, WorkflowExecutionCount

from hookline.api.metrics import METHODS
from hookline.api.serving import api_runner
from hookline.config.settings import Settings
from hookline.temporal.client import connect_temporal, metrics_runtime
from hookline.worker.running import running_worker
from tests.conftest import free_port
from tests.harness import Hookline, Receiver, wait_for


async def _scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return await response.text()


def _value(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def test_worker_serves_sdk_and_delivery_metrics(
    hookline: Hookline, settings: Settings, receiver: Receiver
) -> None:
    await hookline.stop_worker()
    address = f"127.0.0.1:{free_port()}"
    client: Client = await connect_temporal(settings, metrics_runtime(address))
    receiver.respond(503)
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)

    async with running_worker(settings, client):
        event = await hookline.send_event(app_id, "batch.completed", {})
        await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

        async def scraped() -> str | None:
            text = await _scrape(f"http://{address}/metrics")
            return text if _value(text, "hookline_deliveries_total") >= 1 else None

        text = await wait_for(scraped, what="delivery metrics")

    attempts = "hookline_delivery_attempts_total"
    assert _value(text, attempts, outcome="failed", status_class="5xx") == 1
    assert _value(text, attempts, outcome="delivered", event_type="batch.completed") == 1
    deliveries = "hookline_deliveries_total"
    assert _value(text, deliveries, outcome="succeeded", event_type="batch.completed") == 1
    assert _value(text, "hookline_attempts_per_delivery_sum", outcome="succeeded") == 2
    assert _value(text, "hookline_attempt_duration_seconds_count") == 2
    assert _value(text, "hookline_endpoint_cache_lookups_total", outcome="miss") == 2
    assert re.search(r"^hookline_attempts_in_flight(\{.*\})? 0$", text, re.M), "in flight"
    assert "temporal_activity_execution_latency" in text


async def test_api_serves_request_and_ingest_metrics(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    await hookline.send_event(app_id, "batch.completed", {}, id="evt_m")
    await hookline.send_event(app_id, "batch.completed", {}, id="evt_m")
    await hookline.call("GET", f"/v1/apps/{app_id}/deliveries/dlv_unknown")

    text = await _scrape(hookline.api_url + "/metrics")  # no key needed

    assert _value(text, "hookline_events_accepted_total", duplicate="false") == 1
    assert _value(text, "hookline_events_accepted_total", duplicate="true") == 1
    assert _value(text, "hookline_deliveries_started_total") == 1
    route = "/v1/apps/{app_id}/deliveries/{delivery_id}"
    assert (
        _value(text, "hookline_api_request_duration_seconds_count", route=route, status="404") == 1
    )
    assert app_id not in text


async def test_api_counts_deliveries_backing_off(hookline: Hookline, receiver: Receiver) -> None:
    receiver.default = (503, {})
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id,
        receiver.url,
        retry={"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200},
    )
    event = await hookline.send_event(app_id, "batch.completed", {})
    await hookline.wait_status(app_id, event["deliveries"][0]["id"], "retrying")

    async def counted() -> str | None:  # visibility lags the workflow by moments
        text = await _scrape(hookline.api_url + "/metrics")
        return text if _value(text, "hookline_deliveries_backing_off") == 1 else None

    await wait_for(counted, what="one delivery backing off")
    listed = await hookline.ok("GET", f"/v1/apps/{app_id}/events/{event['id']}")
    assert [d["status"] for d in listed["deliveries"]] == ["retrying"]


async def test_api_counts_deliveries_waiting_in_a_paused_lane(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    await hookline.ok("POST", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/pause")
    for n in range(2):
        event = await hookline.send_event(app_id, "batch.completed", {"n": n})
        await hookline.wait_status(app_id, event["deliveries"][0]["id"], "paused")

    async def counted() -> str | None:  # visibility lags the workflow by moments
        text = await _scrape(hookline.api_url + "/metrics")
        return text if _value(text, "hookline_deliveries_paused") == 2 else None

    text = await wait_for(counted, what="two deliveries paused")
    assert _value(text, "hookline_deliveries_backing_off") == 0
    assert receiver.requests == []


async def test_worker_keeps_the_configured_polls_open(
    hookline: Hookline, settings: Settings
) -> None:
    """HOOKLINE_WORKER_POLLERS polls per kind of task, four in five workflow-task polls on the
    task queue: the SDK's own poller gauge shows them."""
    await hookline.stop_worker()
    address = f"127.0.0.1:{free_port()}"
    client: Client = await connect_temporal(settings, metrics_runtime(address))
    wanted = {"workflow_task": 8, "sticky_workflow_task": 2, "activity_task": 10}

    async with running_worker(settings.model_copy(update={"worker_pollers": 10}), client):

        async def all_polling() -> dict[str, float] | None:
            text = await _scrape(f"http://{address}/metrics")
            polls = {
                kind: _value(text, "temporal_num_pollers", poller_type=kind) for kind in wanted
            }
            return polls if polls == wanted else None

        assert await wait_for(all_polling, what="the configured polls") == wanted


COUNTS_PER_REFRESH = 2
"""Visibility counts one refresh makes: deliveries backing off, deliveries paused."""


class CountingTemporal:
    """The real client, with its visibility counts counted, and held until ``release``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.counts = 0
        self.release = asyncio.Event()

    async def count_workflows(self, query: str) -> WorkflowExecutionCount:
        self.counts += 1
        await self.release.wait()
        return await self._client.count_workflows(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@asynccontextmanager
async def _api(settings: Settings, temporal: CountingTemporal) -> AsyncIterator[tuple[str, Any]]:
    """The API alone (no worker) on ``temporal``: its URL and aiohttp server."""
    runner = api_runner(settings, cast(Client, temporal), access_log=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", runner.server
    finally:
        await runner.cleanup()


async def test_concurrent_scrapes_share_one_count(
    settings: Settings, temporal_client: Client
) -> None:
    temporal = CountingTemporal(temporal_client)
    uncached = settings.model_copy(update={"metrics_count_cache_s": 0})
    async with _api(uncached, temporal) as (url, server):
        scrapes = [asyncio.ensure_future(_scrape(url + "/metrics")) for _ in range(20)]
        # Every scrape is being handled, and the one count is held: all must wait for it.
        await wait_for(lambda: server.requests_count >= 20, what="20 scrapes in the API")
        temporal.release.set()
        texts = await asyncio.gather(*scrapes)
        assert temporal.counts == COUNTS_PER_REFRESH
        assert all("hookline_deliveries_backing_off 0.0" in text for text in texts)
        for _ in range(3):  # with no cache, each scrape after that counts again
            await _scrape(url + "/metrics")
        assert temporal.counts == 4 * COUNTS_PER_REFRESH


async def test_scrapes_within_the_cache_time_reuse_the_count(
    settings: Settings, temporal_client: Client
) -> None:
    temporal = CountingTemporal(temporal_client)
    temporal.release.set()
    cached = settings.model_copy(update={"metrics_count_cache_s": 300})
    async with _api(cached, temporal) as (url, _):
        for _ in range(10):
            assert "hookline_deliveries_backing_off 0.0" in await _scrape(url + "/metrics")
    assert temporal.counts == COUNTS_PER_REFRESH


EXTENSION_METHODS = (
    "TRACE PURGE MKCOL PROPFIND PROPPATCH LOCK UNLOCK COPY MOVE SEARCH REPORT MKACTIVITY CHECKOUT "
    "MERGE M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE BIND REBIND UNBIND ACL MKCALENDAR LINK UNLINK "
    "SOURCE QUERY"
).split()
"""Methods aiohttp's C parser (llhttp) accepts beyond the usual seven; its pure-Python parser
(``AIOHTTP_NO_EXTENSIONS=1``) accepts any token, such as the random ones below."""


async def test_request_methods_are_a_bounded_label(hookline: Hookline) -> None:
    random = ["X" + secrets.token_hex(4).upper() for _ in range(50 - len(EXTENSION_METHODS))]
    async with aiohttp.ClientSession() as http:
        for method in EXTENSION_METHODS + random:
            async with http.request(method, hookline.api_url + "/v1/apps") as response:
                # 400: llhttp refuses the random ones before the application sees them.
                assert response.status in (400, 401, 405), (method, response.status)
        async with http.get(hookline.api_url + "/metrics") as response:
            text = await response.text()
    labelled = r'^hookline_api_request_duration_seconds_count\{method="([^"]*)"'
    methods = set(re.findall(labelled, text, re.M))
    assert "other" in methods and methods <= METHODS | {"other"}, methods

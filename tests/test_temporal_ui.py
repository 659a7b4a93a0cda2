"""What operators see in the Temporal UI, in headless Chromium: the workflow list filtered by
Hookline's search attributes, and a delivery's summary. Also makes the README's screenshots."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect
from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.contracts import search_attributes as sa
from hookline.contracts.retry_settings import RetrySettings
from hookline.temporal.client import connect_temporal
from hookline.temporal.dev_server import start_dev_server, stop_dev_server
from tests.conftest import API_KEY, free_port
from tests.harness import Hookline, Receiver, wait_for

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium calls home, and a closed network refuses it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
UI_TIMEOUT_MS = 20_000
"""How long a page may take to show what is expected (the UI is slow on a loaded machine)."""
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
"""Where ``HOOKLINE_UPDATE_SCREENSHOTS=1`` writes the README's screenshots."""
HOUR = {"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200}
"""An endpoint's retry override that keeps a failing delivery retrying through the test."""
EVENT_TYPES = {"succeeded": "order.paid", "retrying": "invoice.overdue", "failed": "user.deleted"}
STATUS_ATTRIBUTE = {"succeeded": "succeeded", "retrying": "retrying", "failed": "failed"}
"""The ``HooklineStatus`` of a delivery in each API status."""


@dataclass(frozen=True)
class Deliveries:
    """One delivery in each state on a dev server with its Web UI."""

    ui_url: str
    app_id: str
    workflow_ids: dict[str, str]
    """By the delivery's API status."""
    retrying_run_id: str
    retrying_summary: str
    recovered_workflow_id: str
    """A delivery that failed, was retried by hand and succeeded."""


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium: without it a CI run fails and a local run skips."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Headless Chromium driven by Playwright, which gives it a fresh, empty profile."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="module")
async def deliveries(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deliveries]:
    """An in-memory dev server with its UI on free ports, and one delivery succeeded, one
    retrying (503, next attempt in an hour) and one failed (410 Gone), made by Hookline."""
    port, ui_port = free_port(), free_port()
    server = await start_dev_server(port, ui_port, None)
    try:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("hookline"),
            api_keys=[API_KEY],
            temporal_address=f"127.0.0.1:{port}",
            task_queue=f"test-{uuid.uuid4()}",
            retry=RetrySettings(
                initial_interval_s=1, backoff_coefficient=1, max_interval_s=1, window_s=60
            ),
            attempt_timeout_s=5,
            api_rate_limit_per_s=None,
            worker_graceful_shutdown_s=1,
        )
        client = await connect_temporal(settings)
        made = await _make_deliveries(settings, client, f"http://127.0.0.1:{ui_port}")
        async with aiohttp.ClientSession() as http:
            await wait_for(lambda: _answers(http, made.ui_url), what="the Temporal UI")
        yield made
    finally:
        stop_dev_server(server)


async def _make_deliveries(settings: Settings, client: Client, ui_url: str) -> Deliveries:
    async with AsyncExitStack() as stack:
        hookline = await stack.enter_async_context(Hookline.running(settings, client, API_KEY))
        receivers = {}
        for status, answer in [("succeeded", 200), ("retrying", 503), ("failed", 410)]:
            receivers[status] = await stack.enter_async_context(Receiver.running())
            receivers[status].default = (answer, {})
        app_id = await hookline.create_app("Acme")
        delivery_ids = {}
        for status, event_type in EVENT_TYPES.items():
            url = receivers[status].url
            await hookline.create_endpoint(app_id, url, event_types=[event_type], retry=HOUR)
            event = await hookline.send_event(app_id, event_type, {"order": 42})
            delivery_ids[status] = event["deliveries"][0]["id"]
        workflow_ids = {
            status: (await hookline.wait_status(app_id, delivery_id, status))["workflow_id"]
            for status, delivery_id in delivery_ids.items()
        }
        recovered = await _recovered_delivery(hookline, app_id, stack)
    for status, value in STATUS_ATTRIBUTE.items():
        query = f'{sa.STATUS.name}="{value}" AND {sa.APP_ID.name}="{app_id}"'
        await wait_for(
            partial(_ids, client, query),
            what=f"visibility to list the {status} delivery",
        )
    retrying = await client.get_workflow_handle(workflow_ids["retrying"]).describe()
    return Deliveries(
        ui_url=ui_url,
        app_id=app_id,
        workflow_ids=workflow_ids,
        retrying_run_id=retrying.run_id,
        retrying_summary=f"{EVENT_TYPES['retrying']} → {receivers['retrying'].url}",
        recovered_workflow_id=recovered,
    )


async def _recovered_delivery(hookline: Hookline, app_id: str, stack: AsyncExitStack) -> str:
    """A delivery that fails (one scheduled attempt, answered 500), then is retried by hand
    once its receiver is back, and succeeds; its workflow id."""
    receiver = await stack.enter_async_context(Receiver.running())
    receiver.default = (500, {})
    await hookline.create_endpoint(
        app_id, receiver.url, event_types=["order.refunded"], retry={"schedule_s": [0]}
    )
    event = await hookline.send_event(app_id, "order.refunded", {"order": 42})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "failed")
    receiver.default = (200, {})
    await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")
    return str((await hookline.wait_status(app_id, delivery_id, "succeeded"))["workflow_id"])


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        yield page
    finally:
        await context.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: ``docs/img/`` with ``HOOKLINE_UPDATE_SCREENSHOTS=1``, else a
    temporary folder, so that a test run leaves the work tree as it was."""
    if os.environ.get("HOOKLINE_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path


async def test_workflow_list_filters_by_hookline_search_attributes(
    page: Page, deliveries: Deliveries, screenshots: Path
) -> None:
    ids = deliveries.workflow_ids
    for status, value in STATUS_ATTRIBUTE.items():
        await _open_list(page, deliveries.ui_url, f'{sa.STATUS.name}="{value}"')
        await _expect_listed(page, shown=ids[status], hidden=set(ids.values()) - {ids[status]})
        if status == "failed":
            path = screenshots / "temporal-ui-failed-deliveries.png"
            await page.screenshot(path=path, full_page=True)

    query = (
        f'{sa.APP_ID.name}="{deliveries.app_id}" '
        f'AND {sa.EVENT_TYPE.name}="{EVENT_TYPES["retrying"]}"'
    )
    await _open_list(page, deliveries.ui_url, query)
    await _expect_listed(page, shown=ids["retrying"], hidden={ids["succeeded"], ids["failed"]})


async def test_a_delivery_retried_by_hand_leaves_the_failed_view_as_one_run(
    page: Page, deliveries: Deliveries
) -> None:
    recovered, failed = deliveries.recovered_workflow_id, deliveries.workflow_ids["failed"]
    await _open_list(page, deliveries.ui_url, f'{sa.STATUS.name}="failed"')
    await _expect_listed(page, shown=failed, hidden={recovered})

    # All of its runs: one, completed (no failed run left beside the one that delivered).
    await _open_list(page, deliveries.ui_url, f'WorkflowId="{recovered}"')
    await expect(page.get_by_text(recovered, exact=True)).to_have_count(1, timeout=UI_TIMEOUT_MS)
    rows = page.locator("tr", has=page.get_by_text(recovered, exact=True))
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Completed")
    await expect(page.get_by_text("Failed", exact=True)).to_have_count(0)


async def test_delivery_page_shows_its_summary(
    page: Page, deliveries: Deliveries, screenshots: Path
) -> None:
    workflow_id = quote(deliveries.workflow_ids["retrying"], safe="")
    await page.goto(
        f"{deliveries.ui_url}/namespaces/default/workflows/{workflow_id}"
        f"/{deliveries.retrying_run_id}/user-metadata"
    )
    # The UI renders the summary as Markdown in an iframe of its own.
    summary = page.frame_locator("#user-metadata-summary").locator("body")
    await expect(summary).to_have_text(deliveries.retrying_summary, timeout=UI_TIMEOUT_MS)
    await page.screenshot(path=screenshots / "temporal-ui-delivery-summary.png", full_page=True)


async def _open_list(page: Page, ui_url: str, query: str) -> None:
    await page.goto(f"{ui_url}/namespaces/default/workflows?{urlencode({'query': query})}")


async def _expect_listed(page: Page, shown: str, hidden: set[str]) -> None:
    """The list shows the workflow ``shown`` and none of ``hidden`` (checked once the list
    has loaded: the UI renders its rows together)."""
    await expect(page.get_by_text(shown, exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    for workflow_id in hidden:
        await expect(page.get_by_text(workflow_id, exact=True)).to_have_count(0)


async def _answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def _ids(client: Client, query: str) -> list[str]:
    return [w.id async for w in client.list_workflows(query)]

"""No metric label takes a value a client chooses without a bound."""

from __future__ import annotations

import re

from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.contracts.metric_labels import OTHER, BoundedLabelValues
from hookline.temporal.client import connect_temporal, metrics_runtime
from hookline.worker.running import running_worker
from tests.conftest import free_port
from tests.harness import Hookline, Receiver, wait_for
from tests.test_metrics import _scrape, _value

EVENT_TYPES = 20
LIMIT = 5


def test_values_past_the_bound_read_other() -> None:
    labels = BoundedLabelValues(2)
    assert [labels(v) for v in ("a", "b", "c", "a", "d", "b")] == ["a", "b", OTHER, "a", OTHER, "b"]
    labels.set_limit(0)
    assert labels("a") == OTHER


async def test_worker_metrics_keep_a_bounded_set_of_event_types(
    hookline: Hookline, settings: Settings, receiver: Receiver
) -> None:
    await hookline.stop_worker()
    bounded = settings.model_copy(update={"metrics_max_event_types": LIMIT})
    address = f"127.0.0.1:{free_port()}"
    client: Client = await connect_temporal(bounded, metrics_runtime(address))
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)

    async with running_worker(bounded, client):
        for n in range(EVENT_TYPES):
            await hookline.send_event(app_id, f"tenant.chosen.type{n}", {})

        async def scraped() -> str | None:
            text = await _scrape(f"http://{address}/metrics")
            done = _value(text, "hookline_deliveries_total") >= EVENT_TYPES
            return text if done else None

        text = await wait_for(scraped, what="every delivery counted")

    for metric in ("hookline_deliveries_total", "hookline_delivery_attempts_total"):
        values = set(re.findall(rf'^{metric}\{{.*event_type="([^"]*)"', text, re.M))
        assert len(values - {OTHER}) <= LIMIT, (metric, values)
        assert _value(text, metric, event_type=OTHER) >= EVENT_TYPES - LIMIT, metric

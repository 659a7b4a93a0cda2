"""Logs: one structured record per attempt, with ids, never secrets or bodies."""

from __future__ import annotations

import json
import logging

import pytest

from hookline.cli.log_setup import formatter_for
from hookline.config.settings import Settings
from tests.harness import Hookline, Receiver


async def test_each_attempt_logs_one_structured_line_without_secrets(
    hookline: Hookline, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.respond(500)
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url_for("/hook?token=s3cr3t"))
    caplog.set_level(logging.INFO)
    event = await hookline.send_event(app_id, "batch.completed", {"card": "4111-1111"})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")

    attempts = [r for r in caplog.records if getattr(r, "delivery_id", None) == delivery_id]
    # ignore[attr-defined] below: a record's `extra` fields are attributes LogRecord lacks.
    assert [(r.attempt, r.status_code, r.outcome) for r in attempts] == [  # type: ignore[attr-defined]
        (1, 500, "failed"),
        (2, 200, "delivered"),
    ]
    assert all(r.endpoint_id == endpoint["id"] for r in attempts)  # type: ignore[attr-defined]

    formatter = formatter_for(Settings(log_format="json"))
    line = json.loads(formatter.format(attempts[0]))
    assert line["delivery_id"] == delivery_id and line["level"] == "INFO"
    assert line["temporal_activity"]["workflow_id"].startswith("delivery:")

    everything = "\n".join(formatter.format(r) for r in caplog.records)
    for secret in (endpoint["secret"], endpoint["secret"].removeprefix("whsec_"), "s3cr3t", "4111"):
        assert secret not in everything

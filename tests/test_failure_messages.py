"""With payload encryption on, Temporal holds no destination in clear, failures included."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.storage.secret_box import generate_key
from hookline.temporal.client import connect_temporal
from tests.conftest import API_KEY, free_port
from tests.harness import Hookline


@pytest.fixture
async def encrypting(settings: Settings) -> AsyncIterator[Hookline]:
    # No hold after failing: the run closes at once, so its history ends with the failure.
    retry = settings.retry.model_copy(update={"failed_hold_s": 0})
    sealed = settings.model_copy(update={"payload_keys": [generate_key()], "retry": retry})
    client = await connect_temporal(sealed)
    async with Hookline.running(sealed, client, API_KEY) as hookline:
        yield hookline


async def test_failed_attempts_leave_no_destination_in_clear(
    encrypting: Hookline, temporal_client: Client
) -> None:
    port = free_port()  # nothing listens there: every attempt fails to connect
    app_id = await encrypting.create_app()
    await encrypting.create_endpoint(
        app_id, f"http://127.0.0.1:{port}/hook", retry={"schedule_s": [0, 1, 1]}
    )
    event = await encrypting.send_event(app_id, "batch.completed", {})
    view = await encrypting.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    # The API, with the key, still names the destination; Temporal's own records do not.
    assert view["last_attempt"]["error"].startswith(f"cannot connect to 127.0.0.1:{port}")
    handle = temporal_client.get_workflow_handle(view["workflow_id"])
    history = await handle.fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    # The port as a number of its own: ids and run ids in the history are hex strings, which
    # may hold the same digits by chance.
    assert not re.search(rb"(?<![0-9a-fA-F])%d(?![0-9a-fA-F])" % port, raw)
    assert b"127.0.0.1" not in raw
    failed = history.events[-1].workflow_execution_failed_event_attributes.failure
    assert "cannot connect: Connection refused" in failed.message, failed.message

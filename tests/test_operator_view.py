"""What operators see in Temporal, what the list API answers, and what Temporal never holds."""

from __future__ import annotations

import base64
from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus

from hookline.config.settings import Settings
from hookline.contracts import search_attributes as sa
from tests.harness import Hookline, Receiver, wait_for


async def test_delivery_workflow_reads_well_in_the_temporal_ui(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    event = await hookline.send_event(app_id, "batch.completed", {"b": 1}, id="evt_ui")
    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    assert view["workflow_id"] == f"delivery:{app_id}:evt_ui:{endpoint['id']}"
    description = await hookline.temporal.get_workflow_handle(view["workflow_id"]).describe()
    assert await description.static_summary() == f"batch.completed → {receiver.url}"
    assert description.status == WorkflowExecutionStatus.COMPLETED
    attributes = description.typed_search_attributes
    assert attributes.get(sa.APP_ID) == app_id
    assert attributes.get(sa.ENDPOINT_ID) == endpoint["id"]
    assert attributes.get(sa.EVENT_TYPE) == "batch.completed"
    assert attributes.get(sa.EVENT_ID) == "evt_ui"
    assert attributes.get(sa.DELIVERY_ID) == view["id"]
    assert attributes.get(sa.STATUS) == "succeeded"


async def test_failed_deliveries_are_found_by_status_attribute(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(410)
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url)
    event = await hookline.send_event(app_id, "job.failed", {})
    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    query = f'{sa.STATUS.name} = "failed" AND {sa.APP_ID.name} = "{app_id}"'
    found = await wait_for(
        lambda: _ids(hookline, query), what="visibility to show the failed delivery"
    )
    assert found == [view["workflow_id"]]
    # Held open for a manual retry, which says so in the UI's current details.
    handle = hookline.temporal.get_workflow_handle(view["workflow_id"])
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert metadata.current_details.startswith("Failed: HTTP 410 Gone")
    assert "Open for a manual retry until" in metadata.current_details
    assert view["finished_at"] is None and view["next_attempt_at"] is None


async def test_a_failed_delivery_retried_in_its_hold_is_one_run_and_no_longer_failed(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.respond(500, 500)
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, retry={"schedule_s": [0, 1]})
    event = await hookline.send_event(app_id, "job.failed", {})
    delivery_id = event["deliveries"][0]["id"]
    failed = await hookline.wait_status(app_id, delivery_id, "failed")
    failed_query = f'{sa.STATUS.name} = "failed" AND {sa.APP_ID.name} = "{app_id}"'
    await wait_for(lambda: _ids(hookline, failed_query), what="the failed delivery in the UI")
    listed = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries?status=failed")
    assert [d["id"] for d in listed["data"]] == [delivery_id]

    await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{delivery_id}/retry")
    done = await hookline.wait_status(app_id, delivery_id, "succeeded")

    assert done["attempts"] == failed["attempts"] + 1 == 3
    runs = f'WorkflowId = "{done["workflow_id"]}"'
    assert await wait_for(
        lambda: _ids(hookline, f'{runs} AND ExecutionStatus = "Completed"'),
        what="the delivery's run to complete",
    ) == [done["workflow_id"]]
    assert await _ids(hookline, runs) == [done["workflow_id"]]  # one run, not a failed one too
    assert await _ids(hookline, failed_query) == []
    listed = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries?status=failed")
    assert listed["data"] == []


async def test_a_failed_delivery_closes_as_failed_when_its_hold_ends(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    short_hold = settings.model_copy(
        update={"retry": settings.retry.model_copy(update={"failed_hold_s": 1.0})}
    )
    async with Hookline.running(short_hold, temporal_client, settings.api_keys[0]) as hookline:
        receiver.respond(410)
        app_id = await hookline.create_app()
        await hookline.create_endpoint(app_id, receiver.url)
        event = await hookline.send_event(app_id, "job.failed", {})
        delivery_id = event["deliveries"][0]["id"]

        async def closed() -> dict[str, Any] | None:
            view = await hookline.delivery(app_id, delivery_id)
            return view if view["finished_at"] else None

        view = await wait_for(closed, what="the hold to end")
        assert view["status"] == "failed"
        description = await hookline.temporal.get_workflow_handle(view["workflow_id"]).describe()
        assert description.status == WorkflowExecutionStatus.FAILED


async def test_secret_never_reaches_temporal(hookline: Hookline, receiver: Receiver) -> None:
    receiver.respond(500)
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url, retry={"initial_interval_s": 1, "max_interval_s": 1}
    )
    event = await hookline.send_event(app_id, "batch.completed", {"x": 1})
    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "succeeded")

    history = await hookline.temporal.get_workflow_handle(view["workflow_id"]).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    key = base64.b64decode(endpoint["secret"].removeprefix("whsec_"))
    assert endpoint["secret"].encode() not in raw
    assert endpoint["secret"].removeprefix("whsec_").encode() not in raw
    assert key not in raw
    assert b'{\\"x\\":1}' in raw  # the body is in the history: the search above can find things


async def test_list_filters_and_paginates_newest_first(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    first = await hookline.create_endpoint(app_id, receiver.url_for("/a"))
    second = await hookline.create_endpoint(app_id, receiver.url_for("/b"), event_types=["job.*"])
    sent = [
        await hookline.send_event(app_id, event_type, {"i": i})
        for i, event_type in enumerate(["batch.completed", "job.failed", "job.failed"])
    ]
    delivery_ids = [d["id"] for event in sent for d in event["deliveries"]]
    for delivery_id in delivery_ids:
        await hookline.wait_status(app_id, delivery_id, "succeeded")
    base = f"/v1/apps/{app_id}/deliveries"

    everything = await wait_for(
        lambda: _listed(hookline, f"{base}?status=succeeded", 5), what="all five listed"
    )
    assert sorted(d["id"] for d in everything) == sorted(delivery_ids)
    jobs = await hookline.ok("GET", f"{base}?event_type=job.failed")
    assert len(jobs["data"]) == 4 and {d["event_type"] for d in jobs["data"]} == {"job.failed"}
    only_second = await hookline.ok("GET", f"{base}?endpoint_id={second['id']}")
    assert {d["endpoint_id"] for d in only_second["data"]} == {second["id"]}
    assert len(only_second["data"]) == 2
    assert (await hookline.ok("GET", f"{base}?status=failed"))["data"] == []

    pages: list[str] = []
    cursor = ""
    for _ in range(10):
        page = await hookline.ok("GET", f"{base}?endpoint_id={first['id']}&limit=1{cursor}")
        pages += [d["id"] for d in page["data"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert len(pages) == 3
    assert set(pages) == {
        d["id"] for event in sent for d in event["deliveries"] if d["endpoint_id"] == first["id"]
    }
    # Temporal's SQL visibility orders running deliveries first, then by time finished.
    finished = [d["finished_at"] for d in await _listed(hookline, base, 5) or []]
    assert len(finished) == 5 and finished == sorted(finished, reverse=True)


async def _ids(hookline: Hookline, query: str) -> list[str]:
    return [w.id async for w in hookline.temporal.list_workflows(query)]


async def _listed(hookline: Hookline, path: str, expected: int) -> list[dict[str, str]] | None:
    data = (await hookline.ok("GET", path))["data"]
    return data if len(data) == expected else None


async def test_delivery_terminated_by_an_operator_lists_as_failed(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.default = (500, {})
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id,
        receiver.url,
        retry={"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200},
    )
    event = await hookline.send_event(app_id, "job.failed", {})
    view = await hookline.wait_status(app_id, event["deliveries"][0]["id"], "retrying")

    await hookline.temporal.get_workflow_handle(view["workflow_id"]).terminate("operator")

    listed = await wait_for(
        lambda: _listed(hookline, f"/v1/apps/{app_id}/deliveries?status=failed", 1),
        what="the terminated delivery under status=failed",
    )
    assert listed[0]["id"] == view["id"] and listed[0]["status"] == "failed"

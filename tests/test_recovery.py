"""Bulk recovery: an endpoint's failed deliveries retried from a window, paced and cancellable."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from hookline.activities.recovery import FailedDelivery, RecoveryActivities, RetryBatch
from hookline.config.settings import Settings
from hookline.contracts import search_attributes as sa
from hookline.contracts.recovery import RecoveryInput, RecoveryProgress, recovery_workflow_id
from hookline.workflows.recovery import RecoveryWorkflow
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for

# Two attempts a second apart, then the delivery fails. (A backoff window cannot be this short:
# the delivery's window is at least one attempt's start-to-close timeout, over 15 s.)
TWO_ATTEMPTS = {"schedule_s": [0, 1]}
UNKNOWN_RECOVERY = "rcv_" + "a" * 26


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def _ahead(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def _failed_deliveries(
    hookline: Hookline, receiver: Receiver, app_id: str, count: int
) -> tuple[str, list[str]]:
    """An endpoint whose receiver answers 500, with ``count`` deliveries failed and listed.

    Returns:
        The endpoint id and the event ids.
    """
    receiver.default = (500, {})
    created = await hookline.create_endpoint(app_id, receiver.url, retry=TWO_ATTEMPTS)
    events = [
        await hookline.send_event(app_id, "batch.completed", {"n": n}, id=f"evt_{n}")
        for n in range(count)
    ]
    for event in events:
        await hookline.wait_status(app_id, event["deliveries"][0]["id"], "failed")

    async def all_listed() -> bool:
        listed = await hookline.ok(
            "GET", f"/v1/apps/{app_id}/deliveries?status=failed&endpoint_id={created['id']}"
        )
        return len(listed["data"]) == count

    # Recovery reads Temporal's visibility store, which lags describe() a little.
    await wait_for(all_listed, what="visibility to list the failed deliveries")
    return created["id"], [f"evt_{n}" for n in range(count)]


async def _recover(hookline: Hookline, app_id: str, endpoint_id: str, **window: str) -> Any:
    status, body = await hookline.call(
        "POST", f"/v1/apps/{app_id}/endpoints/{endpoint_id}/recover", window
    )
    assert status == 202, body
    return body


async def _wait_recovery(hookline: Hookline, app_id: str, recovery_id: str, status: str) -> Any:
    async def probe() -> Any:
        view = await hookline.ok("GET", f"/v1/apps/{app_id}/recoveries/{recovery_id}")
        return view if view["status"] == status else None

    return await wait_for(probe, timeout=60, what=f"recovery {status}")


async def test_recovery_retries_every_failed_delivery_in_the_window(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint_id, event_ids = await _failed_deliveries(hookline, receiver, app_id, 3)
    failed_requests = len(receiver.requests)
    receiver.default = (200, {})

    since = _ago(minutes=1)
    started = await _recover(hookline, app_id, endpoint_id, since=since)
    assert started["status"] == "running"
    assert started["endpoint_id"] == endpoint_id
    assert datetime.fromisoformat(started["since"]) == datetime.fromisoformat(since)
    assert started["finished_at"] is None

    done = await _wait_recovery(hookline, app_id, started["id"], "completed")
    assert (done["found"], done["retried"], done["skipped"], done["errors"]) == (3, 3, 0, 0)
    assert done["created_at"] == started["created_at"]
    assert done["until"] == started["until"]
    assert done["finished_at"] is not None
    listed = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries?endpoint_id={endpoint_id}")
    assert len(listed["data"]) == 3
    for delivery in listed["data"]:
        await hookline.wait_status(app_id, delivery["id"], "succeeded")
    again = [r.headers["webhook-id"] for r in receiver.requests[failed_requests:]]
    assert sorted(again) == event_ids

    handle = hookline.temporal.get_workflow_handle(recovery_workflow_id(app_id, started["id"]))
    description = await handle.describe()
    summary = await description.static_summary()
    assert summary is not None and summary.startswith(f"recover failed deliveries of {endpoint_id}")
    attributes = description.typed_search_attributes
    assert attributes.get(sa.APP_ID) == app_id and attributes.get(sa.ENDPOINT_ID) == endpoint_id
    progress = await handle.query(RecoveryWorkflow.progress)
    assert (progress.found, progress.retried) == (3, 3)

    status, body = await hookline.call(
        "POST", f"/v1/apps/{app_id}/recoveries/{started['id']}/cancel"
    )
    assert status == 409 and body["error"]["code"] == "already_finished", body


async def test_recovery_window_that_excludes_the_failures_finds_none(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint_id, _ = await _failed_deliveries(hookline, receiver, app_id, 1)
    receiver.default = (200, {})
    requests_before = len(receiver.requests)

    started = await _recover(
        hookline, app_id, endpoint_id, since=_ahead(hours=1), until=_ahead(hours=2)
    )
    done = await _wait_recovery(hookline, app_id, started["id"], "completed")

    assert (done["found"], done["retried"]) == (0, 0)
    assert len(receiver.requests) == requests_before
    listed = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries?status=failed")
    assert len(listed["data"]) == 1


async def test_recovery_skips_a_delivery_already_retried_by_hand(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint_id, _ = await _failed_deliveries(hookline, receiver, app_id, 2)
    receiver.default = (200, {})
    listed = await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries?status=failed")
    by_hand = listed["data"][0]["id"]
    await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{by_hand}/retry")
    await hookline.wait_status(app_id, by_hand, "succeeded")
    requests_before = len(receiver.requests)

    started = await _recover(hookline, app_id, endpoint_id, since=_ago(minutes=1))
    done = await _wait_recovery(hookline, app_id, started["id"], "completed")

    # The hand-retried delivery's failed run is still in visibility, but a newer run replaced it.
    assert (done["found"], done["retried"]) == (1, 1)
    for delivery in (await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries"))["data"]:
        await hookline.wait_status(app_id, delivery["id"], "succeeded")
    assert len(receiver.requests) == requests_before + 1


async def test_a_held_delivery_retried_since_it_was_listed_is_skipped(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    await _failed_deliveries(hookline, receiver, app_id, 1)
    [listed] = (await hookline.ok("GET", f"/v1/apps/{app_id}/deliveries?status=failed"))["data"]
    held = await hookline.temporal.get_workflow_handle(listed["workflow_id"]).describe()
    assert held.status == WorkflowExecutionStatus.RUNNING  # failed, held open for a retry
    # Retried by hand: its first attempt fails, the next (an activity, a second later) is slow
    # to answer, so the same run is busy again.
    receiver.respond(500)
    receiver.default, receiver.delays = (200, {}), [0.0, 3.0]
    requests_before = len(receiver.requests)
    await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{listed['id']}/retry")
    await wait_for(
        lambda: len(receiver.requests) == requests_before + 2,
        what="the retry's second attempt to start",
    )

    # A recovery that listed it before that retry (or retries its own batch) must not cut
    # the attempt under way short, which would POST again.
    activities = RecoveryActivities(hookline.temporal, hookline.settings)
    batch = RetryBatch(deliveries=[FailedDelivery(workflow_id=held.id, run_id=held.run_id)])
    outcome = await activities.retry_deliveries(batch)

    assert outcome.retried + outcome.skipped == 1 and outcome.errors == 0
    done = await hookline.wait_status(app_id, listed["id"], "succeeded")
    assert len(receiver.requests) == requests_before + 2  # the retry's two attempts, no other
    assert done["attempts"] == listed["attempts"] + 2


async def test_recovery_continues_as_new_and_keeps_its_counters(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint_id, _ = await _failed_deliveries(hookline, receiver, app_id, 3)
    receiver.default = (200, {})
    now = datetime.now(UTC)
    progress = RecoveryProgress(
        endpoint_id=endpoint_id, since=now - timedelta(minutes=1), until=now, created_at=now
    )
    recovery_id = "rcv_" + "b" * 26
    workflow_id = recovery_workflow_id(app_id, recovery_id)

    # One delivery per page and one page per run: every page is a new run.
    result = await hookline.temporal.execute_workflow(
        RecoveryWorkflow.run,
        RecoveryInput(
            recovery_id=recovery_id,
            app_id=app_id,
            rate_per_s=1000,
            progress=progress,
            page_size=1,
            pages_per_run=1,
        ),
        id=workflow_id,
        task_queue=hookline.settings.task_queue,
    )

    assert (result.found, result.retried, result.errors) == (3, 3, 0)

    async def continued_runs() -> int:
        query = f'WorkflowId = "{workflow_id}" AND ExecutionStatus = "ContinuedAsNew"'
        return (await hookline.temporal.count_workflows(query)).count

    assert await wait_for(continued_runs, what="the continued runs in visibility") >= 2
    view = await hookline.ok("GET", f"/v1/apps/{app_id}/recoveries/{recovery_id}")
    assert (view["status"], view["found"], view["retried"]) == ("completed", 3, 3)
    assert datetime.fromisoformat(view["created_at"]) == now


@asynccontextmanager
async def _paced_hookline(
    settings: Settings, temporal_client: Client, rate_per_s: float
) -> AsyncIterator[Hookline]:
    """A Hookline whose recoveries retry ``rate_per_s`` deliveries a second (and whose
    endpoints' circuit breaker, which would space out the attempts, is off)."""
    paced = settings.model_copy(
        update={"recovery_rate_per_s": rate_per_s, "endpoint_breaker_failures": 0}
    )
    async with Hookline.running(paced, temporal_client, API_KEY) as running:
        yield running


async def test_recovery_keeps_to_its_rate(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    async with _paced_hookline(settings, temporal_client, 1) as hookline:
        app_id = await hookline.create_app()
        endpoint_id, _ = await _failed_deliveries(hookline, receiver, app_id, 3)
        failed_requests = len(receiver.requests)
        receiver.default = (200, {})
        started = await _recover(hookline, app_id, endpoint_id, since=_ago(minutes=1))
        done = await _wait_recovery(hookline, app_id, started["id"], "completed")

    assert (done["found"], done["retried"]) == (3, 3)
    # One a second: a batch of one, then a one-second sleep.
    at = [r.at for r in receiver.requests[failed_requests:]]
    assert len(at) == 3
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(at)), at


async def test_cancel_stops_a_paced_recovery(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    async with _paced_hookline(settings, temporal_client, 0.5) as hookline:
        app_id = await hookline.create_app()
        endpoint_id, _ = await _failed_deliveries(hookline, receiver, app_id, 6)
        receiver.default = (200, {})
        started = await _recover(hookline, app_id, endpoint_id, since=_ago(minutes=1))
        base = f"/v1/apps/{app_id}/recoveries/{started['id']}"
        await _wait_retried(hookline, app_id, started["id"], 1)

        status, body = await hookline.call("POST", f"{base}/cancel")
        assert status == 202, body
        cancelled = await _wait_recovery(hookline, app_id, started["id"], "cancelled")

        assert cancelled["found"] == 6
        assert 1 <= cancelled["retried"] < 6
        assert cancelled["finished_at"] is not None
        description = await hookline.temporal.get_workflow_handle(
            recovery_workflow_id(app_id, started["id"])
        ).describe()
        assert description.status == WorkflowExecutionStatus.CANCELED
        status, body = await hookline.call("POST", f"{base}/cancel")
        assert status == 409 and body["error"]["code"] == "already_finished", body


async def test_recovery_survives_a_worker_restart(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    async with _paced_hookline(settings, temporal_client, 0.5) as hookline:
        app_id = await hookline.create_app()
        endpoint_id, event_ids = await _failed_deliveries(hookline, receiver, app_id, 3)
        failed_requests = len(receiver.requests)
        receiver.default = (200, {})
        started = await _recover(hookline, app_id, endpoint_id, since=_ago(minutes=1))
        await _wait_retried(hookline, app_id, started["id"], 1)

        await hookline.stop_worker()
        # With no worker, the API still answers from the memo the workflow keeps up to date.
        paused = await hookline.ok("GET", f"/v1/apps/{app_id}/recoveries/{started['id']}")
        assert paused["status"] == "running" and paused["retried"] >= 1, paused
        await hookline.start_worker()
        done = await _wait_recovery(hookline, app_id, started["id"], "completed")

    assert (done["found"], done["retried"] + done["skipped"], done["errors"]) == (3, 3, 0)
    again = [r.headers["webhook-id"] for r in receiver.requests[failed_requests:]]
    assert sorted(again) == event_ids


async def _wait_retried(hookline: Hookline, app_id: str, recovery_id: str, count: int) -> None:
    async def retried() -> bool:
        view = await hookline.ok("GET", f"/v1/apps/{app_id}/recoveries/{recovery_id}")
        return bool(view["retried"] >= count)

    await wait_for(retried, what=f"{count} retries")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "validation_error"),
        ({"since": "yesterday"}, "validation_error"),
        ({"since": "2026-01-01T00:00:00"}, "validation_error"),
        ({"since": 1767225600}, "validation_error"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "validation_error"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "validation_error"),
        ({"since": "2026-01-01T00:00:00Z", "limit": 5}, "validation_error"),
        (None, "validation_error"),
    ],
)
async def test_recover_refuses_bad_windows(
    hookline: Hookline, receiver: Receiver, body: Any, code: str
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)

    status, answer = await hookline.call(
        "POST", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/recover", body
    )

    assert status == 422, answer
    assert answer["error"]["code"] == code


async def test_recover_refuses_a_body_that_is_not_json(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)

    status, answer = await hookline.call(
        "POST", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/recover", data=b"{since"
    )

    assert status == 422 and answer["error"]["code"] == "invalid_json", answer


async def test_unknown_apps_endpoints_and_recoveries_are_not_found(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    other_app = await hookline.create_app("Other")
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    window = {"since": _ago(minutes=1)}
    started = await _recover(hookline, app_id, endpoint["id"], **window)

    for method, path, body in [
        ("POST", f"/v1/apps/app_nope/endpoints/{endpoint['id']}/recover", window),
        ("POST", f"/v1/apps/{app_id}/endpoints/ep_nope/recover", window),
        ("POST", f"/v1/apps/{other_app}/endpoints/{endpoint['id']}/recover", window),
        ("GET", f"/v1/apps/{app_id}/recoveries/{UNKNOWN_RECOVERY}", None),
        ("GET", f"/v1/apps/{app_id}/recoveries/not-an-id", None),
        ("GET", f"/v1/apps/{other_app}/recoveries/{started['id']}", None),
        ("GET", f"/v1/apps/app_nope/recoveries/{started['id']}", None),
        ("POST", f"/v1/apps/{app_id}/recoveries/{UNKNOWN_RECOVERY}/cancel", None),
    ]:
        status, answer = await hookline.call(method, path, body)
        assert status == 404, (path, answer)
        assert answer["error"]["code"] == "not_found", (path, answer)


async def test_recover_refuses_a_disabled_endpoint(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    await hookline.ok("PATCH", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", {"disabled": True})

    status, answer = await hookline.call(
        "POST", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/recover", {"since": _ago(hours=1)}
    )

    assert status == 409 and answer["error"]["code"] == "endpoint_disabled", answer

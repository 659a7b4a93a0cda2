"""Delivery workflow histories replay, inside the workflow sandbox, on the current code.

``DeliveryWorkflow`` and ``LaneWorkflow`` run unsandboxed in workers (for speed): this replay
is what holds them to determinism. It records real runs through each path (first attempt
succeeds; fails then succeeds; a manual retry cuts a backoff short; 410 Gone fails it; an
explicit schedule runs out; a failed delivery held open is retried by hand; one through its
endpoint's paused, then resumed, lane, with the lane's own run) and replays them with the
sandbox on, which fails on non-deterministic code and on calls the sandbox forbids (I/O,
clocks, randomness outside ``workflow.*``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import cast

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from hookline.contracts.lanes import lane_workflow_id
from hookline.workflows.attempt_log_purge import PurgeAttemptLogWorkflow
from hookline.workflows.delivery import (
    BUNDLED,
    LANE_ASKS_FIRST,
    PATCHES_OF_2026_12,
    DeliveryWorkflow,
)
from hookline.workflows.fan_out import FanOutWorkflow
from hookline.workflows.lane import LaneWorkflow
from hookline.workflows.recovery import RecoveryWorkflow
from tests.harness import Hookline, Receiver

HISTORIES = Path(__file__).parent / "histories"
RECORDED = {
    "f8a8777": 3,
    "ffd58a7": 10,
    "5810cfe": 6,
    "0c799ee": 9,
    "7035449": 10,
    "0444a79": 5,
    "7a5172f": 10,
    "65e790b": 6,
    "d6a2c2b": 11,
    "080c93d": 6,
}
"""Releases whose histories are kept, and how many of each: f8a8777 made every attempt an
activity; ffd58a7 (the release before the one-import-root layout and the names moved to
hookline.contracts) has every delivery path, a fan-out, a recovery that continued as new and
its last run, and the attempt-log purge; 5810cfe has every delivery path again; 0c799ee (the
release before failed deliveries were held open and endpoints got lanes) has every delivery
path, a failed delivery restarted by hand as a new run, one still backing off, a fan-out and a
bulk recovery; 7035449 (the first release with lanes) has lanes that each ran until they ended
idle: one rate-limited at 5/s granting bursts of permits in one task to 12 deliveries, one whose
circuit breaker opened on 503s and closed again, one paused with 3 deliveries waiting then
resumed, the lane of a delivery cancelled while backing off, and three laned deliveries (one
granted in a later burst, one that waited while the circuit was open, the cancelled one), a
delivery that failed twice on the usual path before its endpoint got a lane, one that waited
for a permit past its window, and their lane (still running); 0444a79 (the release before a
laned delivery's last outcome and its end went in one signal, patch ``lane-last-outcome``)
has laned deliveries that succeeded under a rate's planned start, failed then succeeded, ran
out of their schedule, and went through a fifo queue, and their lane (still running);
7a5172f (the release before attempts under a permit were local activities, full lanes told
deliveries so, and kept asks were asked again after 30 minutes, not 5) has a delivery under a
rate's planned start and its lane, one that failed once under a permit then succeeded, one
paused then resumed and one its full paused lane did not keep (still waiting) with their lane,
one cancelled mid-attempt with its lane, and one that got a ``lane_full`` signal it had no
handler for (as from a newer lane during an upgrade), then was resumed and delivered; and a
lane whose rate went off and straight back on while permits planned ahead were out; 65e790b
(the release before a delivery accepted with a lane asked it first, lanes ran outside the
sandbox and a delivery whose permit expired asked for its next one further ahead) has a
delivery to an endpoint with a lane that succeeded, one accepted behind an open circuit
(still waiting), and their two lanes (still running); and a delivery whose permit expired
while it waited for its worker's one slot for the endpoint, then went out under the next,
and its lane; d6a2c2b (the release before a run recorded one marker for every earlier patch,
``patches-of-2026-12``) has every delivery path again (at once, failed then succeeded, 410
Gone, schedule run out, retried by hand while backing off and once failed, one still backing
off), a laned delivery paused, resumed and failed once, a fifo one failed once, one waiting
in its paused lane, and that lane (still running); 080c93d (the release before a permitted
attempt held back by a pause sent nothing, patch ``lane-holds-on-pause``) has the delivery
whose failed attempt tripped its endpoint's breaker, waiting in the lane (still running) and
then delivered by the lane's probe, one backing off as the breaker tripped (still running),
and their lane (still running); and, to a rate-limited endpoint paused while permits were
out, a delivery whose permit granted before the pause went out after it, and one waiting in
the paused lane (still running)."""
LONG_BACKOFF = {"initial_interval_s": 3600, "max_interval_s": 3600, "window_s": 7200}


async def replay_failures(histories: list[WorkflowHistory]) -> dict[str, str]:
    """Replay ``histories`` on this code, ``DeliveryWorkflow`` and ``LaneWorkflow`` in the
    sandbox (although they are defined unsandboxed); the failures by run id."""
    replayer = Replayer(
        workflows=[
            DeliveryWorkflow,
            FanOutWorkflow,
            LaneWorkflow,
            RecoveryWorkflow,
            PurgeAttemptLogWorkflow,
        ],
        data_converter=pydantic_data_converter,  # as hookline.temporal_client connects
        unsandboxed_workflow_runner=SandboxedWorkflowRunner(),
    )

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    return {run_id: str(error) for run_id, error in results.replay_failures.items()}


async def delivery_history(hookline: Hookline, app_id: str, delivery_id: str) -> WorkflowHistory:
    """The history of a delivery's current run, as a replay takes it."""
    view = await hookline.delivery(app_id, delivery_id)
    return await hookline.temporal.get_workflow_handle(view["workflow_id"]).fetch_history()


async def test_every_delivery_path_replays_in_the_sandbox(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    endpoint_path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"

    async def delivery(answers: list[int], retry: Mapping[str, object] | None = None) -> str:
        """A delivery to the endpoint, whose receiver first answers ``answers``."""
        # Enabled again after 410 Gone disabled it; this path's retry schedule.
        await hookline.ok("PATCH", endpoint_path, {"retry": retry, "disabled": False})
        receiver.respond(*answers)
        event = await hookline.send_event(app_id, "replay.path", {"answers": answers})
        return cast(str, event["deliveries"][0]["id"])

    paths: dict[str, str] = {}
    paths["at_once"] = await delivery([])
    await hookline.wait_status(app_id, paths["at_once"], "succeeded")
    paths["fails_then_succeeds"] = await delivery([503])
    await hookline.wait_status(app_id, paths["fails_then_succeeds"], "succeeded")
    paths["gone"] = await delivery([410])
    await hookline.wait_status(app_id, paths["gone"], "failed")
    paths["schedule_runs_out"] = await delivery([500, 500], {"schedule_s": [0, 1]})
    await hookline.wait_status(app_id, paths["schedule_runs_out"], "failed")
    paths["by_hand"] = await delivery([500], LONG_BACKOFF)
    await hookline.wait_status(app_id, paths["by_hand"], "retrying")
    await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{paths['by_hand']}/retry")
    await hookline.wait_status(app_id, paths["by_hand"], "succeeded")
    # Through the endpoint's lane (an in-flight limit puts it there): paused, then resumed,
    # failing once on the delivery's own schedule.
    await hookline.ok("PATCH", endpoint_path, {"max_in_flight": 1})
    await hookline.ok("POST", f"{endpoint_path}/pause")
    paths["laned"] = await delivery([503], {"schedule_s": [0, 1]})
    await hookline.wait_status(app_id, paths["laned"], "paused")
    await hookline.ok("POST", f"{endpoint_path}/resume")
    await hookline.wait_status(app_id, paths["laned"], "succeeded")
    # Queued in a fifo lane when accepted, failing once.
    await hookline.ok("PATCH", endpoint_path, {"max_in_flight": None, "ordering": "fifo"})
    paths["fifo"] = await delivery([503], {"schedule_s": [0, 1]})
    await hookline.wait_status(app_id, paths["fifo"], "succeeded")
    await hookline.ok("PATCH", endpoint_path, {"ordering": "none"})
    paths["failed_then_by_hand"] = await delivery([500], {"schedule_s": [0]})
    await hookline.wait_status(app_id, paths["failed_then_by_hand"], "failed")
    await hookline.ok("POST", f"/v1/apps/{app_id}/deliveries/{paths['failed_then_by_hand']}/retry")
    await hookline.wait_status(app_id, paths["failed_then_by_hand"], "succeeded")
    histories = [await delivery_history(hookline, app_id, d) for d in paths.values()]
    lane = lane_workflow_id(app_id, endpoint["id"])
    histories.append(await hookline.temporal.get_workflow_handle(lane).fetch_history())

    failed = await replay_failures(histories)

    names = [*paths, "lane"]
    run_ids = {history.run_id: path for path, history in zip(names, histories, strict=True)}
    failures = {run_ids[run_id]: error for run_id, error in failed.items()}
    assert len(run_ids) == len(names) == 9
    assert failures == {}


@pytest.mark.parametrize("release", sorted(RECORDED))
async def test_runs_of_earlier_releases_replay_on_this_code(release: str) -> None:
    """Histories recorded with earlier releases, one of each still backing off: what a worker
    replays when it is upgraded under running deliveries. ``workflow.patched`` keeps them on
    the path they took."""
    histories = [
        WorkflowHistory.from_json(path.stem, path.read_text())
        for path in sorted((HISTORIES / release).glob("*.json"))
    ]
    failed = await replay_failures(histories)

    assert len(histories) == RECORDED[release]
    assert failed == {}


async def test_a_laned_delivery_begun_by_a_worker_from_before_replays_on_this_code(
    hookline: Hookline, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API of this release marks a delivery ``laned``; a worker from before ignores the
    field and makes a first attempt, which finds the lane. A worker of this release that
    replays the run must take the same path: ``lane-asks-first`` is what keeps it there."""
    real = workflow.patched

    def patched(patch_id: str, asks_first: bool) -> bool:
        if patch_id == PATCHES_OF_2026_12 and not asks_first:
            return False  # a worker from before knows no bundle either
        return asks_first if patch_id == LANE_ASKS_FIRST else real(patch_id)

    monkeypatch.setattr(workflow, "patched", lambda patch_id: patched(patch_id, False))
    app_id = await hookline.create_app()
    await hookline.create_endpoint(app_id, receiver.url, max_in_flight=1)
    event = await hookline.send_event(app_id, "replay.path", {"n": 1})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")
    history = await delivery_history(hookline, app_id, delivery_id)
    marked_laned = history.events[0].workflow_execution_started_event_attributes.input
    assert b'"laned":true' in marked_laned.payloads[0].data
    monkeypatch.undo()
    replayed = await replay_failures([history])

    # Replayed as if the patch were not there, it fails: the run made a first attempt.
    monkeypatch.setattr(workflow, "patched", lambda patch_id: patched(patch_id, True))
    without_the_patch = await replay_failures([history])
    assert replayed == {}
    assert list(without_the_patch) == [history.run_id]


def _patch_ids(history: WorkflowHistory) -> list[str]:
    """The patches the run recorded, in order."""
    ids = []
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and marker.marker_name == (
            "core_patch"
        ):
            ids.append(json.loads(marker.details["patch-data"].payloads[0].data)["id"])
    return ids


def _change_version_upserts(history: WorkflowHistory) -> int:
    """Upserts of ``TemporalChangeVersion``: the SDK makes one for each patch a run records."""
    return sum(
        1
        for event in history.events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
        and "TemporalChangeVersion"
        in event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    )


async def test_a_new_run_records_one_patch_for_all_those_it_meets(
    hookline: Hookline, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A laned delivery that fails once meets most of the delivery workflow's patches; a run
    of this release records the one bundle marker for them, not a marker and a visibility
    write each, and a replay needs that marker to take the same path."""
    app_id = await hookline.create_app()
    await hookline.create_endpoint(
        app_id, receiver.url, max_in_flight=1, retry={"schedule_s": [0, 1]}
    )
    receiver.respond(503)
    event = await hookline.send_event(app_id, "replay.bundle", {"n": 1})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "succeeded")
    history = await delivery_history(hookline, app_id, delivery_id)
    assert len(receiver.requests) == 2

    assert _patch_ids(history) == [PATCHES_OF_2026_12]
    assert _change_version_upserts(history) == 1
    assert await replay_failures([history]) == {}
    # A worker that did not take the marker as the bundle would meet each patch unrecorded
    # and take the paths of runs from before: the replay fails.
    real = workflow.patched
    monkeypatch.setattr(
        workflow, "patched", lambda patch_id: patch_id != PATCHES_OF_2026_12 and real(patch_id)
    )
    assert list(await replay_failures([history])) == [history.run_id]


async def test_runs_from_before_the_bundle_need_their_own_patch_markers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs of the release before meet each patch on its own: a worker that took them as
    bundled would not replay them (so the bundle is read from the history, not assumed)."""
    histories = [
        WorkflowHistory.from_json(path.stem, path.read_text())
        for path in sorted((HISTORIES / "d6a2c2b").glob("*laned*.json"))
    ]
    assert len(histories) == 2
    real = workflow.patched
    monkeypatch.setattr(
        workflow, "patched", lambda patch_id: patch_id == PATCHES_OF_2026_12 or real(patch_id)
    )
    assert sorted(await replay_failures(histories)) == sorted(h.run_id for h in histories)


def test_the_bundle_stands_for_the_patches_of_its_day_and_no_others() -> None:
    """A run that recorded the bundle ran every patch it stands for and no later one: a patch
    added to it afterwards would replay such runs on a path they never took. A new patch is
    called on its own (or a new bundle takes it)."""
    assert sorted(BUNDLED) == [
        "cancel-not-absorbed",
        "hold-failed",
        "lane-asks-first",
        "lane-asks-kept",
        "lane-ended-on-cancel",
        "lane-keeps-schedule",
        "lane-last-outcome",
        "lane-local-attempt",
        "lane-window-closes",
        "lanes",
        "local-first-attempt",
    ]

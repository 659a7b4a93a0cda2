"""Temporal Schedules that Hookline's worker keeps in place."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
)

from hookline.config.settings import Settings
from hookline.workflows.attempt_log_purge import PurgeAttemptLogWorkflow

PURGE_EVERY = timedelta(days=1)


def purge_schedule_id(settings: Settings) -> str:
    """The id of the attempt-log purge schedule of ``settings``' task queue."""
    return f"hookline-purge-attempts:{settings.task_queue}"


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """Create Hookline's schedules unless they exist (every worker calls this on start)."""
    schedule_id = purge_schedule_id(settings)
    try:
        await client.create_schedule(
            schedule_id,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    PurgeAttemptLogWorkflow.run,
                    id=schedule_id,
                    task_queue=settings.task_queue,
                    static_summary="purge attempt-log rows past their retention",
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=PURGE_EVERY)]),
            ),
        )
    except ScheduleAlreadyRunningError:
        pass

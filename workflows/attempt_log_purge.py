"""PurgeAttemptLogWorkflow: drops attempt-log rows past their retention, once a day."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities


@workflow.defn
class PurgeAttemptLogWorkflow:
    """Run by the ``hookline-purge-attempts`` schedule; the retention is the worker's setting."""

    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity_method(
            MaintenanceActivities.purge_attempt_log,
            start_to_close_timeout=timedelta(minutes=10),
        )

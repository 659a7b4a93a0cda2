"""PurgeAttemptLogWorkflow: drops attempt-log rows past their retention, once a day."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from hookline.activities.maintenance import MaintenanceActivities
    from hookline.contracts.names import PURGE_ATTEMPT_LOG_WORKFLOW


@workflow.defn(name=PURGE_ATTEMPT_LOG_WORKFLOW)
class PurgeAttemptLogWorkflow:
    """Run daily by the ``hookline-purge-attempts`` schedule: drops previous secrets past their
    grace period, then attempt-log rows past the retention (the worker's setting)."""

    @workflow.run
    async def run(self) -> int:
        await workflow.execute_activity_method(
            MaintenanceActivities.drop_expired_secrets,
            start_to_close_timeout=timedelta(minutes=10),
        )
        return await workflow.execute_activity_method(
            MaintenanceActivities.purge_attempt_log,
            start_to_close_timeout=timedelta(minutes=10),
        )

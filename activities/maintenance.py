"""Housekeeping activities: the attempt log within its retention, rotated-out secrets dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import activity

from hookline.storage.registry import Registry


class MaintenanceActivities:
    """Housekeeping over the registry, with the retention the worker was configured with."""

    def __init__(self, registry: Registry, attempt_log_retention: timedelta) -> None:
        self._registry = registry
        self._retention = attempt_log_retention

    @activity.defn(name="purge_attempt_log")
    async def purge_attempt_log(self) -> int:
        """Delete attempt-log rows older than the retention; how many went."""
        purged = await self._registry.attempts.purge_before(datetime.now(UTC) - self._retention)
        activity.logger.info("purged %d attempt-log rows", purged)
        return purged

    @activity.defn(name="drop_expired_secrets")
    async def drop_expired_secrets(self) -> int:
        """Forget previous signing secrets whose rotation grace period is over."""
        dropped = await self._registry.drop_expired_secrets(datetime.now(UTC))
        activity.logger.info("dropped %d expired previous secrets", dropped)
        return dropped

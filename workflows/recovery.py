"""RecoveryWorkflow: retry an endpoint's failed deliveries from a time window, at a set pace."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from hookline.activities.recovery import (
        FailedDelivery,
        FailedPage,
        FailedPageRequest,
        RecoveryActivities,
        RetryBatch,
        RetryOutcome,
    )
    from hookline.contracts.names import (
        PROGRESS_MEMO,
        RECOVERY_PROGRESS_QUERY,
        RECOVERY_WORKFLOW,
    )
    from hookline.contracts.recovery import MAX_PAGE_SIZE, RecoveryInput, RecoveryProgress

ACTIVITY_TIMEOUT = timedelta(minutes=2)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
MIN_PAGE_SIZE = 100
# The activities do not heartbeat, so a cancel waits for the one in flight to finish and its
# counts are kept before the workflow ends (see ``_record``).
WAIT_CANCELLATION_COMPLETED = workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


@workflow.defn(name=RECOVERY_WORKFLOW)
class RecoveryWorkflow:
    """Lists the endpoint's failed deliveries page by page and retries them in batches, sleeping
    between batches to keep to the rate. Cancelling it stops it after the batch in flight."""

    @workflow.init
    def __init__(self, recovery: RecoveryInput) -> None:
        self._progress = recovery.progress

    @workflow.query(name=RECOVERY_PROGRESS_QUERY)
    def progress(self) -> RecoveryProgress:
        """The request and the counters so far."""
        return self._progress

    @workflow.run
    async def run(self, recovery: RecoveryInput) -> RecoveryProgress:
        """Retry the window's failed deliveries, continuing as new every few pages.

        Returns:
            The final counters.
        """
        token = recovery.page_token
        rate = recovery.rate_per_s
        page_size = recovery.page_size or min(MAX_PAGE_SIZE, max(MIN_PAGE_SIZE, math.ceil(rate)))
        # A second's worth per batch: the server rounds timers up to whole seconds, so sleeping
        # a fraction of a second after smaller batches would fall well short of the rate.
        batch_size = max(1, min(page_size, int(rate)))
        for _ in range(recovery.pages_per_run):
            page = await self._find(recovery, page_size, token)
            token = page.next_page_token
            self._record(found=len(page.deliveries))
            for batch, last in _batches(page.deliveries, batch_size):
                outcome = await self._retry(batch)
                self._record(
                    retried=outcome.retried, skipped=outcome.skipped, errors=outcome.errors
                )
                if token is not None or not last:
                    await workflow.sleep(len(batch) / rate)
            if token is None:
                return self._progress
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            recovery.model_copy(update={"progress": self._progress, "page_token": token}),
            memo={PROGRESS_MEMO: self._progress.model_dump(mode="json")},
        )

    async def _find(self, recovery: RecoveryInput, page_size: int, token: str | None) -> FailedPage:
        progress = recovery.progress
        return await workflow.execute_activity_method(
            RecoveryActivities.find_failed_deliveries,
            FailedPageRequest(
                app_id=recovery.app_id,
                endpoint_id=progress.endpoint_id,
                since=progress.since,
                until=progress.until,
                page_size=page_size,
                page_token=token,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            cancellation_type=WAIT_CANCELLATION_COMPLETED,
            summary=f"list failed deliveries of {progress.endpoint_id}",
        )

    async def _retry(self, batch: list[FailedDelivery]) -> RetryOutcome:
        return await workflow.execute_activity_method(
            RecoveryActivities.retry_deliveries,
            RetryBatch(deliveries=batch),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            cancellation_type=WAIT_CANCELLATION_COMPLETED,
            summary=f"retry {len(batch)} deliveries",
        )

    def _record(
        self, *, found: int = 0, retried: int = 0, skipped: int = 0, errors: int = 0
    ) -> None:
        """Add to the counters, publish them in the memo, and stop here if cancelled while an
        activity ran (a cancel during a sleep raises from the sleep itself)."""
        progress = self._progress
        self._progress = progress.model_copy(
            update={
                "found": progress.found + found,
                "retried": progress.retried + retried,
                "skipped": progress.skipped + skipped,
                "errors": progress.errors + errors,
            }
        )
        workflow.upsert_memo({PROGRESS_MEMO: self._progress.model_dump(mode="json")})
        if workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError("recovery cancelled")


def _batches(
    deliveries: list[FailedDelivery], size: int
) -> Iterator[tuple[list[FailedDelivery], bool]]:
    """The page in batches of ``size``, each with whether it is the page's last."""
    for start in range(0, len(deliveries), size):
        yield deliveries[start : start + size], start + size >= len(deliveries)

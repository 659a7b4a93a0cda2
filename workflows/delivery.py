"""DeliveryWorkflow: one event to one endpoint, retried by Temporal, retriable by hand."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.retry_settings import RetrySettings
from workflows.search_attributes import STATUS

with workflow.unsafe.imports_passed_through():
    from activities.delivery import (
        AttemptInput,
        AttemptRecord,
        DeliveryActivities,
        attempt_record_in,
    )
    from activities.endpoint_health import EndpointHealthActivities, Outcome

HEARTBEAT_TIMEOUT = timedelta(seconds=10)
OUTCOME_TIMEOUT = timedelta(seconds=30)
OUTCOME_ATTEMPTS = 10
START_TO_CLOSE_MARGIN = timedelta(seconds=10)
PROGRESS_MEMO = "progress"


def without_query(url: str) -> str:
    """A URL for summaries shown in the Temporal UI: its query may carry a token."""
    return url.split("?", 1)[0].split("#", 1)[0]


class DeliveryInput(BaseModel):
    """Everything a delivery needs except the secret, which is read at attempt time."""

    delivery_id: str
    app_id: str
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    """For the UI summary only: each attempt posts to the endpoint's URL at that time."""
    body: str
    retry: RetrySettings
    timeout_s: float
    attempts_before: int = 0
    """Attempts made by an earlier run of this delivery (when a failed delivery is retried)."""
    callback_url: str | None = None
    """A per-job callback URL to deliver to instead of an endpoint (then ``endpoint_id`` is
    ``callback``), signed with the app's own secret."""


class RetryRequest(BaseModel):
    """A manual retry, carrying what the caller saw of the attempts so far.

    An attempt series cancelled while backing off reports no attempt count to the workflow,
    so the API, which reads it from the pending activity, passes it along.
    """

    attempts_made: int = 0
    last_attempt: AttemptRecord | None = None


class DeliveryResult(BaseModel):
    """How a delivery ended: the workflow's result, or the details of its failure."""

    status: str
    attempts: int
    last_attempt: AttemptRecord | None


@workflow.defn
class DeliveryWorkflow:
    """Runs the signing-and-POST activity under the delivery's retry policy until it succeeds,
    the receiver answers 410 Gone, or the retry window closes. A ``retry_now`` signal cuts a
    backoff short by restarting the attempts at once."""

    def __init__(self) -> None:
        self._retry_requested = False
        self._seen_by_caller = RetryRequest()

    @workflow.signal
    def retry_now(self, request: RetryRequest) -> None:
        """Attempt again now instead of waiting for the next backoff."""
        self._retry_requested = True
        if request.attempts_made > self._seen_by_caller.attempts_made:
            self._seen_by_caller = request

    @workflow.run
    async def run(self, delivery: DeliveryInput) -> DeliveryResult:
        attempts_before = delivery.attempts_before
        last: AttemptRecord | None = None
        start_to_close = timedelta(seconds=delivery.timeout_s) + START_TO_CLOSE_MARGIN
        # A manual retry restarts the attempts, not the window: the delivery still ends
        # when it would have (with room for at least the one attempt asked for).
        deadline = workflow.now() + delivery.retry.window(delivery.timeout_s)
        schedule = delivery.retry.schedule_s
        if schedule and schedule[0] > 0 and not delivery.attempts_before:
            # The first attempt waits its scheduled delay (a retry signal cuts it short).
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self._retry_requested, timeout=timedelta(seconds=schedule[0])
                )
        retried_by_hand = False
        while True:
            self._retry_requested = False
            window = deadline - workflow.now()
            if retried_by_hand:  # the window may be spent: still make the attempt asked for
                window = max(window, start_to_close + timedelta(seconds=1))
            handle = workflow.start_activity_method(
                DeliveryActivities.post_signed,
                AttemptInput(
                    delivery_id=delivery.delivery_id,
                    app_id=delivery.app_id,
                    event_id=delivery.event_id,
                    endpoint_id=delivery.endpoint_id,
                    body=delivery.body,
                    timeout_s=delivery.timeout_s,
                    attempts_before=attempts_before,
                    callback_url=delivery.callback_url,
                    schedule_s=schedule,
                    event_type=delivery.event_type,
                ),
                schedule_to_close_timeout=window,
                start_to_close_timeout=start_to_close,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=delivery.retry.to_policy(),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=f"POST {without_query(delivery.url)}",
            )
            await workflow.wait_condition(
                lambda handle=handle: handle.done() or self._retry_requested  # type: ignore[misc]
            )
            if not handle.done():
                handle.cancel()
            try:
                last = await handle
            except ActivityError as err:
                last = attempt_record_in(err) or last
                if not self._retry_requested:
                    cause = err.cause
                    gone = isinstance(cause, ApplicationError) and cause.type == "EndpointGone"
                    await _report_outcome(delivery, succeeded=False, gone=gone, error=str(cause))
                if self._retry_requested:  # before or while the outcome was being reported
                    attempts_before, last = self._attempts_so_far(attempts_before, last)
                    # The cancelled series' counts stay visible to the API's describe.
                    workflow.upsert_memo(
                        {PROGRESS_MEMO: _progress("retrying", attempts_before, last)}
                    )
                    retried_by_hand = True
                    continue
                result = _finish("failed", last.attempt if last else attempts_before, last)
                raise ApplicationError(
                    f"delivery failed: {err.cause or err}",
                    result,
                    type="DeliveryFailed",
                    non_retryable=True,
                ) from None
            if last.endpoint_was_failing:
                await _report_outcome(delivery, succeeded=True)
            return _finish("succeeded", last.attempt, last)

    def _attempts_so_far(
        self, attempts_before: int, last: AttemptRecord | None
    ) -> tuple[int, AttemptRecord | None]:
        """Attempts made before a manual retry, from the failure or, if the attempt series was
        cancelled mid-backoff (a cancel carries no count), from what the caller saw."""
        seen = self._seen_by_caller
        known = last.attempt if last else attempts_before
        if seen.attempts_made > known:
            return seen.attempts_made, seen.last_attempt or last
        return known, last


async def _report_outcome(
    delivery: DeliveryInput, *, succeeded: bool, gone: bool = False, error: str | None = None
) -> None:
    """Tell the endpoint's health bookkeeping how the delivery ended. Only failures and
    recoveries are reported, so the common case (a first-time success) costs nothing."""
    try:
        await workflow.execute_activity_method(
            EndpointHealthActivities.record_outcome,
            Outcome(
                app_id=delivery.app_id,
                endpoint_id=delivery.endpoint_id,
                delivery_id=delivery.delivery_id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                succeeded=succeeded,
                gone=gone,
                error=error,
            ),
            start_to_close_timeout=OUTCOME_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=OUTCOME_ATTEMPTS),
            summary="record outcome on the endpoint",
        )
    except ActivityError as err:
        # The delivery's own outcome stands whatever happens to the bookkeeping.
        workflow.logger.warning("could not record the outcome of %s: %s", delivery.delivery_id, err)


def _finish(status: str, attempts: int, last: AttemptRecord | None) -> DeliveryResult:
    """Record the outcome where operators and the API look: search attribute, memo, metrics."""
    meter = workflow.metric_meter()
    meter.create_counter("hookline_deliveries", "Deliveries that ended, by outcome").add(
        1, {"outcome": status}
    )
    meter.create_histogram("hookline_attempts_per_delivery", "Attempts a delivery took").record(
        attempts, {"outcome": status}
    )
    workflow.upsert_search_attributes([STATUS.value_set(status)])
    workflow.upsert_memo({PROGRESS_MEMO: _progress(status, attempts, last)})
    return DeliveryResult(status=status, attempts=attempts, last_attempt=last)


def _progress(status: str, attempts: int, last: AttemptRecord | None) -> dict[str, object]:
    return DeliveryResult(status=status, attempts=attempts, last_attempt=last).model_dump(
        mode="json"
    )

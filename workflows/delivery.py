"""DeliveryWorkflow: one event to one endpoint, retried by Temporal, retriable by hand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)

# Passed through: the sandbox would otherwise build these modules' pydantic models again for
# every workflow run, which costs more CPU than the rest of a delivery's workflow code.
with workflow.unsafe.imports_passed_through():
    from hookline.activities.delivery import DeliveryActivities
    from hookline.activities.endpoint_health import EndpointHealthActivities, Outcome
    from hookline.activities.lanes import LaneActivities, LaneRequest
    from hookline.contracts.delivery import (
        ENDPOINT_BUSY,
        ENDPOINT_PAUSED,
        LANE_REQUIRED,
        PERMIT_EXPIRED,
        AttemptInput,
        AttemptRecord,
        DeliveryInput,
        DeliveryResult,
        RetryRequest,
        attempt_record_in,
        without_query,
    )
    from hookline.contracts.lane_permits import Outcome as LaneOutcome
    from hookline.contracts.lanes import (
        LaneAttempted,
        LaneEnded,
        LaneFull,
        LaneGrant,
        LanePaused,
        lane_workflow_id,
    )
    from hookline.contracts.late_permits import LateStarts
    from hookline.contracts.metric_labels import EVENT_TYPES
    from hookline.contracts.names import (
        CREATED_MEMO,
        DELIVERY_WORKFLOW,
        LANE_ATTEMPTED_SIGNAL,
        LANE_ENDED_SIGNAL,
        LANE_FULL_SIGNAL,
        LANE_GRANTED_SIGNAL,
        LANE_PAUSED_SIGNAL,
        PROGRESS_MEMO,
        RETRY_NOW_SIGNAL,
    )
    from hookline.contracts.retry_settings import NON_RETRYABLE_ERRORS, RetrySettings
    from hookline.contracts.search_attributes import STATUS
    from hookline.contracts.statuses import PAUSED

HEARTBEAT_TIMEOUT = timedelta(seconds=10)
OUTCOME_TIMEOUT = timedelta(seconds=30)
OUTCOME_ATTEMPTS = 10
START_TO_CLOSE_MARGIN = timedelta(seconds=10)
LOCAL_FIRST_ATTEMPT = "local-first-attempt"
"""Patch id: runs started before a run's first attempt became a local activity replay
without it. Deprecate it once no such run is open (3 days after deploying, by default)."""
LANES = "lanes"
"""Patch id: a delivery whose endpoint has a lane takes its attempts through it. Runs that
never met a lane do not record it."""
LANE_ASK_TIMEOUT = timedelta(seconds=10)
LANE_REASK = timedelta(minutes=5)
"""How long a delivery that its lane was too full to keep waits before asking again (and,
in runs from before ``LANE_ASKS_KEPT``, any delivery waiting for its grant)."""
LANE_REASK_KEPT = timedelta(minutes=30)
"""How long a delivery waits for its grant before asking again, in case its lane lost the
ask (a lane terminated by hand). Each ask wakes both workflows: a backlog asking every 5
minutes doubled their work while an endpoint came back from an outage."""
LANE_ASKS_KEPT = "lane-asks-kept"
"""Patch id: a delivery asks again after ``LANE_REASK_KEPT`` unless its lane said it was
full; runs from before asked every ``LANE_REASK``."""
LANE_KEEPS_SCHEDULE = "lane-keeps-schedule"
"""Patch id: a delivery whose endpoint got a lane after some of its attempts goes on with its
schedule where it was; runs from before restarted it in the lane."""
LANE_WINDOW_CLOSES = "lane-window-closes"
"""Patch id: a delivery waiting for its lane's permit fails when its window closes (behind an
open circuit, a backlog drains one probe a minute); runs from before wait on."""
LANE_WINDOW_CLOSED = "LaneWindowClosed"
LANE_ENDED_ON_CANCEL = "lane-ended-on-cancel"
"""Patch id: a laned delivery cancelled while it waits tells its lane it ended; runs
cancelled before replay without telling."""
LANE_LAST_OUTCOME = "lane-last-outcome"
"""Patch id: a laned delivery's last attempt tells its lane that it ended in the same signal
(one workflow task less on each side); runs from before sent ``lane_ended`` after it."""
LANE_LOCAL_ATTEMPT = "lane-local-attempt"
"""Patch id: an attempt under a lane's permit is a local activity in the workflow task that
got the grant; runs from before made it an activity (one activity task and one workflow task
more a permit)."""
CANCEL_NOT_ABSORBED = "cancel-not-absorbed"
"""Patch id: a cancel that came while a laned delivery signalled its lane (or reported its
failure) cancels the run; runs from before went on as if never cancelled."""
LANE_ASKS_FIRST = "lane-asks-first"
"""Patch id: a delivery accepted while its endpoint had a lane (``DeliveryInput.laned``) asks
the lane for its first permit at once; runs from before (and runs that an older worker began,
which ignored the field) made a first attempt that sent nothing and said the endpoint had a
lane."""
HOLD_FAILED = "hold-failed"
"""Patch id: runs that failed before failed deliveries were held open for a manual retry
replay closing at once. It matters only to replays of such runs (a query on a closed run in
the UI, tests/histories), so keep it while their histories are kept."""
PATCHES_OF_2026_12 = "patches-of-2026-12"
"""Patch id: a run that records it takes every patch in ``BUNDLED`` without recording each.
``workflow.patched`` records a marker and upserts ``TemporalChangeVersion`` the first time a
run meets each patch: a laned delivery met up to ten, as many history events and visibility
writes more for the server (billable actions on Temporal Cloud), for nothing a new run could
have done otherwise. Runs from before meet them one by one, as they ran. Never add to
``BUNDLED``: a run that recorded the bundle never ran a later patch's new path. A later patch
is called on its own (or a later bundle takes it)."""
BUNDLED = frozenset(
    {
        LOCAL_FIRST_ATTEMPT,
        LANES,
        LANE_ASKS_KEPT,
        LANE_KEEPS_SCHEDULE,
        LANE_WINDOW_CLOSES,
        LANE_ENDED_ON_CANCEL,
        LANE_LAST_OUTCOME,
        LANE_LOCAL_ATTEMPT,
        CANCEL_NOT_ABSORBED,
        LANE_ASKS_FIRST,
        HOLD_FAILED,
    }
)
LANE_SHOWS_FAILED_ATTEMPT = "lane-shows-failed-attempt"
"""Patch id: a delivery whose attempt failed as its endpoint got a lane (the failure carries
the attempt's record) shows that attempt in its status while it waits in the lane. A worker
from before went into the lane without showing it: its runs replay so, and a run that showed
it stalls on such a worker (a nondeterminism error, retried) instead of going on otherwise."""
LANE_HOLDS_ON_PAUSE = "lane-holds-on-pause"
"""Patch id: a permitted attempt that found its endpoint paused (``holds_on_pause``) sent
nothing, and the delivery waits in the lane again. An older worker that handled such a failure
took it for the receiver's: runs it went on with so replay as they ran."""
PAUSED_REASK = timedelta(seconds=1)
"""How long a delivery whose permitted attempt found its endpoint paused waits before asking
its lane again, doubling for each such attempt in a row up to ``PAUSED_REASK_MAX`` (a lane that
missed the pause, or a worker that cannot read the resume, would grant and refuse forever)."""
PAUSED_REASK_MAX = timedelta(minutes=1)
NOT_HELD = ("EndpointDeleted",)
"""Failures no manual retry can mend: the delivery closes at once."""


# Not sandboxed: the sandbox re-imports a workflow's module for every run, which cost a third
# of the worker's CPU per delivery. This module stays deterministic (no I/O, clock or
# randomness outside ``workflow.*``); tests/test_workflow_replay.py replays real histories of
# every path through it inside the sandbox, which fails on any such call or on a change that
# no longer replays what earlier runs recorded.
@workflow.defn(name=DELIVERY_WORKFLOW, sandboxed=False)
class DeliveryWorkflow:
    """Runs the signing-and-POST activity under the delivery's retry policy until it succeeds,
    the receiver answers 410 Gone, or the retry window closes. A ``retry_now`` signal cuts a
    backoff short by restarting the attempts at once."""

    def __init__(self) -> None:
        self._bundled = False
        """The run recorded ``PATCHES_OF_2026_12``: every patch in ``BUNDLED`` applies."""
        self._retry_requested = False
        self._lane_asks = 0
        """Asks for a permit this run has made; each grant names the ask it answers."""
        self._lane_granted_ask = 0
        self._lane_start_at: datetime | None = None
        """When the attempt under the latest grant may start."""
        self._lane_paused = False
        self._lane_full = False
        """The lane was full and did not keep the latest ask."""
        self._paused_shown = False
        """What the status says of the pause (``paused``, or not)."""
        self._held = False
        """Failed, and waiting for a manual retry."""
        self._seen_by_caller = RetryRequest()
        self._first_attempt: AttemptRecord | None = None
        """The run's first attempt, when it failed and the attempts went on."""

    @workflow.signal(name=LANE_GRANTED_SIGNAL)
    def lane_granted(self, grant: LaneGrant) -> None:
        """The endpoint's lane granted a permit for one attempt."""
        if grant.ask >= self._lane_granted_ask:
            self._lane_start_at = grant.start_at
        self._lane_granted_ask = max(self._lane_granted_ask, grant.ask)
        self._lane_paused = False

    @workflow.signal(name=LANE_FULL_SIGNAL)
    def lane_full(self, notice: LaneFull) -> None:
        """The endpoint's lane was full and did not keep this delivery's ask."""
        if notice.ask == self._lane_asks and not self._lane_granted():
            self._lane_full = True

    @workflow.signal(name=LANE_PAUSED_SIGNAL)
    def lane_paused(self, notice: LanePaused) -> None:
        """The endpoint's lane, where this delivery waits for a permit, paused or resumed."""
        self._lane_paused = notice.paused

    @workflow.signal(name=RETRY_NOW_SIGNAL)
    def retry_now(self, request: RetryRequest) -> None:
        """Attempt again now instead of waiting for the next backoff."""
        if request.only_if_failed and not self._held:
            return  # a bulk recovery's, for a delivery retried since it was found failed
        self._retry_requested = True
        if request.attempts_made > self._seen_by_caller.attempts_made:
            self._seen_by_caller = request

    @workflow.run
    async def run(self, delivery: DeliveryInput) -> DeliveryResult:
        # First, so that a run decides once, before any other patch, which way it records
        # them (a run from before finds no marker here, and meets each patch as it ran).
        self._bundled = workflow.patched(PATCHES_OF_2026_12)
        try:
            return await self._deliver(delivery)
        except asyncio.CancelledError:
            # Cancelled while waiting (a backoff, a permit): a lane that queued or granted
            # this delivery moves on at once (a fifo key would wait for it otherwise).
            if (delivery.fifo or self._lane_asks) and _patched(LANE_ENDED_ON_CANCEL):
                me = workflow.info().workflow_id
                lane_id = lane_workflow_id(delivery.app_id, delivery.endpoint_id)
                await _tell_lane(lane_id, LaneEnded(delivery=me))
            raise

    async def _deliver(self, delivery: DeliveryInput) -> DeliveryResult:
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
                series = self._series(delivery, attempts_before, 0, window, start_to_close)
            elif delivery.laned and _patched(LANE_ASKS_FIRST):
                # Accepted while the endpoint had a lane: ask it straight away.
                series = self._laned(delivery, attempts_before, 0, deadline, start_to_close)
            elif _patched(LOCAL_FIRST_ATTEMPT):
                series = self._first_series(delivery, attempts_before, deadline, start_to_close)
            else:  # a run started before first attempts were local replays as it ran
                series = self._series(delivery, attempts_before, 0, window, start_to_close)
            try:
                last = await self._through_lane_if_needed(
                    series, delivery, attempts_before, deadline, start_to_close
                )
            except FailureError as err:  # an activity's, or a local activity's own failure
                if is_cancelled_exception(err) and not self._retry_requested:
                    raise  # the workflow was cancelled (by an operator): it ends cancelled
                # A series ended before its first attempt failed carries no record: then the
                # last is the run's first attempt, or the one before the manual retry.
                last = attempt_record_in(err) or self._first_attempt or last
                cause = _attempt_failure(err)
                if not self._retry_requested:
                    gone = isinstance(cause, ApplicationError) and cause.type == "EndpointGone"
                    await _report_outcome(delivery, succeeded=False, gone=gone, error=str(cause))
                if self._retry_requested:  # before or while the outcome was being reported
                    attempts_before, last = self._attempts_so_far(attempts_before, last)
                    # The cancelled series' counts stay visible to the API's describe.
                    workflow.upsert_memo(
                        {PROGRESS_MEMO: _progress("retrying", attempts_before, last)}
                    )
                    retried_by_hand = True
                    self._first_attempt = None
                    continue
                result = _finish(
                    delivery, "failed", last.attempt if last else attempts_before, last
                )
                # The failure's own wording, which names no host (the record's error may).
                error = cause.message if isinstance(cause, FailureError) else str(cause)
                held = _failure_type(err) not in NOT_HELD
                if held and await self._held_for_retry(delivery, error):
                    attempts_before, last = self._attempts_so_far(result.attempts, last)
                    workflow.upsert_memo(
                        {PROGRESS_MEMO: _progress("retrying", attempts_before, last)}
                    )
                    workflow.upsert_search_attributes([STATUS.value_set("retrying")])
                    # As a new run would: a fresh window, its first attempt made at once.
                    deadline = workflow.now() + delivery.retry.window(delivery.timeout_s)
                    retried_by_hand = False
                    self._first_attempt = None
                    continue
                raise ApplicationError(
                    f"delivery failed: {cause}",
                    result,
                    type="DeliveryFailed",
                    non_retryable=True,
                ) from None
            if last.endpoint_was_failing:
                await _report_outcome(delivery, succeeded=True)
            return _finish(delivery, "succeeded", last.attempt, last)

    async def _first_series(
        self,
        delivery: DeliveryInput,
        attempts_before: int,
        deadline: datetime,
        start_to_close: timedelta,
    ) -> AttemptRecord:
        """A run's attempts: the first as a local activity, inside the workflow task that
        started the run (most deliveries succeed at once, and then the whole delivery takes
        one workflow task and no activity task), then, after its backoff, the rest as an
        activity under the retry policy.

        Raises:
            FailureError: the last attempt failed and no other is due, or a manual retry
                cut the first backoff short (a local attempt's failure comes unwrapped).
        """
        try:
            return await workflow.execute_local_activity_method(
                DeliveryActivities.post_signed,
                _attempt_input(delivery, attempts_before, delivery.retry.schedule_s),
                start_to_close_timeout=start_to_close,
                retry_policy=delivery.retry.first_attempt_policy(),
                summary=f"POST {without_query(delivery.url)}",
            )
        except FailureError as err:
            if is_cancelled_exception(err):
                raise  # the workflow was cancelled: no more attempts
            if _failure_type(err) == ENDPOINT_BUSY:
                # No POST was made: the endpoint's slots in this worker were all taken. The
                # attempt waits its turn as an activity, outside this workflow task.
                window = max(deadline - workflow.now(), timedelta(seconds=1))
                return await self._series(delivery, attempts_before, 0, window, start_to_close)
            delay = _delay_after_first_attempt(err, delivery.retry)
            if delay is not None and _failure_named_delay(err):
                # Like Retry-After on an activity: shortened to leave room for the attempt.
                room = deadline - workflow.now() - start_to_close
                if room >= timedelta(seconds=1):
                    delay = min(delay, room)
            # Like an activity's retries: the next attempt must start inside the window.
            if delay is None or workflow.now() + delay >= deadline:
                raise
            self._first_attempt = attempt_record_in(err)
            made = self._first_attempt.attempt if self._first_attempt else attempts_before + 1
            next_at = workflow.now() + delay
            workflow.upsert_memo(
                {PROGRESS_MEMO: _progress("retrying", made, self._first_attempt, next_at)}
            )
            workflow.upsert_search_attributes([STATUS.value_set("retrying")])
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(lambda: self._retry_requested, timeout=delay)
            if self._retry_requested:
                raise
        window = max(deadline - workflow.now(), timedelta(seconds=1))
        return await self._series(delivery, made, 1, window, start_to_close)

    async def _series(
        self,
        delivery: DeliveryInput,
        attempts_before: int,
        made_in_series: int,
        window: timedelta,
        start_to_close: timedelta,
    ) -> AttemptRecord:
        """Attempts as an activity that Temporal retries with backoff until one succeeds, one
        fails for good, the window closes, or a manual retry cancels them.

        Args:
            made_in_series: Attempts of the retry schedule already made (by the first attempt).
        """
        handle = workflow.start_activity_method(
            DeliveryActivities.post_signed,
            _attempt_input(
                delivery, attempts_before, delivery.retry.schedule_after(made_in_series)
            ),
            schedule_to_close_timeout=window,
            start_to_close_timeout=start_to_close,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=delivery.retry.to_policy(made_in_series),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"POST {without_query(delivery.url)}",
        )
        await workflow.wait_condition(lambda: handle.done() or self._retry_requested)
        if not handle.done():
            handle.cancel()
        return await handle

    async def _through_lane_if_needed(
        self,
        series: Awaitable[AttemptRecord],
        delivery: DeliveryInput,
        attempts_before: int,
        deadline: datetime,
        start_to_close: timedelta,
    ) -> AttemptRecord:
        """``series``, or, if the endpoint has a lane (its attempt sent nothing and said so),
        the attempts as the lane permits them."""
        try:
            return await series
        except FailureError as err:
            if _failure_type(err) != LANE_REQUIRED or not _patched(LANES):
                raise
            # Attempts of this series made before the endpoint got its lane count too, and
            # the series' schedule goes on from them (it does not start over).
            made = max(attempts_before, _attempts_made_in(err))
            failed = _failed_into_lane(err)
        if failed is not None and _patched(LANE_SHOWS_FAILED_ATTEMPT):
            # The attempt was made and failed as its endpoint got a lane (its breaker
            # tripped): the status shows it while the delivery waits in the lane.
            self._first_attempt = failed
            self._show_status("retrying", made, failed)
        in_series = made - attempts_before if _patched(LANE_KEEPS_SCHEDULE) else 0
        return await self._laned(delivery, made, in_series, deadline, start_to_close)

    async def _laned(
        self,
        delivery: DeliveryInput,
        attempts_before: int,
        made_in_series: int,
        deadline: datetime,
        start_to_close: timedelta,
    ) -> AttemptRecord:
        """Attempts one at a time, each under a permit of the endpoint's lane, retried here
        (not by Temporal) on the delivery's schedule. Time the lane is paused does not use up
        the window.

        Args:
            made_in_series: Attempts of the retry schedule already made (before the endpoint
                had its lane).

        Raises:
            FailureError: the last attempt failed and no other is due, or the delivery was
                cancelled (the lane is told the delivery ended).
        """
        me = workflow.info().workflow_id
        lane_id = lane_workflow_id(delivery.app_id, delivery.endpoint_id)
        made, in_series, last = attempts_before, made_in_series, self._first_attempt
        window_closes = _patched(LANE_WINDOW_CLOSES)
        late = LateStarts()  # the permits that expired in a row
        paused_refusals = 0  # attempts in a row that found the endpoint paused
        while True:
            self._lane_asks += 1
            # A retry by hand waits for its one attempt, however late (made, none since).
            by_hand = in_series == 0 and made > 0
            paused_for = await self._permit(
                delivery,
                made,
                last,
                deadline if window_closes and not by_hand else None,
                late.lead_s,
            )
            deadline += paused_for
            self._retry_requested = False  # the attempt asked for is this one
            attempt = _attempt_input(delivery, made, None).model_copy(
                update={
                    "permitted": True,
                    "holds_on_pause": True,
                    "start_at": self._lane_start_at,
                    "strict_start": late.strict(),
                    "start_tolerance_s": late.tolerance_s(),
                }
            )
            try:
                record = await _permitted_attempt(attempt, delivery.url, start_to_close)
            except FailureError as err:
                if is_cancelled_exception(err):
                    await _tell_lane(lane_id, LaneEnded(delivery=me))
                    raise
                if _failure_type(err) == PERMIT_EXPIRED:  # nothing sent: its slot passed
                    await _tell_lane(lane_id, LaneAttempted(delivery=me, outcome="refused"))
                    _cancel_if_requested()
                    # The next permit is planned further ahead, and kept to (runs from
                    # before used it however late, which bunched up at the receiver; the
                    # change is only in local activities' inputs, which a replay does not
                    # compare).
                    late = late.after_expiry(_late_by(err))
                    continue
                if _failure_type(err) == ENDPOINT_PAUSED and _patched(LANE_HOLDS_ON_PAUSE):
                    # Nothing sent: paused since the grant. The permit goes back and, after
                    # a moment (a lane that missed the pause grants again at once), the
                    # delivery asks again: the paused lane holds it (reading ``paused``).
                    await _tell_lane(lane_id, LaneAttempted(delivery=me, outcome="refused"))
                    _cancel_if_requested()
                    paused_refusals += 1
                    with contextlib.suppress(asyncio.TimeoutError):
                        await workflow.wait_condition(
                            lambda: self._retry_requested,
                            timeout=_paused_reask(paused_refusals),
                        )
                    continue
                paused_refusals = 0
                late = LateStarts()
                failed = attempt_record_in(err)
                last = failed or last
                made, in_series = (failed.attempt if failed else made + 1), in_series + 1
                delay, hold_until = _lane_retry(err, failed, delivery.retry, in_series)
                outcome = LaneAttempted(
                    delivery=me, outcome=_lane_outcome(err, failed), hold_until=hold_until
                )
                if delay is None or workflow.now() + delay >= deadline:
                    await _tell_lane_last(lane_id, outcome)
                    raise
                await _tell_lane(lane_id, outcome)
                _cancel_if_requested()
                next_at = workflow.now() + delay
                workflow.upsert_memo({PROGRESS_MEMO: _progress("retrying", made, failed, next_at)})
                workflow.upsert_search_attributes([STATUS.value_set("retrying")])
                with contextlib.suppress(asyncio.TimeoutError):
                    await workflow.wait_condition(lambda: self._retry_requested, timeout=delay)
                continue
            await _tell_lane_last(lane_id, LaneAttempted(delivery=me, outcome="succeeded"))
            return record

    def _lane_granted(self) -> bool:
        return self._lane_granted_ask >= self._lane_asks

    async def _permit(
        self,
        delivery: DeliveryInput,
        made: int,
        last: AttemptRecord | None,
        deadline: datetime | None,
        lead_s: float = 0.0,
    ) -> timedelta:
        """Ask the lane for a permit and wait for it, asking again every ``LANE_REASK_KEPT``,
        or ``LANE_REASK`` if the lane was too full to keep the ask (an ask is idempotent, and
        a lane that ended meanwhile starts again). The status reads ``paused`` while the lane
        is.

        Args:
            deadline: When the delivery's window closes (paused time not counted): waiting
                ends there (``None``: runs from before waited on).
            lead_s: Ask for a permit planned at least this long after its grant.

        Returns:
            How long the lane was paused meanwhile.

        Raises:
            ApplicationError: the window closed first (``LaneWindowClosed``, with the last
                attempt's record); the lane is told the delivery ended.
        """
        lane_id = lane_workflow_id(delivery.app_id, delivery.endpoint_id)
        paused_for, paused_since = timedelta(0), None
        # A run from before hears no lane_full: one an older worker buffered unhandled must
        # change nothing when a newer one replays it.
        asks_kept = _patched(LANE_ASKS_KEPT)
        kept_reask = LANE_REASK_KEPT if asks_kept else LANE_REASK
        while not self._lane_granted():
            if deadline is not None and workflow.now() >= deadline + paused_for:
                await _tell_lane(lane_id, LaneEnded(delivery=workflow.info().workflow_id))
                raise ApplicationError(
                    "the retry window closed while the delivery waited for its endpoint's lane",
                    *([last] if last else []),
                    type=LANE_WINDOW_CLOSED,
                    non_retryable=True,
                )
            self._lane_full = False  # until the lane says so of this ask
            await workflow.execute_local_activity_method(
                LaneActivities.ask_lane,
                LaneRequest(
                    app_id=delivery.app_id,
                    endpoint_id=delivery.endpoint_id,
                    delivery=workflow.info().workflow_id,
                    timeout_s=delivery.timeout_s,
                    key=delivery.ordering_key,
                    ask=self._lane_asks,
                    accepted_at=_accepted_at(),
                    lead_s=lead_s,
                ),
                start_to_close_timeout=LANE_ASK_TIMEOUT,
            )
            asked_at = workflow.now()
            while not self._lane_granted():
                full = asks_kept and self._lane_full
                reask = LANE_REASK if full else kept_reask
                if workflow.now() - asked_at >= reask:
                    break
                timeout = reask - (workflow.now() - asked_at)
                if deadline is not None and not self._paused_shown:
                    closes = deadline + paused_for - workflow.now()
                    if closes <= timedelta(0):
                        break  # the window closed: ask once more, then end
                    timeout = min(timeout, closes)

                def heard(full: bool = full) -> bool:
                    """A grant, a pause or resume, or the lane saying it is full."""
                    return (
                        self._lane_granted()
                        or self._lane_paused != self._paused_shown
                        or (asks_kept and self._lane_full != full)
                    )

                with contextlib.suppress(asyncio.TimeoutError):
                    await workflow.wait_condition(heard, timeout=timeout)
                if self._lane_paused != self._paused_shown and not self._lane_granted():
                    status = PAUSED if self._lane_paused else _waiting_status(made)
                    self._show_status(status, made, last)
                    self._paused_shown = self._lane_paused
                    if self._lane_paused:
                        paused_since = workflow.now()
                    elif paused_since is not None:
                        paused_for += workflow.now() - paused_since
                        paused_since = None
        if paused_since is not None:
            paused_for += workflow.now() - paused_since
        if self._paused_shown:
            self._show_status(_waiting_status(made), made, last)
            self._paused_shown = False
        return paused_for

    def _show_status(self, status: str, made: int, last: AttemptRecord | None) -> None:
        workflow.upsert_memo({PROGRESS_MEMO: _progress(status, made, last)})
        workflow.upsert_search_attributes([STATUS.value_set(status)])

    async def _held_for_retry(self, delivery: DeliveryInput, error: str) -> bool:
        """Wait, failed, up to the hold for a manual retry; whether one came.

        Held open, a failed delivery that is retried goes on in this run: it never shows as a
        failed run beside the one that delivered it.
        """
        hold = delivery.retry.failed_hold_s
        if not hold or not _patched(HOLD_FAILED):
            return False
        _cancel_if_requested()  # while the failure was being reported
        until = workflow.now() + timedelta(seconds=hold)
        workflow.set_current_details(
            f"Failed: {error}. Open for a manual retry until {until:%Y-%m-%d %H:%M} UTC."
        )
        self._held = True
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self._retry_requested, timeout=timedelta(seconds=hold)
            )
        self._held = False
        workflow.set_current_details("")
        return self._retry_requested

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


def _finish(
    delivery: DeliveryInput, status: str, attempts: int, last: AttemptRecord | None
) -> DeliveryResult:
    """Record the outcome where operators and the API look: search attribute, memo, metrics."""
    meter = workflow.metric_meter()
    meter.create_counter(
        "hookline_deliveries", "Deliveries that ended, by outcome and event type"
    ).add(1, {"outcome": status, "event_type": EVENT_TYPES(delivery.event_type)})
    meter.create_histogram("hookline_attempts_per_delivery", "Attempts a delivery took").record(
        attempts, {"outcome": status}
    )
    workflow.upsert_search_attributes([STATUS.value_set(status)])
    workflow.upsert_memo({PROGRESS_MEMO: _progress(status, attempts, last)})
    return DeliveryResult(status=status, attempts=attempts, last_attempt=last)


def _progress(
    status: str, attempts: int, last: AttemptRecord | None, next_at: datetime | None = None
) -> dict[str, object]:
    return DeliveryResult(
        status=status, attempts=attempts, last_attempt=last, next_attempt_at=next_at
    ).model_dump(mode="json")


def _attempt_input(
    delivery: DeliveryInput, attempts_before: int, schedule_s: list[float] | None
) -> AttemptInput:
    return AttemptInput(
        delivery_id=delivery.delivery_id,
        app_id=delivery.app_id,
        event_id=delivery.event_id,
        endpoint_id=delivery.endpoint_id,
        body=delivery.body,
        timeout_s=delivery.timeout_s,
        attempts_before=attempts_before,
        callback_url=delivery.callback_url,
        schedule_s=schedule_s,
        event_type=delivery.event_type,
        in_lane=delivery.fifo,
    )


def _attempt_failure(err: FailureError) -> BaseException:
    """What made an attempt fail: an activity's failure wraps it, a local activity's is it."""
    return (err.cause or err) if isinstance(err, ActivityError) else err


def _failure_type(err: FailureError) -> str | None:
    cause = _attempt_failure(err)
    return cause.type if isinstance(cause, ApplicationError) else None


def _late_by(err: FailureError) -> float:
    """How late, in seconds, an attempt whose permit expired was (0 if it did not say)."""
    cause = _attempt_failure(err)
    details = cause.details if isinstance(cause, ApplicationError) else ()
    return float(details[0]) if details and isinstance(details[0], int | float) else 0.0


def _failure_named_delay(err: FailureError) -> bool:
    cause = _attempt_failure(err)
    return isinstance(cause, ApplicationError) and cause.next_retry_delay is not None


def _delay_after_first_attempt(err: FailureError, retry: RetrySettings) -> timedelta | None:
    """How long to wait after a failed first attempt: what the attempt named (``Retry-After``,
    the explicit schedule), else the policy's first backoff; ``None`` if it was the last."""
    cause = _attempt_failure(err)
    if isinstance(cause, ApplicationError):
        if cause.non_retryable or cause.type in NON_RETRYABLE_ERRORS:
            return None
        if cause.next_retry_delay:
            return cause.next_retry_delay
    return retry.delay_after_first_attempt()


def _patched(patch_id: str) -> bool:
    """``workflow.patched(patch_id)``, or true without recording it in a run that recorded
    ``PATCHES_OF_2026_12`` if ``patch_id`` is one of the ``BUNDLED``."""
    if patch_id in BUNDLED:
        instance = workflow.instance()
        if isinstance(instance, DeliveryWorkflow) and instance._bundled:
            return True
    return workflow.patched(patch_id)


def _paused_reask(refusals: int) -> timedelta:
    """How long to wait before asking the lane again after ``refusals`` attempts in a row
    found the endpoint paused."""
    doubled: timedelta = PAUSED_REASK * 2 ** min(refusals - 1, 16)
    return min(doubled, PAUSED_REASK_MAX)


def _cancel_if_requested() -> None:
    """Raise the workflow's cancellation if it came while the workflow awaited something that
    absorbs it (the SDK lets a signal already sent, or an activity that then ends cancelled
    and is logged, take the cancel: the run would go on waiting as if never cancelled).

    Raises:
        asyncio.CancelledError: the workflow was asked to cancel.
    """
    if workflow.cancellation_reason() is not None and _patched(CANCEL_NOT_ABSORBED):
        raise asyncio.CancelledError


async def _tell_lane(lane_id: str, message: LaneAttempted | LaneEnded) -> None:
    """Signal the endpoint's lane; one that has ended (idle) needs telling nothing."""
    signal = LANE_ATTEMPTED_SIGNAL if isinstance(message, LaneAttempted) else LANE_ENDED_SIGNAL
    with contextlib.suppress(FailureError):
        await workflow.get_external_workflow_handle(lane_id).signal(signal, message)


async def _tell_lane_last(lane_id: str, outcome: LaneAttempted) -> None:
    """Tell the lane how the delivery's last attempt ended, and that the delivery ended."""
    if _patched(LANE_LAST_OUTCOME):
        await _tell_lane(lane_id, outcome.model_copy(update={"ended": True}))
    else:
        await _tell_lane(lane_id, outcome)
        await _tell_lane(lane_id, LaneEnded(delivery=outcome.delivery))


async def _permitted_attempt(
    attempt: AttemptInput, url: str, start_to_close: timedelta
) -> AttemptRecord:
    """One attempt under a lane's permit: a local activity, in the workflow task the grant
    came in (one workflow task a permit, and the lane hears the outcome as soon as it is
    known), or an activity if every slot of the endpoint in this worker is taken (or the
    run granted permits before they were local).

    Raises:
        FailureError: the attempt failed (a local activity's failure may come unwrapped).
    """
    summary = f"POST {without_query(url)}"
    if _patched(LANE_LOCAL_ATTEMPT):
        try:
            return await workflow.execute_local_activity_method(
                DeliveryActivities.post_signed,
                attempt.model_copy(update={"planned_from": workflow.now()}),
                start_to_close_timeout=start_to_close,
                retry_policy=RetryPolicy(maximum_attempts=1),
                # A cancel waits for the POST to stop: the lane frees the permit only then.
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=summary,
            )
        except FailureError as err:
            if _failure_type(err) != ENDPOINT_BUSY:
                raise
            # Nothing was sent: it waits for one of the worker's slots as an activity.
    return await workflow.execute_activity_method(
        DeliveryActivities.post_signed,
        attempt,
        start_to_close_timeout=start_to_close,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(maximum_attempts=1),
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary=summary,
    )


def _lane_outcome(err: FailureError, record: AttemptRecord | None) -> LaneOutcome:
    """How the lane counts a failed attempt: no answer (a connection error, a timeout), a 5xx
    or a 429 count against the receiver (the circuit breaker); anything else (another answer,
    an endpoint deleted or disabled, a refused destination) does not. Nor does Temporal's own
    timeout of the attempt (``temporalio.exceptions.TimeoutError``): the POST's timeout is
    ``timeout_s`` in all, inside the attempt's, so that one means the worker stalled or died,
    or something else in the attempt ran long (waiting for its planned start or for a slot of
    the endpoint in its worker, tripping the breaker, the registry): none of it the
    receiver's doing."""
    cause = _attempt_failure(err)
    kind = cause.type if isinstance(cause, ApplicationError) else None
    code = record.status_code if record is not None else None
    if kind in ("ConnectionError", "Timeout"):
        return "receiver_failed"
    if kind == "HttpError" and code is not None and (code >= 500 or code == 429):
        return "receiver_failed"
    return "refused"


def _attempts_made_in(err: FailureError) -> int:
    """The attempts a delivery had made when its endpoint's lane turned it back."""
    cause = _attempt_failure(err)
    details = cause.details if isinstance(cause, ApplicationError) else ()
    return details[0] if details and isinstance(details[0], int) else 0


def _failed_into_lane(err: FailureError) -> AttemptRecord | None:
    """The record of the attempt that failed as its endpoint got a lane, which a
    ``LANE_REQUIRED`` carries after the attempts made (``None``: nothing was sent)."""
    cause = _attempt_failure(err)
    details = cause.details if isinstance(cause, ApplicationError) else ()
    if len(details) < 2:
        return None
    try:
        return AttemptRecord.model_validate(details[1])
    except ValueError:
        return None


def _accepted_at() -> datetime:
    """When the delivery's event was accepted (its first run's memo), else this run's start."""
    created = workflow.memo_value(CREATED_MEMO, default=None, type_hint=str)
    return datetime.fromisoformat(created) if created else workflow.info().start_time


def _lane_retry(
    err: FailureError, record: AttemptRecord | None, retry: RetrySettings, in_series: int
) -> tuple[timedelta | None, datetime | None]:
    """The wait before a laned delivery's next attempt (``None``: none is due), and until
    when the whole lane holds (a 429 or 503 with ``Retry-After``)."""
    cause = _attempt_failure(err)
    if isinstance(cause, ApplicationError) and (
        cause.non_retryable or cause.type in NON_RETRYABLE_ERRORS
    ):
        return None, None
    delay = retry.delay_after(in_series)
    named = cause.next_retry_delay if isinstance(cause, ApplicationError) else None
    if named is None or retry.schedule_s is not None or delay is None:
        return delay, None  # an explicit schedule keeps its own delays
    # Retry-After sets the delay, at least a second and at most max_interval_s, as it does
    # for an activity's retries; a 429 or 503 holds the whole lane that long.
    named = min(max(named, timedelta(seconds=1)), timedelta(seconds=retry.max_interval_s))
    held = record is not None and record.status_code in (429, 503)
    return named, (workflow.now() + named if held else None)


def _waiting_status(made: int) -> str:
    return "retrying" if made else "pending"

"""LaneWorkflow: one endpoint's lane, which hands its deliveries permits to attempt.

To a ``fifo`` endpoint the API queues each accepted delivery with ``lane_enqueue`` before it
starts. Deliveries signal ``lane_ask`` (started with signal-with-start, so the first ask starts the
lane), wait for ``lane_granted``, make one attempt, and signal ``lane_attempted`` (with
``ended`` after their last); a delivery that ends otherwise (cancelled, its window closed
while it waited) signals ``lane_ended``. Every rule of who may go, and when, is
``LanePermits``: this workflow only feeds it signals and the time, sends its grants, sleeps
until it can grant again, and carries it over continue-as-new. It ends once it has been idle
(nothing waiting, in flight or queued, not paused, circuit closed) for ``IDLE_END``; the next
ask starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from hookline.activities.lanes import HeadsToCheck, LaneActivities
    from hookline.contracts.lane_permits import LanePermits, LaneSettings, Lease
    from hookline.contracts.lanes import (
        LaneAsk,
        LaneAttempted,
        LaneBreakerReset,
        LaneEnded,
        LaneEnqueue,
        LaneFull,
        LaneGrant,
        LaneHealth,
        LaneInput,
        LanePaused,
        LaneTripped,
    )
    from hookline.contracts.names import (
        LANE_ASK_SIGNAL,
        LANE_ATTEMPTED_SIGNAL,
        LANE_CONFIGURE_SIGNAL,
        LANE_ENDED_SIGNAL,
        LANE_ENQUEUE_SIGNAL,
        LANE_FULL_SIGNAL,
        LANE_GRANTED_SIGNAL,
        LANE_HEALTH_QUERY,
        LANE_PAUSED_SIGNAL,
        LANE_TRIPPED_SIGNAL,
        LANE_WORKFLOW,
    )

IDLE_END = timedelta(minutes=10)
"""How long an idle lane waits for work before it ends (its settings live in the registry,
and a closed circuit's counters are nothing to keep)."""
CONTINUE_AFTER_EVENTS = 2_000
"""History length past which the lane continues as new, keeping its permits."""
SIGNALS_PER_TASK = 500
"""Grants and notices sent in one workflow task: Temporal fails a task with more than 2,000
external signals pending."""
SPACED_PERMITS = "lane-spaced-permits"
"""Patch id: lanes that ran before permits were spaced out (a rate spread within its window,
probes after a failed one) replay granting as they did, until they continue as new."""
SHORT_WAITS = "lane-short-waits"
"""Patch id: planned starts 0.1 s after their grant, probes at most 10 s apart; lanes that ran
before replay with 0.25 s and 30 s, until they continue as new."""
ATTEMPTED_ENDS = "lane-attempted-ends"
"""Patch id: ``lane_attempted`` with ``ended`` ends its delivery in the lane. A lane that ran
before ignored the field (the delivery left its queue at the next look at silent heads)."""
KEEPS_TIMER = "lane-keeps-timer"
"""Patch id: a lane keeps its timer while the time to wake does not come sooner (it started,
and cancelled, one a workflow task before); lanes that ran before replay as they did, until
they continue as new."""
TELLS_FULL = "lane-tells-full"
"""Patch id: a full lane tells a delivery it did not keep its ask (which then asks again
after 5 minutes, not 30); lanes that ran before replay without telling, until they continue
as new."""
COUNTS_PLANNED = "lane-rate-counts-planned"
"""Patch id: a rate switched back on counts the planned starts of permits still out; lanes
that ran before replay with its window empty, until they continue as new."""
HONOURS_LEADS = "lane-honours-leads"
"""Patch id: a delivery's ``lead_s`` (its last permit expired) holds its next permit's start
back, and planned starts keep their order; lanes that ran before ignored it, and replay as
they ran until they continue as new."""
HEADS_PER_LOOK = 100
"""Silent ``fifo`` queue heads looked at in one activity."""
LOOK_TIMEOUT = timedelta(seconds=30)


# Not sandboxed, like DeliveryWorkflow: the sandbox's import guards around every activation
# cost more than the lane's own code, and a lane runs a workflow task for nearly every ask and
# outcome of its deliveries. This module stays deterministic; tests/test_workflow_replay.py
# replays recorded lane histories inside the sandbox.
@workflow.defn(name=LANE_WORKFLOW, sandboxed=False)
class LaneWorkflow:
    """Grants permits to an endpoint's deliveries by the rules of ``LanePermits``."""

    @workflow.init
    def __init__(self, lane: LaneInput) -> None:
        self._permits = lane.permits or LanePermits()
        if lane.permits is None:
            self._permits.configure(lane.settings, workflow.now())
        self._changed = False
        self._resend: set[str] = set()
        """Deliveries that asked while holding a permit: their grant goes again."""
        self._full: dict[str, int] = {}
        """Deliveries whose ask a full lane did not keep, and that ask's number."""
        self._tells_full = False
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None
        self._idle_since: datetime | None = None

    @workflow.signal(name=LANE_ASK_SIGNAL)
    def ask(self, request: LaneAsk) -> None:
        """A delivery wants a permit for its next attempt."""
        permits = self._permits
        answer = permits.ask(
            request.delivery, request.key, request.accepted_at, request.ask, request.lead_s
        )
        if answer == "held":
            # It holds a permit already: its grant was lost with a retried workflow task.
            self._resend.add(request.delivery)
        elif answer == "full":
            self._full[request.delivery] = request.ask
        self._changed = True

    @workflow.signal(name=LANE_ENQUEUE_SIGNAL)
    def enqueue(self, accepted: LaneEnqueue) -> None:
        """Deliveries to a ``fifo`` endpoint were accepted: queue them before they ask (unless
        the endpoint is no longer ``fifo``: an API's copy of it was out of date)."""
        if self._permits.settings.ordering == "fifo":
            for delivery in accepted.deliveries:
                self._permits.enqueue(delivery, accepted.key)
            self._changed = True

    @workflow.signal(name=LANE_TRIPPED_SIGNAL)
    def tripped(self, trip: LaneTripped) -> None:
        """A worker tripped the endpoint's breaker (its deliveries come here from now on)."""
        was_open = self._permits.circuit_open
        self._permits.trip(workflow.now(), trip.hold_until)
        self._count_opening(was_open)
        self._changed = True

    @workflow.signal(name=LANE_ATTEMPTED_SIGNAL)
    def attempted(self, attempt: LaneAttempted) -> None:
        """An attempt under a permit ended (and with it, if it says so, its delivery)."""
        was_open = self._permits.circuit_open
        self._permits.attempted(
            attempt.delivery, attempt.outcome, workflow.now(), attempt.hold_until
        )
        if attempt.ended and workflow.patched(ATTEMPTED_ENDS):
            self._permits.ended(attempt.delivery)
        self._count_opening(was_open)
        self._changed = True

    @workflow.signal(name=LANE_ENDED_SIGNAL)
    def ended(self, ended: LaneEnded) -> None:
        """A delivery ended: it asks no more."""
        self._permits.ended(ended.delivery)
        self._changed = True

    @workflow.signal(name=LANE_CONFIGURE_SIGNAL)
    def configure(self, settings: LaneSettings) -> None:
        """The endpoint's lane settings changed (a pause, a resume, new limits)."""
        self._permits.configure(settings, workflow.now())
        self._changed = True

    @workflow.query(name=LANE_HEALTH_QUERY)
    def health(self) -> LaneHealth:
        """The lane's state, as the endpoint's health read shows it."""
        permits = self._permits
        return LaneHealth(
            state=permits.state(workflow.now()),
            in_flight=len(permits.leases),
            waiting=len(permits.waiting),
            consecutive_failures=permits.consecutive_failures,
            last_success_at=permits.last_success_at,
            last_failure_at=permits.last_failure_at,
            rate_limit_per_s=permits.settings.rate_limit_per_s,
            max_in_flight=permits.settings.max_in_flight,
        )

    @workflow.run
    async def run(self, lane: LaneInput) -> None:
        """Grant permits as the rules allow, until idle for ``IDLE_END``."""
        self._permits.spaced = workflow.patched(SPACED_PERMITS)
        self._permits.short_waits = workflow.patched(SHORT_WAITS)
        keeps_timer = workflow.patched(KEEPS_TIMER)
        self._tells_full = workflow.patched(TELLS_FULL)
        self._permits.counts_planned = workflow.patched(COUNTS_PLANNED)
        self._permits.honours_leads = workflow.patched(HONOURS_LEADS)
        while True:
            self._changed = False
            resend = [lease for lease in self._permits.leases if lease.delivery in self._resend]
            self._resend.clear()
            granted = self._permits.grant(workflow.now(), SIGNALS_PER_TASK)
            if granted:
                workflow.metric_meter().create_counter(
                    "hookline_lane_permits", "Permits endpoints' lanes granted"
                ).add(len(granted))
            grants = resend + granted
            if grants:
                await asyncio.gather(*(self._send(lease) for lease in grants))
                continue  # more may be due, and a grant to one that is gone frees a permit
            if await self._tell_full():
                continue
            if await self._tell_paused() or await self._look_at_silent_heads():
                continue
            if self._permits.recovered(workflow.now()):
                await self._reset_breaker(lane)
            if workflow.info().get_current_history_length() > CONTINUE_AFTER_EVENTS:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(lane.model_copy(update={"permits": self._permits}))
            # What the Temporal UI shows as the lane's current details (no history event).
            workflow.set_current_details(self._details())
            wake = self._permits.wake_at(workflow.now())
            idle = wake is None and self._is_idle()
            if keeps_timer:
                if await self._wait_for_change(wake, idle):
                    return
                continue
            timeout = IDLE_END if idle else (wake - workflow.now() if wake else None)
            try:
                await workflow.wait_condition(lambda: self._changed, timeout=timeout)
            except TimeoutError:
                # An ask may have come with the timer, in the same activation.
                if idle and not self._changed and self._is_idle():
                    return

    async def _wait_for_change(self, wake: datetime | None, idle: bool) -> bool:
        """Wait for a signal, or until ``wake`` (``idle``: ``IDLE_END`` without any signal);
        whether the lane has been idle that long and may end.

        One timer at a time, kept while the time to wake comes no sooner: a timer that fires
        before anything is due only makes the lane look again.
        """
        now = workflow.now()
        if not idle:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now
        if self._idle_since is not None:
            wake = self._idle_since + IDLE_END
        timer = self._timer
        if wake is not None and (
            timer is None or timer.done() or self._timer_at is None or wake < self._timer_at
        ):
            if timer is not None and not timer.done():
                timer.cancel()
            seconds = max((wake - now).total_seconds(), 0.001)
            timer = self._timer = asyncio.create_task(asyncio.sleep(seconds))
            self._timer_at = wake
        await workflow.wait_condition(lambda: self._changed or (timer is not None and timer.done()))
        if self._changed:  # a signal (perhaps with the timer, in the same activation)
            self._idle_since = None
            return False
        return (
            self._idle_since is not None
            and self._is_idle()
            and workflow.now() >= self._idle_since + IDLE_END
        )

    def _details(self) -> str:
        permits, health = self._permits, self.health()
        limits = f"at most {health.max_in_flight} in flight"
        if health.rate_limit_per_s is not None:
            limits += f", {health.rate_limit_per_s:g}/s"
        if permits.settings.ordering == "fifo":
            limits += f", fifo ({len(permits.queues)} keys queued)"
        return (
            f"{health.state}: {health.in_flight} in flight, {health.waiting} waiting, "
            f"{health.consecutive_failures} failed in a row ({limits})"
        )

    def _count_opening(self, was_open: bool) -> None:
        if self._permits.circuit_open and not was_open:
            workflow.metric_meter().create_counter(
                "hookline_lane_circuits_opened", "Times an endpoint's circuit breaker opened"
            ).add(1)

    def _is_idle(self) -> bool:
        permits = self._permits
        return not (
            permits.waiting
            or permits.leases
            or permits.queues
            or permits.settings.paused
            or permits.circuit_open
            or permits.slow_start is not None
            or permits.holding(workflow.now())  # a Retry-After outlives an idle lane
        )

    async def _tell_paused(self) -> bool:
        """Tell waiting deliveries, a batch at a time, that the lane is paused, or that it is
        not any more; whether any was told (more may be left)."""
        paused = self._permits.settings.paused
        to_tell = sorted(
            (w for w in self._permits.waiting if w.told_paused != paused),
            key=lambda w: w.delivery,
        )[:SIGNALS_PER_TASK]
        for waiting in to_tell:
            waiting.told_paused = paused
        notice = LanePaused(paused=paused)
        await asyncio.gather(
            *(self._signal(w.delivery, LANE_PAUSED_SIGNAL, notice) for w in to_tell)
        )
        return bool(to_tell)

    async def _tell_full(self) -> bool:
        """Tell deliveries whose asks the full lane did not keep, a batch at a time; whether
        any was told (more may be left)."""
        if not self._tells_full:
            self._full.clear()  # a lane from before tells nothing: they ask again anyway
            return False
        to_tell = sorted(self._full.items())[:SIGNALS_PER_TASK]
        for delivery, _ in to_tell:
            del self._full[delivery]
        await asyncio.gather(
            *(self._signal(d, LANE_FULL_SIGNAL, LaneFull(ask=ask)) for d, ask in to_tell)
        )
        return bool(to_tell)

    async def _reset_breaker(self, lane: LaneInput) -> None:
        """The endpoint a worker tripped has recovered: clear its breaker in the registry, so
        that its deliveries take the usual path again (those here finish here)."""
        try:
            await workflow.execute_local_activity_method(
                LaneActivities.reset_endpoint_breaker,
                LaneBreakerReset(app_id=lane.app_id, endpoint_id=lane.endpoint_id),
                start_to_close_timeout=LOOK_TIMEOUT,
                schedule_to_close_timeout=LOOK_TIMEOUT * 2,
            )
        except ActivityError as err:  # the registry is down: tried again at the next change
            workflow.logger.warning("could not reset the endpoint's breaker: %s", err)
            return
        self._permits.untripped()

    async def _look_at_silent_heads(self) -> bool:
        """Look at whether the deliveries of ``fifo`` queue heads silent long enough still run
        (one that never started, or ended unseen, would hold its key for good); whether any
        had left its queue."""
        heads = self._permits.heads_to_check(workflow.now())[:HEADS_PER_LOOK]
        if not heads:
            return False
        try:
            found = await workflow.execute_local_activity_method(
                LaneActivities.look_at_queue_heads,
                HeadsToCheck(deliveries=heads),
                start_to_close_timeout=LOOK_TIMEOUT,
                schedule_to_close_timeout=LOOK_TIMEOUT * 2,
            )
        except ActivityError as err:  # Temporal unreachable: look again later, granting meanwhile
            workflow.logger.warning("could not look at silent queue heads: %s", err)
            self._permits.checked(dict.fromkeys(heads, "running"), workflow.now())
            return False
        return bool(self._permits.checked(found.seen, workflow.now()))

    async def _signal(self, delivery: str, signal: str, message: LanePaused | LaneFull) -> None:
        with contextlib.suppress(FailureError):  # a delivery that is gone needs telling nothing
            await workflow.get_external_workflow_handle(delivery).signal(signal, message)

    async def _send(self, lease: Lease) -> None:
        """Signal ``lease``'s grant to its delivery; one that has ended gets none."""
        delivery = workflow.get_external_workflow_handle(lease.delivery)
        grant = LaneGrant(until=lease.until, ask=lease.ask, start_at=lease.start_at)
        try:
            await delivery.signal(LANE_GRANTED_SIGNAL, grant)
        except FailureError:
            # The delivery is gone (it ended without saying so): its permit is free again.
            self._permits.ended(lease.delivery)

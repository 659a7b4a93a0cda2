"""An endpoint's lane: which of its deliveries may make an attempt now.

Pure and deterministic: the lane workflow (``hookline.workflows.lane``) feeds it what happens
(a delivery asks, an attempt ends, a delivery ends, the settings change) with the time, asks
it whom to grant a permit, and carries it over continue-as-new. It holds every rule of the
lane in one place:

- **In flight.** At most ``max_in_flight`` permits are out at once. A permit is a lease: one
  whose outcome has not come by ``until`` (its worker died mid-attempt) is taken back, so a
  crash can let one more attempt start than the limit while the lost one is still running.
- **Rate.** A sliding window on the workflow's clock: at most ``burst`` permits, that is
  ``max(1, floor(rate_limit_per_s))``, in any ``burst / rate_limit_per_s`` seconds (and a
  millisecond). So bursts hold at most ``burst`` attempts (a token bucket would allow a burst
  plus a second's refill in the same second). Within that, permits are spread out: at most
  ``PACE_S`` seconds' worth at once. A permit carries its planned start, up to ``LOOKAHEAD``
  ahead, and the window counts planned starts. A delivery whose last permit expired asks
  with a ``lead_s`` (``hookline.contracts.late_permits``): its permit starts at least that
  long after its grant, and meanwhile the others waiting take the sooner slots.
- **Order.** For a ``fifo`` endpoint each ordering key is a queue in acceptance order (the
  order the lane heard of its deliveries: the API queues each before it answers 202), and
  only its oldest delivery that has not ended may attempt; without a key, the endpoint is
  one queue. A queue head that does not ask (backing off, or gone without a word) is looked
  at after ``CHECK_FIRST``, then at doubling intervals up to ``CHECK_MAX``: one that has
  ended, or never started within ``NEVER_STARTED_GRACE``, leaves its queue. Other endpoints
  grant oldest accepted first.
- **Pause.** A paused lane grants nothing; on resume it grants in the order above, at the
  lane's pace.
- **Circuit breaker.** ``breaker_failures`` failed attempts in a row (connection errors,
  timeouts, 5xx, 429) open the circuit, as does a worker that saw them on an endpoint
  without a lane (``trip``): one probe at a time, the first after ``PROBE_FIRST``, and after
  each failed probe a wait doubling up to ``PROBE_MAX``. The first success closes it, and
  the in-flight limit then grows by one a success from 1 back to ``max_in_flight``. A lane
  that a worker tripped says when it has ``recovered``, so that the endpoint's deliveries
  take the usual path again.
- **Retry-After.** A 429 or 503 naming a time holds the whole lane until then.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["succeeded", "receiver_failed", "refused"]
"""How an attempt ended, as the lane counts it: ``receiver_failed`` is a connection error,
a timeout, a 5xx or a 429 (what the breaker counts); ``refused`` any other failure (a 4xx:
the receiver is up and answering)."""

State = Literal["healthy", "open", "half_open", "paused"]
Answer = Literal["held", "waiting", "full"]
"""What the lane made of an ask: the delivery holds a permit already, waits for one, or was
not kept (the lane is full: it asks again later)."""
Seen = Literal["running", "ended", "not_found"]
"""What a look at a silent queue head's delivery found: its workflow runs, has ended (or
is failed and held for a manual retry: its queue moved on), or does not exist."""

LOOKAHEAD = timedelta(seconds=2)
"""How far ahead a rate-limited lane grants permits, each with its planned start: the worker
waits for the start on its own clock, so the rate does not hang on the lane's sub-second
timers (Temporal fires them late, by up to a second under load)."""
LEAD = timedelta(milliseconds=100)
"""A rate-limited lane's permit starts at least this long after its grant: time for the
delivery to hear of it and its worker to be ready, so that the attempt starts on its slot.
(So such a lane makes at most ``max_in_flight`` attempts per lead and response time.)"""
LEAD_BEFORE = timedelta(milliseconds=250)
"""``LEAD`` of lanes that ran before it was shortened (``short_waits`` off)."""
PACE_S = 0.2
"""A rate-limited lane spreads its permits: at most a fifth of a second's worth at once."""
PROBE_FIRST = timedelta(seconds=5)
PROBE_MAX = timedelta(seconds=10)
PROBE_MAX_BEFORE = timedelta(seconds=30)
"""``PROBE_MAX`` of lanes that ran before it was shortened (``short_waits`` off)."""
CHECK_FIRST = timedelta(seconds=30)
CHECK_MAX = timedelta(hours=1)
NEVER_STARTED_GRACE = timedelta(minutes=10)
"""How long a queued delivery whose workflow does not exist stays queued: the fan-out of an
event to many endpoints starts deliveries in the background, after they are queued."""


class LaneSettings(BaseModel):
    """An endpoint's lane settings."""

    model_config = ConfigDict(frozen=True)

    rate_limit_per_s: float | None = Field(default=None, gt=0)
    max_in_flight: int = Field(default=10, ge=1)
    ordering: Literal["none", "fifo"] = "none"
    paused: bool = False
    breaker_failures: int = Field(default=5, ge=0)
    """Failed attempts in a row that open the circuit; 0: never."""
    tripped: bool = False
    """A worker tripped the endpoint's breaker (its deliveries come here until it recovers)."""
    winding_down: bool = False
    """Its endpoint was deleted or disabled: every delivery goes (and meets that end), the
    breaker and any hold aside."""
    max_waiting: int = Field(default=5_000, ge=1)
    """Deliveries a lane keeps waiting (and, ``fifo``, queued) at most: its state rides in
    continue-as-new, whose payload Temporal caps. One that asks beyond is not kept (the lane
    tells it so), and asks again every 5 minutes until there is room."""
    lease_s: float = Field(default=60.0, gt=0)
    """How long a permit holds without its attempt's outcome: the attempt timeout and a
    margin."""


class Lease(BaseModel):
    """A permit out: one attempt of ``delivery`` may be under way."""

    delivery: str
    until: datetime
    key: str = ""
    """Its ordering key."""
    ask: int = 0
    """The delivery's ask it answers (the grant echoes it)."""
    start_at: datetime | None = None
    """A rate-limited lane's planned start of the attempt (the worker waits for it)."""
    probe: bool = False
    """Granted while the circuit was open."""


class Waiting(BaseModel):
    """A delivery that asked for a permit and has none yet."""

    delivery: str
    key: str = ""
    accepted_at: datetime | None = None
    """When its event was accepted: the lane grants oldest first."""
    ask: int = 0
    """The delivery's count of its asks, which its grant echoes."""
    lead_s: float = 0.0
    """Its permit starts at least this long after its grant (its last one expired: its
    worker was that late)."""
    told_paused: bool = False
    """Told the lane is paused (its status says so)."""


class SilentHead(BaseModel):
    """A ``fifo`` queue head that has not asked since ``since``, looked at ``checks`` times,
    last at ``looked_at``."""

    since: datetime
    checks: int = 0
    looked_at: datetime | None = None

    def due_at(self) -> datetime:
        after: timedelta = min(CHECK_FIRST * 2 ** min(self.checks, 16), CHECK_MAX)
        return (self.looked_at or self.since) + after


class LanePermits(BaseModel):
    """A lane's whole state: what it needs to decide, and nothing else."""

    settings: LaneSettings = Field(default_factory=LaneSettings)
    waiting: list[Waiting] = Field(default_factory=list)
    """Oldest accepted first (in the order they asked, among those of one time)."""
    leases: list[Lease] = Field(default_factory=list)
    queues: dict[str, list[str]] = Field(default_factory=dict)
    """``fifo`` only: each ordering key's deliveries not yet ended, in acceptance order."""
    silent: dict[str, SilentHead] = Field(default_factory=dict)
    """``fifo`` only: queue heads neither waiting nor holding a permit, since when."""
    recent: list[datetime] = Field(default_factory=list)
    """The times of the last ``burst`` permits (rate-limited lanes only)."""
    consecutive_failures: int = 0
    circuit_open: bool = False
    probe_after: datetime | None = None
    """While the circuit is open: no probe before then."""
    failed_probes: int = 0
    tripped_at: datetime | None = None
    """When a worker last tripped the breaker."""
    short_waits: bool = True
    """A planned start ``LEAD`` after its grant, probes at most ``PROBE_MAX`` apart. (``False``
    only for lanes that ran before, with ``LEAD_BEFORE`` and ``PROBE_MAX_BEFORE``, which must
    replay as they ran.)"""
    spaced: bool = True
    """Permits spaced out: a rate's spread within its window, probes after a failed one.
    (``False`` only for lanes that ran before, which must replay as they ran.)"""
    counts_planned: bool = True
    """A rate switched back on counts the planned starts of the permits still out. (``False``
    only for lanes that ran before, which must replay as they ran: they started its window
    empty, and could plan up to twice its burst within it.)"""
    honours_leads: bool = True
    """A delivery's ``lead_s`` holds its permit's start back. (``False`` only for lanes that
    ran before, which ignored it and must replay as they ran.)"""
    slow_start: int | None = None
    """After the circuit closed: the in-flight limit, until it reaches ``max_in_flight``."""
    hold_until: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None

    def configure(self, settings: LaneSettings, now: datetime) -> None:
        """Apply the endpoint's settings as they are now.

        An endpoint made ``fifo`` queues what holds or waits for a permit (in that order);
        one that no longer is drops its queues.
        """
        if settings.ordering == "fifo" and self.settings.ordering != "fifo":
            for lease in self.leases:
                self.enqueue(lease.delivery, lease.key)
            for waiting in self.waiting:
                self.enqueue(waiting.delivery, waiting.key)
        elif settings.ordering != "fifo":
            self.queues, self.silent = {}, {}
        if settings.winding_down:
            self.circuit_open, self.slow_start = False, None
            self.hold_until, self.probe_after = None, None
            self.consecutive_failures, self.failed_probes = 0, 0
        if self.settings.tripped and not settings.tripped:
            # Only the lane clears a trip (``untripped``): the API's read may predate it.
            settings = settings.model_copy(update={"tripped": True})
        self.settings = settings
        if settings.rate_limit_per_s is None:
            self.recent = []
        else:
            if not self.recent and self.counts_planned:
                # A rate back on (or new): permits planned while it was on may not have
                # started yet, and count in its window.
                self.recent = sorted(lease.start_at for lease in self.leases if lease.start_at)
            self.recent = self.recent[-self._burst() :]

    def enqueue(self, delivery: str, key: str = "") -> bool:
        """Place a delivery of a ``fifo`` lane at the end of its key's queue, unless it is in
        it already (in the order the lane hears of them: a delivery is queued when accepted,
        and one retried by hand after it failed goes to the end again); whether it is in a
        queue now."""
        if any(delivery in queue for queue in self.queues.values()):
            return True
        if sum(len(queue) for queue in self.queues.values()) >= self.settings.max_waiting:
            return False  # full: it is queued when it asks and there is room
        self.queues.setdefault(key, []).append(delivery)
        return True

    def ask(
        self,
        delivery: str,
        key: str = "",
        accepted_at: datetime | None = None,
        number: int = 0,
        lead_s: float = 0.0,
    ) -> Answer:
        """``delivery`` wants a permit for its next attempt (asking twice is asking once);
        ``number`` counts its asks, and its grant echoes the latest; a rate-limited lane
        plans the permit's start at least ``lead_s`` after its grant.

        Returns:
            ``held`` if it holds a permit already (its grant may need sending again),
            ``full`` if the lane is full and did not keep it (or, ``fifo``, could not queue
            it), else ``waiting``.
        """
        queued = True
        if self.settings.ordering == "fifo":
            queued = self.enqueue(delivery, key)  # if the lane had not heard of it
        self.silent.pop(delivery, None)
        for lease in self.leases:
            if lease.delivery == delivery:
                lease.ask = number  # the latest: a new run of the delivery counts from 1
                return "held"
        for waiting in self.waiting:
            if waiting.delivery == delivery:
                waiting.ask, waiting.lead_s = number, lead_s
                return "waiting" if queued else "full"
        if len(self.waiting) >= self.settings.max_waiting:
            return "full"  # not kept: it asks again
        at = len(self.waiting)
        if accepted_at is not None:
            while at > 0 and _older(accepted_at, self.waiting[at - 1].accepted_at):
                at -= 1
        waiting = Waiting(
            delivery=delivery, key=key, accepted_at=accepted_at, ask=number, lead_s=lead_s
        )
        self.waiting.insert(at, waiting)
        return "waiting" if queued else "full"

    def attempted(
        self, delivery: str, outcome: Outcome, now: datetime, hold_until: datetime | None = None
    ) -> None:
        """An attempt under ``delivery``'s permit ended; ``hold_until`` is a ``Retry-After``
        that holds the whole lane."""
        probe = any(lease.probe for lease in self.leases if lease.delivery == delivery)
        self.leases = [lease for lease in self.leases if lease.delivery != delivery]
        if outcome == "succeeded":
            self.last_success_at = now
            self.consecutive_failures = 0
            if self.circuit_open:
                self.circuit_open, self.probe_after, self.failed_probes = False, None, 0
                self.slow_start = 1  # the backlog drains from one in flight
            elif self.slow_start is not None:
                self.slow_start += 1
            if self.slow_start is not None and self.slow_start >= self.settings.max_in_flight:
                self.slow_start = None
        elif outcome == "receiver_failed":
            self.last_failure_at = now
            self.consecutive_failures += 1
            if self.circuit_open and probe:
                self.failed_probes += 1
                longest = PROBE_MAX if self.short_waits else PROBE_MAX_BEFORE
                wait = min(PROBE_FIRST * 2 ** min(self.failed_probes, 16), longest)
                self.probe_after = now + wait
            elif not self.circuit_open and 0 < self.settings.breaker_failures <= (
                self.consecutive_failures
            ):
                self._open(now)
        self._hold(hold_until)

    def trip(self, now: datetime, hold_until: datetime | None = None) -> None:
        """A worker saw the endpoint (without a lane then) fail ``breaker_failures`` times in
        a row, or name a ``Retry-After`` on a 429 or 503 (``hold_until``)."""
        self.tripped_at = now
        self.settings = self.settings.model_copy(update={"tripped": True})
        if hold_until is not None:
            self._hold(hold_until)
        elif self.settings.breaker_failures and not self.circuit_open:
            self.consecutive_failures = max(
                self.consecutive_failures, self.settings.breaker_failures
            )
            self._open(now)

    def recovered(self, now: datetime) -> bool:
        """Whether a lane a worker tripped is healthy again: a success since, the circuit
        closed, no hold, and the slow start over (or nothing left to drain)."""
        return (
            self.settings.tripped
            and not self.circuit_open
            and (self.slow_start is None or not (self.waiting or self.leases))
            and not self._holding(now)
            and self.consecutive_failures == 0
            and self.last_success_at is not None
            and (self.tripped_at is None or self.last_success_at >= self.tripped_at)
        )

    def holding(self, now: datetime) -> bool:
        """Whether a ``Retry-After`` holds the lane now (a lane that ran before permits were
        spaced out ended idle all the same)."""
        return self.spaced and self._holding(now)

    def untripped(self) -> None:
        """The endpoint's deliveries take the usual path again (those here finish here)."""
        self.settings = self.settings.model_copy(update={"tripped": False})

    def _open(self, now: datetime) -> None:
        self.circuit_open, self.slow_start = True, None
        self.failed_probes, self.probe_after = 0, now + PROBE_FIRST

    def _hold(self, hold_until: datetime | None) -> None:
        if self.settings.winding_down:
            return  # every delivery goes, to meet its endpoint's end
        if hold_until is not None and (self.hold_until is None or hold_until > self.hold_until):
            self.hold_until = hold_until

    def _holding(self, now: datetime) -> bool:
        return self.hold_until is not None and now < self.hold_until

    def ended(self, delivery: str) -> None:
        """``delivery`` succeeded, failed, or was cancelled: it asks no more, and the next of
        its ordering key may go."""
        self.waiting = [w for w in self.waiting if w.delivery != delivery]
        self.leases = [lease for lease in self.leases if lease.delivery != delivery]
        self.silent.pop(delivery, None)
        for key, queue in list(self.queues.items()):
            if delivery in queue:
                queue.remove(delivery)
                if not queue:
                    del self.queues[key]

    def grant(self, now: datetime, at_most: int | None = None) -> list[Lease]:
        """The permits to hand out now (``at_most`` of them), each taken off the waiting list.

        Leases past their time are taken back first (their attempts' outcomes are lost). A
        delivery that asked for a lead longer than the rate's next slot is from now lets
        the others waiting take the sooner slots: it gets the first slot its lead allows.
        """
        self.leases = [lease for lease in self.leases if lease.until > now]
        if self.settings.paused or self._holding(now) or self._probe_waits(now):
            return []
        granted: list[Lease] = []
        heads = self._heads()
        held_back: list[Waiting] = []
        for waiting in list(self.waiting):
            if not self._room(granted, at_most):
                break
            start = self._rate_allows_at(now)
            if start > now + self._lookahead():
                break
            if heads is not None and waiting.delivery not in heads:
                continue  # one accepted before it, of its key, has not ended
            if self._lookahead():
                start = max(start, now + (LEAD if self.short_waits else LEAD_BEFORE))
                if self.honours_leads and start < now + _lead(waiting.lead_s):
                    held_back.append(waiting)
                    continue
            granted.append(self._lease(waiting, start))
        else:
            # None of the others could go: the held back take the slots their leads allow
            # (planned starts stay in order: the rate's windows count back from the latest).
            for waiting in held_back:
                start = self._rate_allows_at(now)
                if not self._room(granted, at_most) or start > now + self._lookahead():
                    break
                start = max(start, now + _lead(waiting.lead_s), *self.recent[-1:])
                granted.append(self._lease(waiting, start))
        return granted

    def _room(self, granted: list[Lease], at_most: int | None) -> bool:
        """Whether another permit may go now (in flight, and in this batch)."""
        if len(self.leases) >= self._in_flight_limit():
            return False
        return at_most is None or len(granted) < at_most

    def _lease(self, waiting: Waiting, start: datetime) -> Lease:
        """Grant ``waiting`` its permit, planned at ``start`` (if the lane plans ahead)."""
        lease = Lease(
            delivery=waiting.delivery,
            until=start + timedelta(seconds=self.settings.lease_s),
            key=waiting.key,
            ask=waiting.ask,
            start_at=start if self._lookahead() else None,
            probe=self.circuit_open,
        )
        if self.settings.rate_limit_per_s is not None:
            self.recent = [*self.recent, start][-self._burst() :]
        self.waiting.remove(waiting)
        self.leases.append(lease)
        return lease

    def heads_to_check(self, now: datetime) -> list[str]:
        """The ``fifo`` queue heads silent long enough to look at (whether their delivery
        still runs), the longest silent first."""
        self._note_silent_heads(now)
        due = [(head.since, d) for d, head in self.silent.items() if head.due_at() <= now]
        return [delivery for _, delivery in sorted(due)]

    def checked(self, seen: dict[str, Seen], now: datetime) -> list[str]:
        """What a look at silent queue heads found; the deliveries that left their queues
        (ended, or never started within ``NEVER_STARTED_GRACE``)."""
        gone = []
        for delivery, found in seen.items():
            head = self.silent.get(delivery)
            if head is None:
                continue  # it asked meanwhile
            never_started = found == "not_found" and now - head.since >= NEVER_STARTED_GRACE
            if found == "ended" or never_started:
                self.ended(delivery)
                gone.append(delivery)
            else:
                self.silent[delivery] = head.model_copy(
                    update={"checks": head.checks + 1, "looked_at": now}
                )
        return gone

    def wake_at(self, now: datetime) -> datetime | None:
        """When the lane may grant again with no new input (a token, the end of a hold, a
        lease to take back, a silent queue head to look at); ``None`` if only an input can
        change anything."""
        self._note_silent_heads(now)
        times = [lease.until for lease in self.leases]
        times += [head.due_at() for head in self.silent.values()]
        if self.spaced and self._holding(now) and self.hold_until is not None:
            times.append(self.hold_until)  # the end of a hold may end the trip, or the lane
        if self.waiting and not self.settings.paused:
            if self._holding(now) and self.hold_until is not None:
                times.append(self.hold_until)
            elif self._probe_waits(now) and self.probe_after is not None:
                times.append(self.probe_after)
            elif self._rate_allows_at(now) > now + self._lookahead():
                times.append(self._rate_allows_at(now) - self._lookahead())
        return min(times) if times else None

    def state(self, now: datetime) -> State:
        """What the health read says."""
        if self.settings.paused:
            return "paused"
        if self.circuit_open:
            return "half_open" if any(lease.probe for lease in self.leases) else "open"
        return "healthy"

    def _probe_waits(self, now: datetime) -> bool:
        return (
            self.spaced
            and self.circuit_open
            and self.probe_after is not None
            and now < self.probe_after
        )

    def _note_silent_heads(self, now: datetime) -> None:
        """Start timing the silence of each queue head that neither waits nor holds a permit
        from now (when the lane first sees it so); forget heads that ask or left."""
        active = {w.delivery for w in self.waiting} | {lease.delivery for lease in self.leases}
        heads = {queue[0] for queue in self.queues.values() if queue}
        self.silent = {d: h for d, h in self.silent.items() if d in heads and d not in active}
        for head in sorted(heads - active - self.silent.keys()):
            self.silent[head] = SilentHead(since=now)

    def _in_flight_limit(self) -> int:
        if self.circuit_open:
            return 1
        if self.slow_start is not None:
            return min(self.slow_start, self.settings.max_in_flight)
        return self.settings.max_in_flight

    def _heads(self) -> set[str] | None:
        """``fifo``: the first of each queue (whatever key it asks with: the queue it was
        placed in counts); ``None`` if the lane keeps no order."""
        if self.settings.ordering != "fifo":
            return None
        return {queue[0] for queue in self.queues.values() if queue}

    def _holds(self, delivery: str) -> bool:
        return any(lease.delivery == delivery for lease in self.leases)

    def _burst(self) -> int:
        rate = self.settings.rate_limit_per_s
        return max(1, math.floor(rate)) if rate is not None else 0

    def _lookahead(self) -> timedelta:
        """How far ahead a rate-limited lane plans its permits' starts (none for lanes that
        ran before permits were spaced out)."""
        return LOOKAHEAD if self.spaced and self.settings.rate_limit_per_s else timedelta(0)

    def _rate_allows_at(self, now: datetime) -> datetime:
        """When the rate lets the next permit go (``now`` if it does already).

        Two sliding windows: at most ``burst`` permits in ``burst / rate`` seconds, and, to
        spread them (an attempt starts a little after its grant, and late starters would
        otherwise bunch up with the next burst), at most ``step`` in ``step / rate``, a
        step being a fifth of a second's worth.
        """
        rate = self.settings.rate_limit_per_s
        if rate is None:
            return now
        allowed = now
        sizes = [self._burst()]
        if self.spaced:
            sizes.append(max(1, math.floor(rate * PACE_S)))
        for size in sizes:
            if len(self.recent) >= size:
                # A millisecond past the window: a grant on its very edge would make one
                # closed window hold two.
                window = timedelta(seconds=size / rate, milliseconds=1)
                allowed = max(allowed, self.recent[-size] + window)
        return allowed


def _lead(lead_s: float) -> timedelta:
    """A lead asked for, at most ``LOOKAHEAD`` (one below 0, or not a number, is none)."""
    return timedelta(seconds=min(lead_s, LOOKAHEAD.total_seconds())) if lead_s > 0 else timedelta(0)


def _older(accepted_at: datetime, other: datetime | None) -> bool:
    return other is not None and accepted_at < other

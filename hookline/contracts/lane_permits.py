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
  plus a second's refill in the same second).
- **Order.** For a ``fifo`` endpoint each ordering key is a queue in acceptance order, and
  only its oldest delivery that has not ended may attempt; without a key, the endpoint is
  one queue. Other endpoints grant oldest accepted first.
- **Pause.** A paused lane grants nothing; on resume it grants in the order above, at the
  lane's pace.
- **Circuit breaker.** ``breaker_failures`` failed attempts in a row (connection errors,
  timeouts, 5xx, 429) open the circuit: one probe at a time. The first success closes it,
  and the in-flight limit then grows by one a success from 1 back to ``max_in_flight``.
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


class LaneSettings(BaseModel):
    """An endpoint's lane settings."""

    model_config = ConfigDict(frozen=True)

    rate_limit_per_s: float | None = Field(default=None, gt=0)
    max_in_flight: int = Field(default=10, ge=1)
    ordering: Literal["none", "fifo"] = "none"
    paused: bool = False
    breaker_failures: int = Field(default=5, ge=1)
    lease_s: float = Field(default=60.0, gt=0)
    """How long a permit holds without its attempt's outcome: the attempt timeout and a
    margin."""


class Lease(BaseModel):
    """A permit out: one attempt of ``delivery`` may be under way."""

    delivery: str
    until: datetime
    probe: bool = False
    """Granted while the circuit was open."""


class Waiting(BaseModel):
    """A delivery that asked for a permit and has none yet."""

    delivery: str
    key: str = ""
    accepted_at: datetime | None = None
    """When its event was accepted: the lane grants oldest first."""


class LanePermits(BaseModel):
    """A lane's whole state: what it needs to decide, and nothing else."""

    settings: LaneSettings = Field(default_factory=LaneSettings)
    waiting: list[Waiting] = Field(default_factory=list)
    """Oldest accepted first (in the order they asked, among those of one time)."""
    leases: list[Lease] = Field(default_factory=list)
    queues: dict[str, list[str]] = Field(default_factory=dict)
    """``fifo`` only: each ordering key's deliveries not yet ended, in acceptance order."""
    recent: list[datetime] = Field(default_factory=list)
    """The times of the last ``burst`` permits (rate-limited lanes only)."""
    consecutive_failures: int = 0
    circuit_open: bool = False
    slow_start: int | None = None
    """After the circuit closed: the in-flight limit, until it reaches ``max_in_flight``."""
    hold_until: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None

    def configure(self, settings: LaneSettings, now: datetime) -> None:
        """Apply the endpoint's settings as they are now."""
        self.settings = settings
        if settings.rate_limit_per_s is None:
            self.recent = []
        else:
            self.recent = self.recent[-self._burst() :]

    def enqueue(self, delivery: str, key: str = "") -> None:
        """Place a newly accepted delivery of a ``fifo`` lane in its key's queue (once)."""
        queue = self.queues.setdefault(key, [])
        if delivery not in queue:
            queue.append(delivery)

    def ask(self, delivery: str, key: str = "", accepted_at: datetime | None = None) -> bool:
        """``delivery`` wants a permit for its next attempt (asking twice is asking once).

        Returns:
            Whether it holds a permit already (its grant may need sending again).
        """
        if self.settings.ordering == "fifo":
            self.enqueue(delivery, key)  # accepted before the lane knew of it
        if self._holds(delivery):
            return True
        if not any(w.delivery == delivery for w in self.waiting):
            waiting = Waiting(delivery=delivery, key=key, accepted_at=accepted_at)
            at = len(self.waiting)
            if accepted_at is not None:
                while at > 0 and _older(accepted_at, self.waiting[at - 1].accepted_at):
                    at -= 1
            self.waiting.insert(at, waiting)
        return False

    def attempted(
        self, delivery: str, outcome: Outcome, now: datetime, hold_until: datetime | None = None
    ) -> None:
        """An attempt under ``delivery``'s permit ended; ``hold_until`` is a ``Retry-After``
        that holds the whole lane."""
        self.leases = [lease for lease in self.leases if lease.delivery != delivery]
        if outcome == "succeeded":
            self.last_success_at = now
            self.consecutive_failures = 0
            if self.circuit_open:
                self.circuit_open = False
                self.slow_start = 1  # the backlog drains from one in flight
            elif self.slow_start is not None:
                self.slow_start += 1
            if self.slow_start is not None and self.slow_start >= self.settings.max_in_flight:
                self.slow_start = None
        elif outcome == "receiver_failed":
            self.last_failure_at = now
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.settings.breaker_failures:
                self.circuit_open = True
                self.slow_start = None
        if hold_until is not None and (self.hold_until is None or hold_until > self.hold_until):
            self.hold_until = hold_until

    def ended(self, delivery: str) -> None:
        """``delivery`` succeeded, failed, or was cancelled: it asks no more, and the next of
        its ordering key may go."""
        self.waiting = [w for w in self.waiting if w.delivery != delivery]
        self.leases = [lease for lease in self.leases if lease.delivery != delivery]
        for key, queue in list(self.queues.items()):
            if delivery in queue:
                queue.remove(delivery)
                if not queue:
                    del self.queues[key]

    def grant(self, now: datetime, at_most: int | None = None) -> list[Lease]:
        """The permits to hand out now (``at_most`` of them), each taken off the waiting list.

        Leases past their time are taken back first (their attempts' outcomes are lost).
        """
        self.leases = [lease for lease in self.leases if lease.until > now]
        if self.settings.paused or (self.hold_until is not None and now < self.hold_until):
            return []
        granted: list[Lease] = []
        for waiting in list(self.waiting):
            if len(self.leases) >= self._in_flight_limit():
                break
            if at_most is not None and len(granted) >= at_most:
                break
            if self._rate_allows_at(now) > now:
                break
            if not self._first_of_its_key(waiting):
                continue
            lease = Lease(
                delivery=waiting.delivery,
                until=now + timedelta(seconds=self.settings.lease_s),
                probe=self.circuit_open,
            )
            if self.settings.rate_limit_per_s is not None:
                self.recent = [*self.recent, now][-self._burst() :]
            self.waiting.remove(waiting)
            self.leases.append(lease)
            granted.append(lease)
        return granted

    def wake_at(self, now: datetime) -> datetime | None:
        """When the lane may grant again with no new input (a token, the end of a hold, a
        lease to take back); ``None`` if only an input can change anything."""
        times = [lease.until for lease in self.leases]
        if self.waiting and not self.settings.paused:
            if self.hold_until is not None and now < self.hold_until:
                times.append(self.hold_until)
            elif self._rate_allows_at(now) > now:
                times.append(self._rate_allows_at(now))
        return min(times) if times else None

    def state(self, now: datetime) -> State:
        """What the health read says."""
        if self.settings.paused:
            return "paused"
        if self.circuit_open:
            return "half_open" if any(lease.probe for lease in self.leases) else "open"
        return "healthy"

    def _in_flight_limit(self) -> int:
        if self.circuit_open:
            return 1
        if self.slow_start is not None:
            return min(self.slow_start, self.settings.max_in_flight)
        return self.settings.max_in_flight

    def _first_of_its_key(self, waiting: Waiting) -> bool:
        if self.settings.ordering != "fifo":
            return True
        queue = self.queues.get(waiting.key, [])
        return bool(queue) and queue[0] == waiting.delivery

    def _holds(self, delivery: str) -> bool:
        return any(lease.delivery == delivery for lease in self.leases)

    def _burst(self) -> int:
        rate = self.settings.rate_limit_per_s
        return max(1, math.floor(rate)) if rate is not None else 0

    def _rate_allows_at(self, now: datetime) -> datetime:
        """When the rate lets the next permit go (``now`` if it does already)."""
        rate = self.settings.rate_limit_per_s
        if rate is None or len(self.recent) < self._burst():
            return now
        # A millisecond past the window: a grant on its very edge would make one closed second
        # hold two bursts.
        window = timedelta(seconds=self._burst() / rate, milliseconds=1)
        return max(now, self.recent[0] + window)


def _older(accepted_at: datetime, other: datetime | None) -> bool:
    return other is not None and accepted_at < other

"""What a delivery does when its permits expire: how far ahead it asks for the next one, and
how late it may start under it.

A permit planned ahead (a rate-limited lane's) whose attempt cannot start within
``PERMIT_TOLERANCE`` of its planned start sends nothing: its worker was late, and a late start
would bunch up with the next slots at the receiver. The delivery asks again, for a permit
planned as much further ahead as it was late, at least doubling the lead each time, up to
``MAX_ASK_LEAD`` (how far ahead a lane plans). Lateness that a lead cannot help (held up
behind the endpoint's slots in the worker, or a worker whose clock runs far ahead) must not
keep it from ever sending: once a permit planned that far ahead expired, the next may start
``LATE_PERMIT_TOLERANCE`` late, the one after that ``LAST_RESORT_TOLERANCE`` late, and the
next however late (as every permit after an expired one was before 2026-12).

Pure and deterministic: the delivery workflow keeps one in its state.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from hookline.contracts.lane_permits import LEAD, LOOKAHEAD

PERMIT_TOLERANCE = timedelta(milliseconds=190)
"""How late an attempt may start under a permit planned ahead, as a rule."""
MAX_ASK_LEAD = LOOKAHEAD
"""The furthest ahead a delivery whose permits expired asks its lane to plan the next one."""
LATE_PERMIT_TOLERANCE = timedelta(seconds=2)
"""How late an attempt may start once a permit planned ``MAX_ASK_LEAD`` ahead expired."""
LAST_RESORT_TOLERANCE = timedelta(seconds=5)
"""How late an attempt may start once that did not help either. Below the 8 s or so by which
an attempt made again after its worker died (its workflow task timed out, 10 s) misses a
permit planned ``MAX_ASK_LEAD`` ahead, so that it does not go out among others' slots."""


class LateStarts(BaseModel):
    """A delivery's permits that expired in a row, and what follows from them."""

    model_config = ConfigDict(frozen=True)

    expired: int = 0
    """Permits that expired in a row."""
    lead_s: float = 0.0
    """How far ahead of its grant to ask for the next permit's start (0: the lane's usual
    ``LEAD``)."""
    expired_at_max: int = 0
    """Of those, how many were planned ``MAX_ASK_LEAD`` ahead."""

    def after_expiry(self, late_by_s: float) -> LateStarts:
        """The next permit's terms after one that started ``late_by_s`` seconds late.

        A first permit more than ``MAX_ASK_LEAD`` late was most likely made again after its
        worker died (its workflow task timed out first): it asks with the usual lead.
        """
        max_lead = MAX_ASK_LEAD.total_seconds()
        at_max = self.lead_s >= max_lead
        if self.expired == 0 and late_by_s > max_lead:
            lead = 0.0
        else:
            base = max(self.lead_s, LEAD.total_seconds())
            lead = min(max(2 * base, base + min(late_by_s, max_lead)), max_lead)
        return LateStarts(
            expired=self.expired + 1,
            lead_s=lead,
            expired_at_max=self.expired_at_max + int(at_max),
        )

    def tolerance_s(self) -> float | None:
        """How late, in seconds, the next attempt may start after its permit's planned start
        (``None``: however late)."""
        tolerances = (PERMIT_TOLERANCE, LATE_PERMIT_TOLERANCE, LAST_RESORT_TOLERANCE)
        if self.expired_at_max >= len(tolerances):
            return None
        return tolerances[self.expired_at_max].total_seconds()

    def strict(self) -> bool:
        """Whether the next attempt keeps to the usual tolerance (what a worker from before
        ``start_tolerance_s`` reads: it sends a permit that is not strict however late)."""
        return self.expired_at_max == 0

"""What a delivery does when its permits expire (``LateStarts``): it asks for the next one
planned further ahead and keeps to it, and however late its worker always is, it still sends
after a few expiries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hookline.contracts.late_permits import (
    LAST_RESORT_TOLERANCE,
    LATE_PERMIT_TOLERANCE,
    MAX_ASK_LEAD,
    PERMIT_TOLERANCE,
    LateStarts,
)

MAX_LEAD_S = MAX_ASK_LEAD.total_seconds()


def _expiries_until_sent(late_by_s: float, lead_helps: bool = True) -> tuple[int, list[float]]:
    """A worker always ``late_by_s`` behind a permit's planned start (less the lead asked for,
    if ``lead_helps``: it was slow to hear of its permit): expiries until an attempt goes,
    and the leads asked for."""
    late, leads = LateStarts(), list[float]()
    for expiries in range(20):
        behind = max(0.0, late_by_s - late.lead_s) if lead_helps else late_by_s
        tolerance = late.tolerance_s()
        if tolerance is None or behind <= tolerance:
            return expiries, leads
        late = late.after_expiry(behind)
        leads.append(late.lead_s)
    raise AssertionError(f"never sent: {late}")


def test_a_late_worker_asks_for_as_much_more_lead_and_is_then_on_time() -> None:
    # 0.4 s late: the next permit is planned 0.1 + 0.4 s after its grant, kept to strictly.
    assert _expiries_until_sent(0.4) == (1, [0.5])
    assert LateStarts().after_expiry(0.4).tolerance_s() == PERMIT_TOLERANCE.total_seconds()


def test_the_lead_at_least_doubles_up_to_how_far_ahead_a_lane_plans() -> None:
    leads = [late.lead_s for late in _chain(0.2, 6)]

    assert leads == pytest.approx([0.3, 0.6, 1.2, 2.0, 2.0, 2.0])


def test_a_worker_always_far_behind_still_sends_after_a_few_expiries() -> None:
    # Lateness a lead cannot help (held up behind its endpoint's slots in the worker, or a
    # clock far ahead): strict until a permit planned 2 s ahead expired, then 2 s, then 5 s,
    # then however late.
    for late_by, lead_helps, expected in (
        (0.4, False, 4),
        (2.5, False, 4),
        (4.5, False, 4),
        (9.0, False, 5),
        (60.0, False, 5),
        (2.5, True, 3),  # the first looks like a crash, the second asks 2 s ahead: 0.5 late
        (3.5, True, 3),
    ):
        expiries, leads = _expiries_until_sent(late_by, lead_helps)
        assert expiries == expected, (late_by, lead_helps, expiries, leads)
        assert leads[-1] == MAX_LEAD_S
    chain = _chain(6.0, 5)
    # The first 6 s late looks like a crash (the usual lead); the second asks 2 s ahead.
    assert [late.lead_s for late in chain] == [0.0, *[MAX_LEAD_S] * 4]
    assert [late.tolerance_s() for late in chain] == [
        *(t.total_seconds() for t in (PERMIT_TOLERANCE, PERMIT_TOLERANCE)),
        *(t.total_seconds() for t in (LATE_PERMIT_TOLERANCE, LAST_RESORT_TOLERANCE)),
        None,
    ]
    # A worker from before (which reads strict_start only) keeps to the usual tolerance
    # until the delivery allows more, then sends however late.
    assert [late.strict() for late in chain] == [True, True, False, False, False]


def test_a_permit_made_again_after_its_worker_died_asks_with_the_usual_lead() -> None:
    # Its workflow task timed out (10 s) before another worker made the attempt again: it
    # is far past its planned start, through no slowness in hearing of its permit.
    late = LateStarts().after_expiry(10.3)

    assert (late.lead_s, late.tolerance_s()) == (0.0, PERMIT_TOLERANCE.total_seconds())
    # A crash once the delivery allowed 5 s: its re-run, about 8 s past a permit planned 2 s
    # ahead, sends nothing.
    assert LAST_RESORT_TOLERANCE < timedelta(seconds=10) - MAX_ASK_LEAD - timedelta(seconds=1)


def _chain(late_by_s: float, count: int) -> list[LateStarts]:
    late, chain = LateStarts(), []
    for _ in range(count):
        late = late.after_expiry(late_by_s)
        chain.append(late)
    return chain

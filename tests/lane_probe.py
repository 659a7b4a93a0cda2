"""A stand-in for a delivery in the lane's tests: a real workflow that records each permit the
lane grants it, reports each attempt at once, asks again until it has made ``attempts``, and
then tells the lane it ended. (Its first ask is the test's signal-with-start, as a delivery's
will be its activity's.)"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from hookline.contracts.lanes import LaneAsk, LaneAttempted, LaneEnded, LaneGrant
    from hookline.contracts.names import (
        LANE_ASK_SIGNAL,
        LANE_ATTEMPTED_SIGNAL,
        LANE_ENDED_SIGNAL,
        LANE_GRANTED_SIGNAL,
    )


class ProbeInput(BaseModel):
    lane_id: str
    attempts: int = 1
    """Permits to take before ending, each attempt reported ``succeeded``."""


@workflow.defn(name="LaneProbe")
class LaneProbe:
    """Takes ``attempts`` permits from its lane, then tells the lane it ended."""

    def __init__(self) -> None:
        self._granted: list[datetime] = []

    @workflow.signal(name=LANE_GRANTED_SIGNAL)
    def granted(self, grant: LaneGrant) -> None:
        # When the lane planned the attempt to start (a rate-limited lane plans ahead), else
        # when the grant came. Not when it came if that was later: a worker sends nothing
        # that late (tests/test_permit_start.py), and a grant slow to arrive on a loaded
        # machine is the machine's, not the lane's.
        self._granted.append(grant.start_at or workflow.now())

    @workflow.query
    def grants(self) -> list[datetime]:
        return self._granted

    @workflow.run
    async def run(self, probe: ProbeInput) -> list[datetime]:
        lane = workflow.get_external_workflow_handle(probe.lane_id)
        me = workflow.info().workflow_id
        for made in range(1, probe.attempts + 1):
            await workflow.wait_condition(lambda made=made: len(self._granted) >= made)  # type: ignore[misc]
            await lane.signal(
                LANE_ATTEMPTED_SIGNAL, LaneAttempted(delivery=me, outcome="succeeded")
            )
            if made < probe.attempts:
                await lane.signal(LANE_ASK_SIGNAL, LaneAsk(delivery=me))
        await lane.signal(LANE_ENDED_SIGNAL, LaneEnded(delivery=me))
        return self._granted

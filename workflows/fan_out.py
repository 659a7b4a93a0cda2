"""FanOutWorkflow: starts the deliveries of an event with many endpoints, in batches, so that
the API answers after one workflow start instead of one per endpoint."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from hookline.activities.fan_out import FanOutActivities
    from hookline.contracts.delivery import EventFanOut
    from hookline.contracts.names import FAN_OUT_WORKFLOW

START_BATCH = 100
"""Deliveries one activity starts; a batch retried after a fault starts only what is missing."""
BATCH_TIMEOUT = timedelta(minutes=2)
BATCH_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
"""Retried until the batch is started: an accepted event's deliveries are never dropped."""


@workflow.defn(name=FAN_OUT_WORKFLOW)
class FanOutWorkflow:
    """Starts one delivery workflow per target of an event; returns how many."""

    @workflow.run
    async def run(self, event: EventFanOut) -> int:
        endpoint_ids = event.endpoint_ids
        for first in range(0, len(endpoint_ids), START_BATCH):
            batch = endpoint_ids[first : first + START_BATCH]
            await workflow.execute_activity_method(
                FanOutActivities.start_deliveries,
                event.model_copy(update={"endpoint_ids": batch}),
                start_to_close_timeout=BATCH_TIMEOUT,
                retry_policy=BATCH_RETRY,
                summary=f"start deliveries {first + 1}-{first + len(batch)} of {len(endpoint_ids)}",
            )
        return len(endpoint_ids)

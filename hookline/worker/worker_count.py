"""How many workers poll the task queue: each takes its share of an endpoint's limit."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from hookline.activities.endpoint_slots import EndpointSlots

log = logging.getLogger(__name__)

COUNT_EVERY = timedelta(seconds=15)
"""How often a worker counts the workers on its task queue."""
POLLED_WITHIN = timedelta(minutes=2)
"""A worker counts if it polled the task queue this recently (a long poll lasts up to a
minute; Temporal keeps a poller on the list for 5 minutes after it stopped). One that died
counts until then: the others' shares stay smaller meanwhile, never larger."""


async def count_workers(client: Client, task_queue: str, identity: str) -> int:
    """The workers polling ``task_queue`` for activity tasks now, counting the one named
    ``identity`` (this one: it may not have polled yet)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    now = datetime.now(UTC)
    polling = {
        poller.identity
        for poller in described.pollers
        if not poller.HasField("last_access_time")
        or now - poller.last_access_time.ToDatetime(tzinfo=UTC) <= POLLED_WITHIN
    }
    return len(polling | {identity})


async def keep_counting_workers(
    client: Client,
    task_queue: str,
    identity: str,
    slots: EndpointSlots,
    every: timedelta = COUNT_EVERY,
) -> None:
    """Count the workers on ``task_queue`` every ``every`` and give ``slots`` the count,
    until cancelled. While Temporal does not answer, the last count stands."""
    counted = 0
    while True:
        try:
            workers = await count_workers(client, task_queue, identity)
        except RPCError as err:
            log.warning("could not count the workers on %s: %s", task_queue, err.message)
        except Exception:  # the count must go on: the last one stands meanwhile
            log.exception("could not count the workers on %s", task_queue)
        else:
            if workers != counted:
                slots.workers_counted(workers)
                log.info(
                    "%d workers on task queue %s: this one opens at most %d POSTs at once "
                    "to an endpoint without a lane",
                    workers,
                    task_queue,
                    slots.share,
                )
                counted = workers
        await asyncio.sleep(every.total_seconds())

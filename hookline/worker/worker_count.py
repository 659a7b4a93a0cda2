"""How many workers poll the task queue: each takes its share of an endpoint's limit."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import DescribeTaskQueueMode, TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
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
    ``identity`` (this one: it may not have polled yet).

    The enhanced description covers every partition of the queue (the plain one lists the
    pollers of one partition only: a worker with few pollers can be missing from it). Poll
    times are the server's, and so is "now": the latest of them.
    """
    activity = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
            task_queue_types=[activity],
            report_pollers=True,
        )
    )
    pollers: list[PollerInfo] = [
        poller
        for version in described.versions_info.values()
        for kind, info in version.types_info.items()
        if kind == activity
        for poller in info.pollers
    ] or list(described.pollers)  # a server without the enhanced mode
    polled: dict[str, datetime] = {}  # each worker's latest poll
    for poller in pollers:
        at = poller.last_access_time.ToDatetime(tzinfo=UTC)
        polled[poller.identity] = max(at, polled.get(poller.identity, at))
    latest = max(polled.values(), default=None)
    recent = {name for name, at in polled.items() if latest is None or latest - at <= POLLED_WITHIN}
    return len(recent | {identity})


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

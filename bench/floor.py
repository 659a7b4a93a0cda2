"""The naive Temporal floor: one workflow running one activity that signs and POSTs.

``python -m bench.floor ADDRESS TASK_QUEUE [POLLERS]`` runs its worker. It is what anyone
would write first, with no tuning, so Hookline's throughput can be compared with it on the
same server. With POLLERS its worker process is tuned as Hookline's is (that many polls, no
gRPC compression, uvloop), to show what that tuning alone buys.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

# As the samples do: non-workflow imports pass through the sandbox instead of being
# re-imported for every workflow run (a fair floor, not a strawman).
with workflow.unsafe.imports_passed_through():
    import aiohttp
    import uvloop
    from temporalio.client import Client
    from temporalio.service import GrpcCompression
    from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

    from hookline.config.settings import TASK_QUEUE_POLL_SHARE
    from hookline.contracts.signing import sign


@dataclass
class FloorInput:
    url: str
    event_id: str
    body: str
    secret: str


_shared: list[aiohttp.ClientSession] = []


def _session() -> aiohttp.ClientSession:
    # One pooled session per worker process, as any fair baseline would have.
    if not _shared:
        _shared.append(aiohttp.ClientSession())
    return _shared[0]


@activity.defn
async def floor_post(job: FloorInput) -> int:
    timestamp = int(time.time())
    body = job.body.encode()
    headers = {
        "content-type": "application/json",
        "webhook-id": job.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(job.secret, job.event_id, timestamp, body),
    }
    async with _session().post(job.url, data=body, headers=headers) as response:
        if response.status >= 300:
            raise RuntimeError(f"HTTP {response.status}")
        return response.status


@workflow.defn
class FloorWorkflow:
    @workflow.run
    async def run(self, job: FloorInput) -> int:
        return await workflow.execute_activity(
            floor_post,
            job,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1)),
        )


async def connect(address: str, tuned: bool) -> Client:
    """A client with the SDK's defaults or, ``tuned``, without gRPC compression as
    Hookline's processes connect to a Temporal next to them."""
    if tuned:
        return await Client.connect(address, grpc_compression=GrpcCompression.NONE)
    return await Client.connect(address)


async def run_worker(address: str, task_queue: str, pollers: int | None) -> None:
    """Run the floor's worker: the SDK's defaults, or tuned as Hookline's worker is, with
    ``pollers`` polls."""
    client = await connect(address, tuned=pollers is not None)
    tuning: dict[str, Any] = {}
    if pollers is not None:
        tuning = {
            "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(pollers),
            "nonsticky_to_sticky_poll_ratio": TASK_QUEUE_POLL_SHARE,
            "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(pollers),
        }
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow],
        activities=[floor_post],
        **tuning,
    )
    await worker.run()


if __name__ == "__main__":
    polls = int(sys.argv[3]) if len(sys.argv) > 3 else None
    main = run_worker(sys.argv[1], sys.argv[2], polls)
    if polls is None:
        asyncio.run(main)
    else:
        uvloop.run(main)

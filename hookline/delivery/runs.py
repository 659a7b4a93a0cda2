"""Which runs of delivery workflows count: the failed ones, and only a delivery's latest run."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode


async def is_latest_run(client: Client, execution: WorkflowExecution) -> bool:
    """Whether ``execution`` is still its delivery's latest run: a manual retry of a failed
    delivery starts a new run, which supersedes the failed one. A run Temporal no longer
    knows (past retention since it was listed) is not."""
    try:
        latest = await client.get_workflow_handle(execution.id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return latest.run_id == execution.run_id

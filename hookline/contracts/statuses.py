"""A delivery's status words, and the one rule that reads them off a workflow run.

The API, the CLI, ``HooklineStatus`` in the Temporal UI and the visibility queries all speak
these words; ``status_of_run`` is the only place that turns Temporal's execution status into
one of them.
"""

from __future__ import annotations

from temporalio.client import WorkflowExecutionStatus

PENDING = "pending"
"""Accepted; no attempt has failed yet (its first may be under way or due)."""
RETRYING = "retrying"
"""An attempt failed and the delivery goes on: waiting for its next attempt, or making it."""
PAUSED = "paused"
"""Waiting in its endpoint's paused lane: nothing is sent, and the wait does not use up its
retry window."""
SUCCEEDED = "succeeded"
FAILED = "failed"
"""Retries exhausted or refused (410 Gone, a deleted or disabled endpoint, a refused
destination), or ended by an operator (terminated, cancelled, timed out). A failed delivery's
run stays open for ``failed_hold_s`` awaiting a manual retry, then closes as failed."""
UNKNOWN = "unknown"
"""Gone from Temporal: past the namespace's retention."""

STATUSES = (PENDING, RETRYING, PAUSED, SUCCEEDED, FAILED)
"""The statuses a delivery can be listed and filtered by."""


def status_of_run(execution: WorkflowExecutionStatus | None, recorded: str | None) -> str:
    """A delivery's status from its run's execution status and the status the run recorded
    (``HooklineStatus`` or its progress memo).

    Args:
        execution: Temporal's status of the run; ``None`` when visibility has none yet.
        recorded: What the run last recorded, if anything.
    """
    if execution == WorkflowExecutionStatus.RUNNING:
        # A failed delivery stays open for a while, awaiting a manual retry.
        return recorded if recorded in (RETRYING, PAUSED, FAILED) else PENDING
    if execution == WorkflowExecutionStatus.COMPLETED:
        return SUCCEEDED
    if execution is not None:
        return FAILED
    return recorded or PENDING

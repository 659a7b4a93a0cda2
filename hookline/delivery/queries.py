"""Every visibility query Hookline sends to Temporal, built in one place.

Values come from Hookline's own ids or from filters checked against a strict pattern before
they get here (``FILTER_VALUE`` in the API), so quoting them is enough.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hookline.contracts import search_attributes as sa
from hookline.contracts import statuses
from hookline.contracts.names import DELIVERY_WORKFLOW

DELIVERIES = f'WorkflowType = "{DELIVERY_WORKFLOW}"'
"""Runs of delivery workflows (not fan-outs, recoveries or the purge)."""
FAILED_RUNS = (
    '((ExecutionStatus != "Running" AND ExecutionStatus != "Completed") OR '
    f'(ExecutionStatus = "Running" AND {sa.STATUS.name} = "{statuses.FAILED}"))'
)
"""Failed runs: exhausted or refused, or ended by an operator (as ``status_of_run`` says),
closed or held open awaiting a manual retry."""
_EXECUTION_STATUS = {
    statuses.PENDING: 'ExecutionStatus = "Running"',
    statuses.RETRYING: 'ExecutionStatus = "Running"',
    statuses.PAUSED: 'ExecutionStatus = "Running"',
    statuses.SUCCEEDED: 'ExecutionStatus = "Completed"',
    statuses.FAILED: FAILED_RUNS,
}
"""Temporal's own execution status, with ``HooklineStatus`` only for a failed delivery held
open, so that deliveries an operator ended count as failed. Pending, retrying and held
failed deliveries are all running: a describe tells them apart."""


def deliveries_query(
    app_id: str,
    *,
    endpoint_id: str | None = None,
    event_type: str | None = None,
    status: str | None = None,
) -> str:
    """An app's deliveries, optionally of one endpoint, event type and status."""
    clauses = [DELIVERIES, _equals(sa.APP_ID.name, app_id)]
    if endpoint_id is not None:
        clauses.append(_equals(sa.ENDPOINT_ID.name, endpoint_id))
    if event_type is not None:
        clauses.append(_equals(sa.EVENT_TYPE.name, event_type))
    if status is not None:
        clauses.append(_EXECUTION_STATUS[status])
    return " AND ".join(clauses)


def event_deliveries_query(app_id: str, event_id: str) -> str:
    """Every run of an event's deliveries."""
    return " AND ".join((_equals(sa.APP_ID.name, app_id), _equals(sa.EVENT_ID.name, event_id)))


def failed_deliveries_query(app_id: str, endpoint_id: str, since: datetime) -> str:
    """The failed runs of an endpoint's deliveries started at or after ``since``."""
    return " AND ".join(
        (
            DELIVERIES,
            _equals(sa.ENDPOINT_ID.name, endpoint_id),
            _equals(sa.APP_ID.name, app_id),
            FAILED_RUNS,
            f'StartTime >= "{_rfc3339(since)}"',
        )
    )


def backing_off_query(task_queue: str, status: str = statuses.RETRYING) -> str:
    """Running deliveries of a task queue that failed an attempt and go on (or, with
    ``status`` ``paused``, that wait in a paused endpoint's lane)."""
    return " AND ".join(
        (
            _equals(sa.STATUS.name, status),
            'ExecutionStatus = "Running"',
            _equals("TaskQueue", task_queue),
        )
    )


def _equals(name: str, value: str) -> str:
    return f'{name} = "{value}"'


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

"""What a failed attempt counts as for its endpoint's lane (its circuit breaker)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from hookline.contracts.delivery import AttemptRecord
from hookline.workflows.delivery import _lane_outcome


def _answered(status: int) -> AttemptRecord:
    return AttemptRecord(attempt=1, at=datetime.now(UTC), status_code=status, duration_ms=5)


@pytest.mark.parametrize(
    ("failure", "record", "counted"),
    [
        (ApplicationError("timed out after 5 s", type="Timeout"), None, "receiver_failed"),
        (ApplicationError("connection refused", type="ConnectionError"), None, "receiver_failed"),
        (ApplicationError("HTTP 503", type="HttpError"), _answered(503), "receiver_failed"),
        (ApplicationError("HTTP 429", type="HttpError"), _answered(429), "receiver_failed"),
        (ApplicationError("HTTP 400", type="HttpError"), _answered(400), "refused"),
        (ApplicationError("endpoint deleted", type="EndpointDeleted"), None, "refused"),
        # Temporal's own timeout of the attempt: the POST's timeout is inside it, so the
        # worker stalled or died, which the receiver cannot help.
        (
            TimeoutError(
                "activity StartToClose timeout",
                type=TimeoutType.START_TO_CLOSE,
                last_heartbeat_details=[],
            ),
            None,
            "refused",
        ),
    ],
)
def test_only_the_receivers_own_failures_count_against_it(
    failure: FailureError, record: AttemptRecord | None, counted: str
) -> None:
    # A local activity's failure comes as it is; an activity's, wrapped.
    assert _lane_outcome(failure, record) == counted
    wrapped = ActivityError(
        "activity failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="post_signed",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    wrapped.__cause__ = failure
    assert _lane_outcome(wrapped, record) == counted

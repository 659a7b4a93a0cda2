"""Bulk recovery's I/O: list an endpoint's failed deliveries, and retry them by hand."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from hookline.config.settings import Settings
from hookline.contracts import search_attributes as sa
from hookline.contracts.names import CREATED_MEMO
from hookline.contracts.statuses import FAILED
from hookline.delivery.errors import AlreadySucceeded, DeliveryError
from hookline.delivery.manual_retry import retry_delivery
from hookline.delivery.queries import failed_deliveries_query
from hookline.delivery.runs import is_latest_run

MAX_CONCURRENT_CALLS = 16
"""Describes and retries in flight at once within one activity."""

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
Retried = Literal["retried", "skipped", "error"]


class FailedDelivery(BaseModel):
    """A delivery whose latest run failed: its workflow id and that run."""

    workflow_id: str
    run_id: str


class FailedPageRequest(BaseModel):
    """Which failed deliveries to list, and where the listing stands."""

    app_id: str
    endpoint_id: str
    since: datetime
    until: datetime
    page_size: int
    page_token: str | None = None
    """Temporal's visibility page token, base64-encoded; ``None`` for the first page."""


class FailedPage(BaseModel):
    """One page of the listing, without runs that are not a failed delivery's latest run."""

    deliveries: list[FailedDelivery]
    next_page_token: str | None


class RetryBatch(BaseModel):
    """Deliveries to retry now."""

    deliveries: list[FailedDelivery]


class RetryOutcome(BaseModel):
    """How a batch's retries went."""

    retried: int = 0
    skipped: int = 0
    """Already succeeded, or restarted since they were listed."""
    errors: int = 0


class RecoveryActivities:
    """Recovery activities, sharing the worker's Temporal client and settings."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    @activity.defn(name="find_failed_deliveries")
    async def find_failed_deliveries(self, request: FailedPageRequest) -> FailedPage:
        """List one page of the endpoint's deliveries that failed and were created in
        ``[since, until)``.

        Returns:
            The page's deliveries whose latest run is the failed one listed (a delivery retried
            since has a newer run, listed on its own if it failed again), and the next token.

        Raises:
            ApplicationError: non-retryable if Temporal refuses the query.
        """
        token = base64.b64decode(request.page_token) if request.page_token else None
        executions = self._client.list_workflows(
            # Only the lower bound is in the query: a delivery retried by hand has later runs
            # that start after it was created, so ``until`` is checked against its creation.
            failed_deliveries_query(request.app_id, request.endpoint_id, request.since),
            page_size=request.page_size,
            next_page_token=token,
        )
        try:
            await executions.fetch_next_page()
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                raise ApplicationError(
                    f"visibility query refused: {err.message}", non_retryable=True
                ) from None
            raise
        in_window = [
            execution
            for execution in executions.current_page or []
            if request.since <= await _created_at(execution) < request.until
        ]
        latest = await _gathered(lambda e: is_latest_run(self._client, e), in_window)
        next_token = executions.next_page_token
        return FailedPage(
            deliveries=[
                FailedDelivery(workflow_id=execution.id, run_id=execution.run_id)
                for execution, is_latest in zip(in_window, latest, strict=True)
                if is_latest
            ],
            next_page_token=base64.b64encode(next_token).decode() if next_token else None,
        )

    @activity.defn(name="retry_deliveries")
    async def retry_deliveries(self, batch: RetryBatch) -> RetryOutcome:
        """Retry each delivery of ``batch`` as ``POST .../deliveries/{id}/retry`` would.

        A delivery restarted since it was listed (by someone else, or by an earlier attempt of
        this activity) is skipped, not signalled: a bulk recovery never cuts a backoff short.

        Returns:
            How many were retried, skipped (succeeded or restarted meanwhile), or failed.
        """
        results = await _gathered(self._retry_one, batch.deliveries)
        return RetryOutcome(
            retried=results.count("retried"),
            skipped=results.count("skipped"),
            errors=results.count("error"),
        )

    async def _retry_one(self, delivery: FailedDelivery) -> Retried:
        try:
            description = await self._client.get_workflow_handle(delivery.workflow_id).describe()
            if description.run_id != delivery.run_id or not _still_failed(description):
                return "skipped"
            await retry_delivery(
                self._client, self._settings, delivery.workflow_id, only_if_failed=True
            )
        except AlreadySucceeded:
            return "skipped"
        except DeliveryError as err:
            log.warning("recovery could not retry %s: %s", delivery.workflow_id, err.message)
            return "error"
        except RPCError as err:
            log.warning(
                "recovery could not retry %s: %s %s",
                delivery.workflow_id,
                err.status.name if err.status else "",
                err.message,
            )
            return "error"
        return "retried"


def _still_failed(description: WorkflowExecutionDescription) -> bool:
    """Whether a listed failed run looks failed still: closed, or held open and not retried
    since (a retry goes on in the held run itself, which the run id cannot tell). A retry
    whose attempt is under way may not show yet: the signal says ``only_if_failed`` too."""
    if description.status != WorkflowExecutionStatus.RUNNING:
        return True
    return description.typed_search_attributes.get(sa.STATUS) == FAILED


async def _created_at(execution: WorkflowExecution) -> datetime:
    """When a delivery was created: its first run's start, kept in later runs' memo."""
    created = (await execution.memo()).get(CREATED_MEMO)
    return datetime.fromisoformat(created) if isinstance(created, str) else execution.start_time


async def _gathered(call: Callable[[T], Awaitable[R]], items: list[T]) -> list[R]:
    """``call`` on every item, a bounded number at a time, results in order."""
    semaphore = asyncio.Semaphore(MAX_CONCURRENT_CALLS)

    async def bounded(item: T) -> R:
        async with semaphore:
            return await call(item)

    return await asyncio.gather(*(bounded(item) for item in items))

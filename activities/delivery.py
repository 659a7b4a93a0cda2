"""One delivery attempt on the wire: read the endpoint, sign the body, POST it, judge the answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TypeVar

import aiohttp
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.signing import InvalidSecretError, sign
from hookline.registry import Endpoint, Registry

USER_AGENT = "Hookline-Webhooks/0.1 (+https://github.com/hookline)"
HEARTBEAT_EVERY_S = 2.0
RETRY_AFTER_STATUSES = frozenset({429, 503})

T = TypeVar("T")


class AttemptInput(BaseModel):
    """What an attempt needs; the secret and URL are read from the registry, never passed here."""

    delivery_id: str
    app_id: str
    event_id: str
    endpoint_id: str
    body: str
    timeout_s: float
    attempts_before: int = 0
    """Attempts made by earlier series of this delivery (before a manual retry)."""


class AttemptRecord(BaseModel):
    """What happened in one attempt: returned on success, the failure's details otherwise."""

    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int


class DeliveryActivities:
    """Delivery activities, sharing one HTTP session and one registry per worker process."""

    def __init__(
        self, session: aiohttp.ClientSession, registry: Registry, max_response_bytes: int
    ) -> None:
        self._session = session
        self._registry = registry
        self._max_response_bytes = max_response_bytes

    @activity.defn(name="post_signed")
    async def post_signed(self, attempt: AttemptInput) -> AttemptRecord:
        """Sign the event body for this attempt and POST it to the endpoint.

        Returns:
            The attempt's record, when the endpoint answered 2xx.

        Raises:
            ApplicationError: the attempt failed; its details hold the ``AttemptRecord``.
                ``EndpointGone`` (HTTP 410) and ``EndpointDeleted`` are not retried.
        """
        info = activity.info()
        number = attempt.attempts_before + info.attempt
        endpoint = await self._registry.get_endpoint(attempt.endpoint_id, attempt.app_id)
        if endpoint is None:
            record = _record(number, time.time(), None, "endpoint was deleted")
            raise _failure(attempt, record, "EndpointDeleted")
        started = time.time()
        try:
            code, retry_after = await _heartbeating(self._post(endpoint, attempt, int(started)))
        except (TimeoutError, aiohttp.ServerTimeoutError):
            record = _record(number, started, None, f"timed out after {attempt.timeout_s:g} s")
            raise _failure(attempt, record, "Timeout") from None
        except aiohttp.ClientError as err:
            record = _record(number, started, None, _describe_client_error(err))
            raise _failure(attempt, record, "ConnectionError") from None
        except InvalidSecretError as err:
            record = _record(number, started, None, f"endpoint secret is invalid: {err}")
            raise _failure(attempt, record, "InvalidSecret") from None

        if 200 <= code < 300:
            record = _record(number, started, code)
            _log(attempt, record)
            return record
        if code == 410:
            record = _record(number, started, code, "HTTP 410 Gone: endpoint asked not to retry")
            raise _failure(attempt, record, "EndpointGone")
        record = _record(number, started, code, f"HTTP {code}")
        delay = _retry_delay(retry_after, info) if code in RETRY_AFTER_STATUSES else None
        raise _failure(attempt, record, "HttpError", next_retry_delay=delay)

    async def _post(
        self, endpoint: Endpoint, attempt: AttemptInput, timestamp: int
    ) -> tuple[int, str | None]:
        body = attempt.body.encode()
        headers = {
            **endpoint.headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": attempt.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.secret, attempt.event_id, timestamp, body),
        }
        async with self._session.post(
            endpoint.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=attempt.timeout_s),
        ) as response:
            # Read a bounded prefix only: a receiver answering with a huge body must not
            # cost memory. What is left unread closes the connection instead of reusing it.
            await response.content.read(self._max_response_bytes)
            return response.status, response.headers.get("retry-after")


async def _heartbeating(work: Awaitable[T]) -> T:
    """Await ``work`` while heartbeating, so a dead worker or a cancel is noticed in seconds."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_S)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()


def _record(
    number: int, started: float, status_code: int | None, error: str | None = None
) -> AttemptRecord:
    return AttemptRecord(
        attempt=number,
        at=datetime.fromtimestamp(started, UTC),
        status_code=status_code,
        error=error,
        duration_ms=max(0, round((time.time() - started) * 1000)),
    )


def _log(attempt: AttemptInput, record: AttemptRecord) -> None:
    # One line per attempt, with ids; never the URL (it may hold tokens), body or secret.
    activity.logger.info(
        "delivery %s attempt %d to endpoint %s: %s in %d ms",
        attempt.delivery_id,
        record.attempt,
        attempt.endpoint_id,
        record.error or f"HTTP {record.status_code}",
        record.duration_ms,
    )


def _failure(
    attempt: AttemptInput,
    record: AttemptRecord,
    error_type: str,
    next_retry_delay: timedelta | None = None,
) -> ApplicationError:
    """The failure of an attempt, logged, with its record as details (read by the API)."""
    _log(attempt, record)
    return ApplicationError(
        record.error or error_type,
        record,
        type=error_type,
        non_retryable=error_type in {"EndpointGone", "EndpointDeleted"},
        next_retry_delay=next_retry_delay,
        # A failing receiver is business as usual: no per-attempt warning with a traceback.
        category=ApplicationErrorCategory.BENIGN,
    )


def _describe_client_error(err: aiohttp.ClientError) -> str:
    # Name the failure without echoing the URL, which may carry credentials in its query.
    if isinstance(err, aiohttp.ClientConnectorError):
        return f"cannot connect to {err.host}:{err.port}: {err.os_error.strerror or 'refused'}"
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "server closed the connection without answering"
    return f"HTTP client error: {type(err).__name__}"


def _retry_delay(retry_after: str | None, info: activity.Info) -> timedelta | None:
    """The next delay a ``Retry-After`` asks for, capped by the retry policy and the window."""
    if not retry_after:
        return None
    seconds = _parse_retry_after(retry_after)
    if seconds is None:
        return None
    if info.retry_policy and info.retry_policy.maximum_interval:
        seconds = min(seconds, info.retry_policy.maximum_interval.total_seconds())
    if info.schedule_to_close_timeout:
        deadline = info.scheduled_time + info.schedule_to_close_timeout
        # A delay past the window would end the delivery at once; retry just before it closes.
        remaining = (deadline - datetime.now(UTC)).total_seconds() - 1
        seconds = min(seconds, max(remaining, 1))
    return timedelta(seconds=max(seconds, 1))


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())

"""One delivery attempt on the wire: find the target, sign the body, POST it, judge the answer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import aiohttp
from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from hookline.activities.endpoint_breaker import EndpointBreaker
from hookline.activities.endpoint_cache import EndpointCache
from hookline.activities.endpoint_slots import EndpointSlots
from hookline.activities.guarded_connector import DestinationRefusedError
from hookline.activities.retry_timing import (
    RETRY_AFTER_STATUSES,
    parse_retry_after,
    retry_after_delay,
    scheduled_delay,
)
from hookline.contracts.delivery import (
    ENDPOINT_BUSY,
    ENDPOINT_PAUSED,
    LANE_REQUIRED,
    PERMIT_EXPIRED,
    AttemptInput,
    AttemptRecord,
    without_query,
)
from hookline.contracts.header_rules import HEADER_NAME_RE, check_header
from hookline.contracts.ids import OPERATOR_APP_ID
from hookline.contracts.late_permits import PERMIT_TOLERANCE
from hookline.contracts.metric_labels import EVENT_TYPES
from hookline.contracts.retry_settings import NON_RETRYABLE_ERRORS
from hookline.contracts.signing import InvalidSecretError, signature_headers
from hookline.storage.attempt_log import LoggedAttempt
from hookline.storage.registry import Registry

USER_AGENT = "Hookline-Webhooks/0.1 (+https://github.com/hookline)"
HEARTBEAT_EVERY_S = 2.0
NON_RETRYABLE = frozenset(NON_RETRYABLE_ERRORS)
MAX_START_WAIT_S = 5.0
"""The longest an attempt waits for its permit's planned start (a lane plans 2 s ahead; more
means clocks disagree)."""
RECHECK_AFTER_WAIT_S = 0.001
"""An attempt that waited at least this long for one of its endpoint's slots reads its
endpoint's copy again before it sends: a pause made meanwhile must hold (see
``hookline.api.routes_endpoints``: a pause answers once every copy read before it is out of
date)."""
LOG_TIMEOUT_S = 3.0
"""How long an attempt waits for its attempt-log row to commit before going on without."""

log = logging.getLogger(__name__)
T = TypeVar("T")


class _ReadAgainFailed(Exception):
    """Reading the endpoint again after a slot wait failed with ``error``: kept apart from
    the POST's own errors, which the attempt blames on the receiver."""

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__name__)
        self.error = error


@dataclass(frozen=True)
class _Destination:
    """Where one attempt posts and how it signs, as read at attempt time (secrets included):
    not ``hookline.contracts.delivery.Target``, the fan-out's choice of endpoint."""

    url: str
    headers: dict[str, str] = field(repr=False)  # often the receiver's credentials
    scheme: str
    signature_header: str | None
    secrets: list[str] = field(repr=False)
    was_failing: bool = False
    disabled: bool = False
    laned: bool = False
    """Its deliveries take permits from the endpoint's lane."""
    paused: bool = False


class DeliveryActivities:
    """Delivery activities, sharing one HTTP session and one registry per worker process."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        registry: Registry,
        max_response_bytes: int,
        operator_secret: str | None = None,
        require_https: bool = False,
        per_endpoint_concurrency: int = 10,
        endpoints: EndpointCache | None = None,
        breaker: EndpointBreaker | None = None,
        slots: EndpointSlots | None = None,
    ) -> None:
        """``slots``: the worker's, shared out with the other workers (counted by
        ``hookline.worker.worker_count``); else ``per_endpoint_concurrency`` each, as for one
        worker alone."""
        self._session = session
        self._breaker = breaker
        self._registry = registry
        self._endpoints = endpoints or EndpointCache(registry, ttl_s=0)
        self._max_response_bytes = max_response_bytes
        self._operator_secret = operator_secret
        self._require_https = require_https
        self._slots = slots or EndpointSlots(per_endpoint_concurrency)

    @activity.defn(name="post_signed")
    async def post_signed(self, attempt: AttemptInput) -> AttemptRecord:
        """Sign the event body for this attempt and POST it to the endpoint.

        Returns:
            The attempt's record, when the endpoint answered 2xx.

        Raises:
            ApplicationError: the attempt failed; its details hold the ``AttemptRecord``.
                ``EndpointGone`` (HTTP 410), ``EndpointDeleted`` and ``ScheduleExhausted``
                are not retried.
        """
        with _in_flight():
            return await self._attempt(attempt)

    async def _attempt(self, attempt: AttemptInput) -> AttemptRecord:
        info = activity.info()
        if info.is_local and self._slots.all_taken(
            attempt.endpoint_id, permitted=attempt.permitted
        ):
            # A local attempt holds its workflow's task: it must not queue behind a slow
            # endpoint. Nothing is sent; the workflow makes the attempt as an activity.
            raise ApplicationError(
                "endpoint busy in this worker", type=ENDPOINT_BUSY, non_retryable=True
            )
        slot: _PlannedStart | None = None
        if attempt.permitted and attempt.start_at is not None:
            # The lane planned this attempt's start: keep to it (the rate is counted so).
            wait = _until_planned_start(attempt, attempt.start_at, info)
            slot = _PlannedStart(time.monotonic() + wait, _start_tolerance_s(attempt))
            if wait > 0:
                await asyncio.sleep(min(wait, MAX_START_WAIT_S))
            slot.keep_to()
        number = attempt.attempts_before + info.attempt
        started = time.time()
        target = await self._sendable(attempt, number, started)

        async def read_again() -> _Destination:
            """The endpoint as it is now, after a wait for one of its slots (a pause made
            meanwhile holds this attempt): the POST and its record go by it."""
            nonlocal target
            try:
                target = await self._sendable(attempt, number, started)
            except ApplicationError:
                raise  # the attempt sends nothing, and says why
            except Exception as err:  # the registry's: not the receiver's, whatever its type
                raise _ReadAgainFailed(err) from err
            return target

        def made(status_code: int | None, error: str | None = None) -> AttemptRecord:
            # Every record from here on says where the attempt went (not the query: a token
            # may be in it, and the record outlives a rotation of that token).
            return _record(number, started, status_code, error, url=without_query(target.url))

        response_body = ""
        try:
            code, retry_after, response_body = await _heartbeating(
                self._post(target, attempt, slot, read_again)
            )
        except _ReadAgainFailed as failed:
            # As when the first read fails: nothing was sent, and Temporal retries it.
            raise failed.error from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            record = made(None, f"timed out after {attempt.timeout_s:g} s")
            laned = await self._receiver_failed(attempt, target)
            raise await self._failed(attempt, record, "Timeout", into_lane=laned) from None
        except aiohttp.ClientConnectorError as err:
            if isinstance(err.os_error, DestinationRefusedError):
                record = made(None, f"destination refused: {err.os_error}")
                raise await self._failed(
                    attempt, record, "DestinationRefused", message="destination refused"
                ) from None
            record = made(None, _describe_client_error(err))
            laned = await self._receiver_failed(attempt, target)
            raise await self._failed(
                attempt,
                record,
                "ConnectionError",
                message=_connect_failure_without_host(err),
                into_lane=laned,
            ) from None
        except aiohttp.InvalidURL:
            # A stored URL aiohttp cannot use (saved by an older release): no attempt can.
            record = made(None, "request cannot be built: invalid URL")
            raise await self._failed(
                attempt, record, "InvalidRequest", non_retryable=True
            ) from None
        except aiohttp.ClientError as err:
            record = made(None, _describe_client_error(err))
            laned = await self._receiver_failed(attempt, target)
            raise await self._failed(attempt, record, "ConnectionError", into_lane=laned) from None
        except InvalidSecretError as err:
            record = made(None, f"endpoint secret is invalid: {err}")
            raise await self._failed(attempt, record, "InvalidSecret", non_retryable=True) from None
        except ValueError as err:  # aiohttp refusing to build the request (a header, the URL)
            record = made(None, f"request cannot be built: {err}")
            raise await self._failed(
                attempt,
                record,
                "InvalidRequest",
                non_retryable=True,
                message="request cannot be built",  # aiohttp's text may quote the request
            ) from None

        if 200 <= code < 300:
            if self._breaker is not None:
                self._breaker.succeeded(attempt.endpoint_id)
            record = made(code)
            record.endpoint_was_failing = target.was_failing
            await self._remember(attempt, record, response_body)
            return record
        if code == 410:
            record = made(code, "HTTP 410 Gone: endpoint asked not to retry")
            raise await self._failed(attempt, record, "EndpointGone", response_body)
        record = made(code, f"HTTP {code}")
        delay = retry_after_delay(retry_after, info) if code in RETRY_AFTER_STATUSES else None
        laned = False
        if code >= 500 or code == 429:
            named = retry_after if code in RETRY_AFTER_STATUSES else None
            held = parse_retry_after(named, datetime.now(UTC)) if named else None
            laned = await self._receiver_failed(attempt, target, held)
        raise await self._failed(
            attempt, record, "HttpError", response_body, delay, into_lane=laned
        )

    async def _receiver_failed(
        self, attempt: AttemptInput, target: _Destination, retry_after_s: float | None = None
    ) -> bool:
        """Count an attempt that failed for want of the receiver against the endpoint's
        breaker (``retry_after_s``: a 429 or 503 named a ``Retry-After``). Attempts under a
        lane's permit are the lane's to count.

        Returns:
            Whether the endpoint has a lane now (this failure tripped its breaker, or one
            since the attempt started did): the delivery goes on in the lane at once.
        """
        if self._breaker is None or attempt.permitted or target.laned or attempt.in_lane:
            return False
        if attempt.callback_url is not None or not self._breaker.on:
            return False  # a per-job callback URL, not an endpoint; or no breaker to trip
        await self._breaker.failed(
            attempt.app_id, attempt.endpoint_id, attempt.timeout_s, retry_after_s
        )
        try:  # a trip made this worker forget its copy: the registry's word, read once
            endpoint = await self._endpoints.get(attempt.app_id, attempt.endpoint_id)
        except (SQLAlchemyError, OSError):
            return False  # the registry is unreachable: the next attempt finds out
        return endpoint is not None and endpoint.has_lane

    async def _destination(self, attempt: AttemptInput) -> _Destination | None:
        if attempt.callback_url is not None and attempt.app_id == OPERATOR_APP_ID:
            secret = self._operator_secret or ""
            return _Destination(attempt.callback_url, {}, "standard", None, [secret])
        if attempt.callback_url is not None:
            secrets = await self._registry.apps.secrets(attempt.app_id)
            return _Destination(
                attempt.callback_url, {}, "standard", None, secrets.signing_secrets(_now())
            )
        endpoint = await self._endpoints.get(attempt.app_id, attempt.endpoint_id)
        if endpoint is None:
            return None
        return _Destination(
            endpoint.url,
            endpoint.headers,
            endpoint.signature_scheme,
            endpoint.signature_header,
            endpoint.signing_secrets(_now()),
            was_failing=endpoint.failing_since is not None,
            disabled=endpoint.disabled,
            laned=endpoint.has_lane,
            paused=endpoint.paused,
        )

    async def _sendable(self, attempt: AttemptInput, number: int, started: float) -> _Destination:
        """Where the attempt goes, read now.

        Raises:
            ApplicationError: the attempt sends nothing: the endpoint was deleted or disabled,
                its lane holds the attempt, or no attempt can ever send it.
        """
        target = await self._destination(attempt)
        if target is None:
            record = _record(number, started, None, "endpoint was deleted")
            raise await self._failed(attempt, record, "EndpointDeleted")
        made = functools.partial(_record, number, started, url=without_query(target.url))
        if target.disabled:
            record = made(None, "endpoint is disabled")
            raise await self._failed(attempt, record, "EndpointDisabled")
        lane_holds = self._held_by_lane(attempt, target, number)
        if lane_holds is not None:
            raise lane_holds
        if self._require_https and not target.url.startswith("https://"):
            record = made(None, "destination refused: https is required")
            raise await self._failed(attempt, record, "DestinationRefused")
        unsendable = _unsendable_header(target)
        if unsendable is not None:
            # Saved before the API refused such headers: no attempt can ever send it, so the
            # delivery fails now rather than retrying for its whole window.
            record = made(None, f"request cannot be built: {unsendable}")
            raise await self._failed(attempt, record, "InvalidRequest", non_retryable=True)
        return target

    def _held_by_lane(
        self, attempt: AttemptInput, target: _Destination, number: int
    ) -> ApplicationError | None:
        """Why the endpoint's lane holds this attempt (nothing is sent), or ``None``: it has a
        lane and the attempt no permit from it, or it was paused after the permit's grant."""
        if (target.laned or attempt.in_lane) and not attempt.permitted:
            # The workflow asks the endpoint's lane for a permit first.
            return ApplicationError(
                "endpoint has a lane",
                number - 1,  # the attempts made before this one, which the lane's go on from
                type=LANE_REQUIRED,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            )
        if attempt.permitted and attempt.holds_on_pause and target.paused:
            # The delivery gives the permit back and asks again: its lane holds it. The copy
            # may be older than a resume since: the next attempt reads the registry's.
            self._endpoints.expire(attempt.app_id, attempt.endpoint_id)
            return ApplicationError(
                "endpoint is paused",
                type=ENDPOINT_PAUSED,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            )
        return None

    async def _post(
        self,
        target: _Destination,
        attempt: AttemptInput,
        slot: _PlannedStart | None,
        read_again: Callable[[], Awaitable[_Destination]],
    ) -> tuple[int, str | None, str]:
        # One of the endpoint's slots first: a slow receiver is not sent more than
        # endpoint_max_concurrent_attempts POSTs at once by the workers together.
        slots = self._slots.slot(attempt.endpoint_id or target.url, permitted=attempt.permitted)
        waiting_since = time.monotonic()
        async with slots:
            waited = time.monotonic() - waiting_since >= RECHECK_AFTER_WAIT_S
            if waited and attempt.callback_url is None:
                # The endpoint may have changed meanwhile: been paused, got a lane, a new URL.
                target = await read_again()
            if slot is not None:
                slot.keep_to()  # the wait for the registry or a slot may have made it late
            return await self._post_now(target, attempt, int(time.time()))

    async def _post_now(
        self, target: _Destination, attempt: AttemptInput, timestamp: int
    ) -> tuple[int, str | None, str]:
        body = attempt.body.encode()
        headers = {
            **target.headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signature_headers(
                target.scheme,
                target.secrets,
                attempt.event_id,
                timestamp,
                body,
                target.signature_header,
            ),
        }
        async with self._session.post(
            target.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=attempt.timeout_s),
        ) as response:
            # Read a bounded prefix only: a receiver answering with a huge body must not
            # cost memory. What is left unread closes the connection instead of reusing it.
            # The status is the answer: a body that stalls or breaks off does not change it.
            try:
                prefix = await response.content.read(self._max_response_bytes)
            except (TimeoutError, aiohttp.ClientError):
                prefix = b""
            text = prefix.decode("utf-8", errors="replace")
            return response.status, response.headers.get("retry-after"), text

    async def _failed(
        self,
        attempt: AttemptInput,
        record: AttemptRecord,
        error_type: str,
        response_body: str = "",
        next_retry_delay: timedelta | None = None,
        *,
        non_retryable: bool = False,
        message: str | None = None,
        into_lane: bool = False,
    ) -> ApplicationError:
        """The failure of an attempt, remembered, with its record as details (for the API).

        The failure's message is stored in Temporal in clear even when payloads are encrypted
        (the record, its details, is not): ``message`` is then a wording without the
        destination's host, which the record keeps.

        Args:
            into_lane: The endpoint has a lane now: unless the attempt was the delivery's
                last, the failure is a ``LANE_REQUIRED`` with the attempts made (this one
                included) and the record as details, and the delivery asks the lane for its
                next attempt at once. Retried on its own schedule, its next attempt would
                send nothing and say the same, after a backoff, a timer and an activity
                task: every delivery in flight when a breaker trips went that way.
        """
        await self._remember(attempt, record, response_body)
        non_retryable = non_retryable or error_type in NON_RETRYABLE
        if attempt.schedule_s is not None and not non_retryable:
            next_retry_delay = scheduled_delay(
                attempt.schedule_s, activity.info().attempt, activity.info()
            )
            if next_retry_delay is None:
                error_type, non_retryable = "ScheduleExhausted", True
        if into_lane and not non_retryable:
            return ApplicationError(
                message or record.error or error_type,
                record.attempt,
                record,
                type=LANE_REQUIRED,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            )
        return ApplicationError(
            message or record.error or error_type,
            record,
            type=error_type,
            non_retryable=non_retryable,
            next_retry_delay=next_retry_delay,
            # A failing receiver is business as usual: no per-attempt warning with a traceback.
            category=ApplicationErrorCategory.BENIGN,
        )

    async def _remember(
        self, attempt: AttemptInput, record: AttemptRecord, response_body: str
    ) -> None:
        # One log line per attempt, with ids; never the URL (it may hold tokens), body or secret.
        activity.logger.info(
            "delivery %s attempt %d to %s: %s in %d ms",
            attempt.delivery_id,
            record.attempt,
            attempt.endpoint_id or "callback",
            record.error or f"HTTP {record.status_code}",
            record.duration_ms,
            extra={
                "delivery_id": attempt.delivery_id,
                "endpoint_id": attempt.endpoint_id,
                "event_id": attempt.event_id,
                "attempt": record.attempt,
                "status_code": record.status_code,
                "duration_ms": record.duration_ms,
                "outcome": "delivered" if record.error is None else "failed",
            },
        )
        _count_attempt(attempt, record)
        try:
            # Bounded: the attempt is over, and a stalled database must not hold it until its
            # heartbeat times out (Temporal would then make the attempt again).
            await asyncio.wait_for(self._log_attempt(attempt, record, response_body), LOG_TIMEOUT_S)
        except (SQLAlchemyError, OSError) as err:  # TimeoutError is an OSError
            # The attempt happened whatever the log says: failing it now would POST again.
            log.warning(
                "attempt log unavailable, delivery %s attempt %d not logged: %s",
                attempt.delivery_id,
                record.attempt,
                type(err).__name__,
            )

    async def _log_attempt(
        self, attempt: AttemptInput, record: AttemptRecord, response_body: str
    ) -> None:
        await self._registry.attempts.record(
            LoggedAttempt(
                app_id=attempt.app_id,
                delivery_id=attempt.delivery_id,
                endpoint_id=attempt.endpoint_id,
                attempt=record.attempt,
                at=record.at,
                status_code=record.status_code,
                duration_ms=record.duration_ms,
                error=record.error,
                response_body=response_body,
                url=record.url,
            )
        )


_attempts_in_flight = 0


@contextlib.contextmanager
def _in_flight() -> Iterator[None]:
    """Keep ``hookline_attempts_in_flight`` (this worker's attempts under way) up to date."""
    global _attempts_in_flight
    gauge = activity.metric_meter().create_gauge(
        "hookline_attempts_in_flight", "Delivery attempts under way in this worker"
    )
    _attempts_in_flight += 1
    gauge.set(_attempts_in_flight)
    try:
        yield
    finally:
        _attempts_in_flight -= 1
        gauge.set(_attempts_in_flight)


def _count_attempt(attempt: AttemptInput, record: AttemptRecord) -> None:
    """Hookline's attempt metrics, served with the SDK's (see ``metrics_runtime``)."""
    meter = activity.metric_meter()
    code = record.status_code
    labels = {
        "outcome": "delivered" if record.error is None else "failed",
        "status_class": f"{code // 100}xx" if code else "none",
        "event_type": EVENT_TYPES(attempt.event_type),
    }
    meter.create_counter(
        "hookline_delivery_attempts", "Delivery attempts, by outcome and HTTP status class"
    ).add(1, labels)
    meter.create_histogram_float(
        "hookline_attempt_duration_seconds", "How long attempts took, connect to answer", "s"
    ).record(record.duration_ms / 1000, {"outcome": labels["outcome"]})


async def _heartbeating(work: Awaitable[T]) -> T:
    """Await ``work`` while heartbeating, so a dead worker or a cancel is noticed in seconds."""
    if activity.info().is_local:
        # A local attempt (a run's first) lives in its workflow task, which the SDK keeps
        # alive: no heartbeats, and no task and timer to send them (most attempts are local).
        return await work
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_S)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()


def _until_planned_start(attempt: AttemptInput, start_at: datetime, info: activity.Info) -> float:
    """Seconds until the permit's planned start (below 0: past it), the sooner of what the
    Temporal server's times and this worker's clock say.

    The server's: an activity's start, or for a local attempt its workflow task's time
    (``planned_from``) less the time it queued for a slot in this worker. Neither counts how
    long the task took to reach this worker and run up to the attempt, which on a busy
    machine is longer than the tolerance, and one made again after its worker died has its
    workflow task's old time: the worker's own clock counts those. A worker whose clock runs
    ahead of the server's starts attempts early by as much (keep clocks in sync).
    """
    if not info.is_local or attempt.planned_from is None:
        by_server = (start_at - info.started_time).total_seconds()
    else:
        queued = (info.started_time - info.current_attempt_scheduled_time).total_seconds()
        by_server = (start_at - attempt.planned_from).total_seconds() - max(0.0, queued)
    return min(by_server, (start_at - datetime.now(UTC)).total_seconds())


def _start_tolerance_s(attempt: AttemptInput) -> float | None:
    """How late after its permit's planned start the attempt may start (``None``: however
    late)."""
    if attempt.start_tolerance_s is not None:
        return attempt.start_tolerance_s
    return PERMIT_TOLERANCE.total_seconds() if attempt.strict_start else None


@dataclass(frozen=True)
class _PlannedStart:
    """A lane's planned start of an attempt, on this worker's ``time.monotonic()``, and how
    late the attempt may start."""

    at: float
    tolerance_s: float | None

    def keep_to(self) -> None:
        """Refuse to send later than the tolerance after the planned start: this worker is
        behind, and a late start would bunch up with the next slots at the receiver. Nothing
        is sent, and the delivery asks for another permit (the error's detail says how late
        this one was, in seconds, so that it can ask for one planned further ahead).

        Raises:
            ApplicationError: ``PermitExpired``.
        """
        late_by = time.monotonic() - self.at
        if self.tolerance_s is not None and late_by > self.tolerance_s:
            raise ApplicationError(
                f"permit expired before the attempt could start ({late_by:.3f} s late)",
                round(late_by, 3),
                type=PERMIT_EXPIRED,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            )


def _record(
    number: int,
    started: float,
    status_code: int | None,
    error: str | None = None,
    *,
    url: str | None = None,
) -> AttemptRecord:
    return AttemptRecord(
        attempt=number,
        at=datetime.fromtimestamp(started, UTC),
        status_code=status_code,
        error=error,
        duration_ms=max(0, round((time.time() - started) * 1000)),
        url=url,
    )


def _unsendable_header(target: _Destination) -> str | None:
    """Why one of the target's custom headers cannot be sent, or ``None``."""
    for name, value in target.headers.items():
        try:
            check_header(name, value)
        except ValueError as err:
            return str(err)
    if target.signature_header is not None and not HEADER_NAME_RE.fullmatch(
        target.signature_header
    ):
        return f"signature header {target.signature_header!r} is not a valid HTTP token"
    return None


def _connect_failure_without_host(err: aiohttp.ClientConnectorError) -> str:
    """A failed connect, named without its host or address (the OS's text may hold both)."""
    os_error = err.os_error
    if isinstance(os_error, socket.gaierror):
        return "cannot connect: the host name does not resolve"
    if isinstance(os_error, ssl.SSLError):  # its errno is OpenSSL's, not the OS's
        return "cannot connect: TLS handshake failed"
    if os_error.errno and os_error.errno > 0:
        return f"cannot connect: {os.strerror(os_error.errno)}"
    return "cannot connect"


def _describe_client_error(err: aiohttp.ClientError) -> str:
    # Name the failure without echoing the URL, which may carry credentials in its query.
    if isinstance(err, aiohttp.ClientConnectorError):
        return f"cannot connect to {err.host}:{err.port}: {err.os_error.strerror or 'refused'}"
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "server closed the connection without answering"
    return f"HTTP client error: {type(err).__name__}"


def _now() -> datetime:
    return datetime.now(UTC)

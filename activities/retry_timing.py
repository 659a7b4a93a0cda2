"""When the next attempt happens: a receiver's ``Retry-After``, or an explicit schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from temporalio import activity

RETRY_AFTER_STATUSES = frozenset({429, 503})


def retry_after_delay(retry_after: str | None, info: activity.Info) -> timedelta | None:
    """The next delay a ``Retry-After`` asks for, capped by the retry policy's maximum
    interval and by the retry window (a delay past it would end the delivery at once)."""
    if not retry_after:
        return None
    seconds = parse_retry_after(retry_after, datetime.now(UTC))
    if seconds is None:
        return None
    if info.retry_policy and info.retry_policy.maximum_interval:
        seconds = min(seconds, info.retry_policy.maximum_interval.total_seconds())
    return _within_window(seconds, info)


def scheduled_delay(
    schedule_s: list[float], attempt_in_series: int, info: activity.Info
) -> timedelta | None:
    """The delay an explicit schedule sets after attempt ``attempt_in_series`` (1-based), or
    ``None`` once the schedule is used up."""
    if attempt_in_series >= len(schedule_s):
        return None
    return _within_window(schedule_s[attempt_in_series], info)


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds from ``now`` that a ``Retry-After`` value (seconds or an HTTP date) names."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _within_window(seconds: float, info: activity.Info) -> timedelta:
    if info.schedule_to_close_timeout:
        deadline = info.scheduled_time + info.schedule_to_close_timeout
        remaining = (deadline - datetime.now(UTC)).total_seconds() - 1
        seconds = min(seconds, max(remaining, 1))
    # Temporal rounds retry delays up to whole seconds and needs at least one.
    return timedelta(seconds=max(seconds, 1))

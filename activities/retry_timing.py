"""When the next attempt happens: a receiver's ``Retry-After``, or an explicit schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from temporalio import activity

RETRY_AFTER_STATUSES = frozenset({429, 503})


def retry_after_delay(retry_after: str | None, info: activity.Info) -> timedelta | None:
    """The next delay after a ``Retry-After``: at least the backoff the retry policy would
    wait anyway (a receiver cannot make Hookline retry faster), at most its maximum interval,
    and within the retry window."""
    if not retry_after:
        return None
    seconds = parse_retry_after(retry_after, datetime.now(UTC))
    if seconds is None:
        return None
    policy = info.retry_policy
    if policy is not None:
        backoff = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (
            info.attempt - 1
        )
        if policy.maximum_interval:
            cap = policy.maximum_interval.total_seconds()
            backoff, seconds = min(backoff, cap), min(seconds, cap)
        seconds = max(seconds, backoff)
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


def _within_window(seconds: float, info: activity.Info) -> timedelta | None:
    """``seconds`` as a delay that leaves room for the next attempt before the window closes;
    ``None`` (the policy decides, and ends the series) when there is no such room. A local
    attempt (a run's first) runs alone: its workflow weighs the delay against the window."""
    if info.schedule_to_close_timeout and not info.is_local:
        deadline = info.scheduled_time + info.schedule_to_close_timeout
        attempt = (info.start_to_close_timeout or timedelta()).total_seconds()
        room = (deadline - datetime.now(UTC)).total_seconds() - attempt
        if room < 1:
            return None
        seconds = min(seconds, room)
    # Temporal rounds retry delays up to whole seconds and needs at least one.
    return timedelta(seconds=max(seconds, 1))

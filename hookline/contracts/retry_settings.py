"""The retry schedule of a delivery: exponential backoff inside a bounded window."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import RetryPolicy

NON_RETRYABLE_ERRORS = [
    "EndpointGone",
    "EndpointDeleted",
    "EndpointDisabled",
    "ScheduleExhausted",
    "DestinationRefused",
]


class RetrySettings(BaseModel):
    """Exponential backoff: ``initial_interval_s * backoff_coefficient**n``, capped, in a window.

    The default (30 s, doubling, capped at 1 h, for 3 days) makes about 78 attempts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_interval_s: float = Field(default=30.0, ge=1, le=86_400)
    backoff_coefficient: float = Field(default=2.0, ge=1, le=100)
    max_interval_s: float = Field(default=3_600.0, ge=1, le=7 * 86_400)
    window_s: float = Field(default=3 * 86_400.0, ge=1, le=30 * 86_400)
    schedule_s: list[Annotated[float, Field(ge=0, le=7 * 86_400)]] | None = Field(
        default=None, min_length=1, max_length=50
    )
    """An explicit schedule instead of backoff: the delay before each attempt (the first
    usually 0); after the last attempt the delivery fails. Other fields are then unused."""
    failed_hold_s: float = Field(default=7 * 86_400.0, ge=0, le=90 * 86_400)
    """How long a failed delivery stays open awaiting a manual retry, which then continues
    it in place (one run per delivery, so ``HooklineStatus="failed"`` finds the
    deliveries failed now). After it, the run closes as failed, and a manual retry starts a
    new run. 0 closes at once."""

    def check(self) -> None:
        """Refuse combinations Temporal would reject inside a running workflow.

        Raises:
            ValueError: ``max_interval_s`` is below ``initial_interval_s``.
        """
        if self.max_interval_s < self.initial_interval_s:
            raise ValueError("max_interval_s must be at least initial_interval_s")

    def merged(self, override: dict[str, float] | None) -> RetrySettings:
        """These settings with the fields of an endpoint's override replacing them."""
        merged = RetrySettings.model_validate({**self.model_dump(), **(override or {})})
        merged.check()
        return merged

    def to_policy(self, attempts_made: int = 0) -> RetryPolicy:
        """The Temporal retry policy of the delivery activity: unlimited attempts in the window,
        or, with an explicit schedule, one attempt per entry (the activity sets each delay).

        Args:
            attempts_made: Attempts of this schedule already made (the first attempt runs on
                its own, as a local activity): the policy continues the backoff after them.
        """
        if self.schedule_s is not None:
            return RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=1.0,
                maximum_attempts=max(1, len(self.schedule_s) - attempts_made),
                non_retryable_error_types=NON_RETRYABLE_ERRORS,
            )
        initial = self.initial_interval_s * self.backoff_coefficient**attempts_made
        return RetryPolicy(
            initial_interval=timedelta(seconds=min(initial, self.max_interval_s)),
            backoff_coefficient=self.backoff_coefficient,
            maximum_interval=timedelta(seconds=self.max_interval_s),
            maximum_attempts=0,
            non_retryable_error_types=NON_RETRYABLE_ERRORS,
        )

    def first_attempt_policy(self) -> RetryPolicy:
        """The policy of a series' first attempt, made alone: the backoff it would wait (so
        ``Retry-After`` is weighed against it), and no retry of its own."""
        policy = self.to_policy()
        policy.maximum_attempts = 1
        return policy

    def schedule_after(self, attempts_made: int) -> list[float] | None:
        """The explicit schedule's delays still ahead after ``attempts_made`` attempts."""
        return None if self.schedule_s is None else self.schedule_s[attempts_made:]

    def delay_after(self, attempts_made: int) -> timedelta | None:
        """The wait after the ``attempts_made``-th failed attempt of a series; ``None`` when
        the schedule allows no other (a lane's deliveries drive their own retries)."""
        if self.schedule_s is None:
            wait = self.initial_interval_s * self.backoff_coefficient ** (attempts_made - 1)
            return timedelta(seconds=min(wait, self.max_interval_s))
        if attempts_made >= len(self.schedule_s):
            return None
        return timedelta(seconds=max(1.0, self.schedule_s[attempts_made]))

    def delay_after_first_attempt(self) -> timedelta | None:
        """The wait before the second attempt, when the first failed without naming one;
        ``None`` when the schedule allows no second attempt."""
        if self.schedule_s is None:
            return timedelta(seconds=self.initial_interval_s)
        if len(self.schedule_s) < 2:
            return None
        return timedelta(seconds=max(1.0, self.schedule_s[1]))

    def window(self, attempt_timeout_s: float) -> timedelta:
        """How long the attempts of one series may take, from the first to the last."""
        if self.schedule_s is None:
            return timedelta(seconds=self.window_s)
        # Every scheduled delay, plus every attempt running into its timeout, plus slack.
        per_attempt = attempt_timeout_s + 15
        return timedelta(seconds=sum(self.schedule_s) + len(self.schedule_s) * per_attempt)

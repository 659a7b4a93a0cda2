"""The retry schedule of a delivery: exponential backoff inside a bounded window."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import RetryPolicy


class RetrySettings(BaseModel):
    """Exponential backoff: ``initial_interval_s * backoff_coefficient**n``, capped, in a window.

    The default (30 s, doubling, capped at 1 h, for 3 days) makes about 78 attempts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_interval_s: float = Field(default=30.0, ge=1, le=86_400)
    backoff_coefficient: float = Field(default=2.0, ge=1, le=100)
    max_interval_s: float = Field(default=3_600.0, ge=1, le=7 * 86_400)
    window_s: float = Field(default=3 * 86_400.0, ge=1, le=30 * 86_400)

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

    def to_policy(self) -> RetryPolicy:
        """The Temporal retry policy of the delivery activity: unlimited attempts in the window."""
        return RetryPolicy(
            initial_interval=timedelta(seconds=self.initial_interval_s),
            backoff_coefficient=self.backoff_coefficient,
            maximum_interval=timedelta(seconds=self.max_interval_s),
            maximum_attempts=0,
            non_retryable_error_types=["EndpointGone", "EndpointDeleted"],
        )

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)

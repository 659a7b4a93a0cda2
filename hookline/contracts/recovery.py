"""What a bulk recovery takes and reports: its input, its progress (the memo and query the
API reads) and its workflow id."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

MAX_PAGE_SIZE = 1000
"""Temporal's default ``frontend.visibilityMaxPageSize``."""


def recovery_workflow_id(app_id: str, recovery_id: str) -> str:
    """The workflow id of a recovery, readable in the UI: ``recovery:{app}:{recovery}``."""
    return f"recovery:{app_id}:{recovery_id}"


class RecoveryProgress(BaseModel):
    """What a recovery was asked to do and what it has done so far (the memo the API reads)."""

    endpoint_id: str
    since: datetime
    until: datetime
    created_at: datetime
    found: int = 0
    """Failed deliveries in the window (a failed run that a later run replaced is not one)."""
    retried: int = 0
    skipped: int = 0
    """Found, but succeeded or restarted by someone else before the recovery reached them."""
    errors: int = 0


class RecoveryInput(BaseModel):
    """A recovery's request, and where it stands when it continues as new."""

    recovery_id: str
    app_id: str
    rate_per_s: float = Field(gt=0)
    """Deliveries retried per second, at most."""
    progress: RecoveryProgress
    page_token: str | None = None
    """Where the listing of failed deliveries resumes (base64), after a continue-as-new."""
    page_size: int | None = Field(default=None, ge=1, le=MAX_PAGE_SIZE)
    """Failed deliveries listed at a time; default: a second's worth, and at least 100."""
    pages_per_run: int = Field(default=5, ge=1)
    """Pages listed before continuing as new, which keeps each run's history bounded."""

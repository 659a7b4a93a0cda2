"""The attempt log's group commit: rows queued together are committed together, and one bad
row does not lose the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from hookline.storage.attempt_log import LoggedAttempt
from hookline.storage.registry import Registry


@pytest.fixture
def registry(sqlite_registry: Registry) -> Registry:
    return sqlite_registry


def _attempt(n: int, app_id: str | None = "app_a") -> LoggedAttempt:
    return LoggedAttempt(
        app_id=app_id,  # type: ignore[arg-type]  # None: a row the database refuses
        delivery_id="dlv_a",
        endpoint_id="ep_a",
        attempt=n,
        at=datetime.now(UTC),
        status_code=500,
        duration_ms=3,
        error="HTTP 500",
        response_body="nope\x00",
    )


async def test_rows_recorded_at_once_are_all_committed(registry: Registry) -> None:
    await asyncio.gather(*(registry.attempts.record(_attempt(n)) for n in range(1, 51)))

    logged = await registry.attempts.list_for("app_a", "dlv_a")

    assert [a.attempt for a in logged] == list(range(1, 51))
    assert logged[0].response_body == "nope\ufffd"


async def test_a_bad_row_fails_alone(registry: Registry) -> None:
    outcomes = await asyncio.gather(
        registry.attempts.record(_attempt(1)),
        registry.attempts.record(_attempt(2)),
        registry.attempts.record(_attempt(3, app_id=None)),
        registry.attempts.record(_attempt(4)),
        return_exceptions=True,
    )

    assert list(outcomes[:2]) == [None, None] and outcomes[3] is None
    assert isinstance(outcomes[2], IntegrityError)
    logged = await registry.attempts.list_for("app_a", "dlv_a")
    assert [a.attempt for a in logged] == [1, 2, 4]

"""The attempt log: one row per delivery attempt, kept for a configurable retention."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hookline.storage import tables as t

RESPONSE_BODY_CHARS = 1024
MAX_BATCH = 500
"""Rows one group commit writes at most."""
MAX_QUEUED = 10_000
"""Rows that may wait for a stalled database; more are dropped (and said so by the caller)."""


@dataclass(frozen=True)
class LoggedAttempt:
    app_id: str
    delivery_id: str
    endpoint_id: str
    attempt: int
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None
    url: str | None = None
    """Where the attempt went (``None``: logged before attempts recorded it)."""


class AttemptLog:
    """Reads and writes the ``attempts`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queued: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, attempt: LoggedAttempt) -> None:
        """Append one attempt; return once it is committed.

        Attempts recorded while an earlier write is committing are written together in the
        next transaction (a group commit): under load, one commit serves many attempts.

        Raises:
            SQLAlchemyError: the write failed.
            OSError: the database is unreachable, or ``MAX_QUEUED`` rows already wait for it
                (the row is then dropped).
        """
        if len(self._queued) >= MAX_QUEUED:
            raise OSError(f"attempt log: {MAX_QUEUED} rows already wait for the database")
        body = attempt.response_body
        # PostgreSQL text cannot hold NUL, which a receiver may well send.
        body = body[:RESPONSE_BODY_CHARS].replace("\x00", "\ufffd") if body else None
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((attempt.__dict__ | {"response_body": body}, committed))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_queued())
        await committed

    async def _write_queued(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        try:
            while self._queued:
                batch, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
                try:
                    await self._insert([values for values, _ in batch])
                except (IntegrityError, DataError):
                    # One bad row must not lose the others: write them one at a time.
                    for values, committed in batch:
                        await self._settle(committed, self._insert([values]))
                except Exception as err:  # the database is down: every row of the batch fails
                    for _, committed in batch:
                        _resolve(committed, err)
                else:
                    for _, committed in batch:
                        _resolve(committed, None)
                batch = []
        finally:
            # Cancelled (the loop is closing): nobody is left waiting forever.
            for _, committed in batch + self._queued:
                _resolve(committed, OSError("attempt log writer stopped"))
            self._queued = []
            self._writer = None

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(t.attempts), rows)

    @staticmethod
    async def _settle(committed: asyncio.Future[None], write: Awaitable[None]) -> None:
        try:
            await write
        except Exception as err:
            _resolve(committed, err)
        else:
            _resolve(committed, None)

    async def list_for(self, app_id: str, delivery_id: str) -> list[LoggedAttempt]:
        """Every logged attempt of a delivery, first to last."""
        query = (
            select(t.attempts)
            .where(t.attempts.c.app_id == app_id, t.attempts.c.delivery_id == delivery_id)
            .order_by(t.attempts.c.attempt, t.attempts.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            LoggedAttempt(**{k: v for k, v in row._mapping.items() if k != "id"}) for row in rows
        ]

    async def last_attempt_number(self, app_id: str, delivery_id: str) -> int:
        """The highest attempt number logged for a delivery, 0 if none."""
        query = select(func.max(t.attempts.c.attempt)).where(
            t.attempts.c.app_id == app_id, t.attempts.c.delivery_id == delivery_id
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar() or 0

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete attempts made before ``cutoff``; how many went."""
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(t.attempts).where(t.attempts.c.at < cutoff))
        return result.rowcount


def _resolve(committed: asyncio.Future[None], error: BaseException | None) -> None:
    """Settle a writer's future, unless its writer gave up waiting (cancelled)."""
    if committed.done():
        return
    if error is None:
        committed.set_result(None)
    else:
        committed.set_exception(error)

"""Endpoints: where an app's webhooks go, with their secrets and custom header values sealed
at rest, and their health (failing since, disabled)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hookline.contracts.ids import new_id
from hookline.storage import tables as t
from hookline.storage.entities import Endpoint
from hookline.storage.secret_box import SecretBox, SecretBoxError


class EndpointRepository:
    """The endpoints of every app."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box
        self._writes = 0

    @property
    def writes(self) -> int:
        """How many times endpoints were written through this repository (any app): a copy of
        endpoints read before the count last changed may be out of date."""
        return self._writes

    async def create(self, app_id: str, **fields: Any) -> Endpoint:
        """Store a new endpoint of ``app_id`` with the given column values."""
        now = _now()
        endpoint_id = new_id("ep")
        values = {"id": endpoint_id, "app_id": app_id, "created_at": now, "updated_at": now}
        values.update(fields)
        async with self.writing() as conn:
            await conn.execute(insert(t.endpoints).values(**self._sealed(values)))
        endpoint = await self.get(endpoint_id)
        assert endpoint is not None
        return endpoint

    async def list(self, app_id: str) -> list[Endpoint]:
        """Every endpoint of an app, oldest first."""
        query = (
            select(t.endpoints)
            .where(t.endpoints.c.app_id == app_id)
            .order_by(t.endpoints.c.created_at, t.endpoints.c.id)
        )
        async with self._engine.connect() as conn:
            return [self._endpoint(row) for row in (await conn.execute(query)).all()]

    async def get(self, endpoint_id: str, app_id: str | None = None) -> Endpoint | None:
        """One endpoint, optionally only if it belongs to ``app_id``."""
        query = select(t.endpoints).where(t.endpoints.c.id == endpoint_id)
        if app_id is not None:
            query = query.where(t.endpoints.c.app_id == app_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return self._endpoint(row) if row else None

    async def update(self, app_id: str, endpoint_id: str, **fields: Any) -> Endpoint | None:
        """Change some columns of an endpoint; ``None`` if it does not exist."""
        query = (
            update(t.endpoints)
            .where(t.endpoints.c.id == endpoint_id, t.endpoints.c.app_id == app_id)
            .values(**self._sealed(fields), updated_at=_now())
        )
        async with self.writing() as conn:
            if (await conn.execute(query)).rowcount == 0:
                return None
        return await self.get(endpoint_id, app_id)

    async def delete(self, app_id: str, endpoint_id: str) -> bool:
        """Remove an endpoint; whether it existed."""
        query = delete(t.endpoints).where(
            t.endpoints.c.id == endpoint_id, t.endpoints.c.app_id == app_id
        )
        async with self.writing() as conn:
            return (await conn.execute(query)).rowcount > 0

    async def rotate_secret(
        self, app_id: str, endpoint_id: str, new_secret: str, grace: timedelta
    ) -> Endpoint | None:
        """Make ``new_secret`` current; the old one keeps signing for ``grace``."""
        endpoint = await self.get(endpoint_id, app_id)
        if endpoint is None:
            return None
        return await self.update(
            app_id,
            endpoint_id,
            secret=new_secret,
            previous_secret=endpoint.secret,
            previous_secret_expires_at=_now() + grace,
        )

    async def record_outcome(self, endpoint_id: str, succeeded: bool) -> Endpoint | None:
        """Note a delivery's final outcome: a success clears ``failing_since``, the first
        failure after a success sets it. The endpoint as it was before, or ``None``."""
        before = await self.get(endpoint_id)
        if before is None:
            return None
        if succeeded and before.failing_since is not None:
            values: dict[str, Any] = {"failing_since": None}
        elif not succeeded and before.failing_since is None:
            values = {"failing_since": _now()}
        else:
            return before
        async with self.writing() as conn:
            await conn.execute(
                update(t.endpoints).where(t.endpoints.c.id == endpoint_id).values(**values)
            )
        return before

    async def trip_breaker(self, endpoint_id: str) -> bool:
        """Mark the endpoint's circuit breaker tripped; whether this call tripped it."""
        query = (
            update(t.endpoints)
            .where(t.endpoints.c.id == endpoint_id, t.endpoints.c.breaker_tripped_at.is_(None))
            .values(breaker_tripped_at=_now())
        )
        async with self.writing() as conn:
            return (await conn.execute(query)).rowcount > 0

    async def reset_breaker(self, endpoint_id: str) -> None:
        """The endpoint recovered: its deliveries take the usual path again."""
        query = (
            update(t.endpoints)
            .where(t.endpoints.c.id == endpoint_id)
            .values(breaker_tripped_at=None)
        )
        async with self.writing() as conn:
            await conn.execute(query)

    async def disable(self, endpoint_id: str, reason: str) -> bool:
        """Disable an endpoint; whether this call disabled it (not already disabled)."""
        query = (
            update(t.endpoints)
            .where(t.endpoints.c.id == endpoint_id, t.endpoints.c.disabled.is_(False))
            .values(disabled=True, disabled_reason=reason, updated_at=_now())
        )
        async with self.writing() as conn:
            return (await conn.execute(query)).rowcount > 0

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes endpoints; ``writes`` counts it once it is over
        (committed or not), so no copy read while it ran passes for current."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        finally:
            self._writes += 1

    def _sealed(self, values: dict[str, Any]) -> dict[str, Any]:
        """Column values as stored: secrets and custom header values sealed (headers often
        carry credentials for the receiver, e.g. an ``Authorization`` value)."""
        sealed = dict(values)
        for column in ("secret", "previous_secret"):
            if sealed.get(column):
                sealed[column] = self._box.seal(sealed[column])
        if sealed.get("headers"):
            sealed["headers"] = {n: self._box.seal(v) for n, v in sealed["headers"].items()}
        return sealed

    def _endpoint(self, row: Row[Any]) -> Endpoint:
        values = dict(row._mapping)
        for column in ("secret", "previous_secret"):
            if values.get(column):
                values[column] = self._box.open(values[column])
        values["headers"] = {n: self._header_value(v) for n, v in (values["headers"] or {}).items()}
        return Endpoint(**values)

    def _header_value(self, stored: str) -> str:
        """A custom header's value as stored, opened. A value that is not sealed by a
        configured key is taken as the clear text it is, as the migration that sealed older
        values took it (raising would stop every read of the app's endpoints for one row)."""
        try:
            return self._box.open(stored)
        except SecretBoxError:
            return stored


def _now() -> datetime:
    return datetime.now(UTC)

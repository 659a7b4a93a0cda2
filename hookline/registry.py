"""The registry of apps and endpoints (and the idempotency record of events), on SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.engine import Row, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hookline import registry_tables as t
from hookline.ids import new_id


class UidTakenError(Exception):
    """Another app already uses this uid."""


@dataclass(frozen=True)
class App:
    id: str
    uid: str | None
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Endpoint:
    id: str
    app_id: str
    url: str
    description: str
    event_types: list[str] | None
    secret: str = field(repr=False)
    headers: dict[str, str]
    retry: dict[str, float] | None
    timeout_s: float | None
    created_at: datetime
    updated_at: datetime

    def subscribes_to(self, event_type: str) -> bool:
        """Whether an event of this type goes to this endpoint (``None`` means every type)."""
        if self.event_types is None:
            return True
        for pattern in self.event_types:
            if pattern == event_type:
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False


@dataclass(frozen=True)
class DeliveryRef:
    """Which event went to which endpoint; the delivery's state is in Temporal."""

    id: str
    app_id: str
    event_id: str
    endpoint_id: str
    created_at: datetime


@dataclass(frozen=True)
class EventRecord:
    app_id: str
    id: str
    type: str
    created_at: datetime
    deliveries: list[DeliveryRef]


def create_engine(database_url: str) -> AsyncEngine:
    """An async engine for the registry; SQLite gets its folder made, foreign keys and WAL."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failing statement must not print its values (secrets) in a log.
    engine = create_async_engine(database_url, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


class Registry:
    """Apps, endpoints and accepted events, stored in SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        """Create any table that does not exist yet."""
        async with self._engine.begin() as conn:
            await conn.run_sync(t.metadata.create_all)

    # Apps

    async def create_app(self, name: str, uid: str | None) -> App:
        """Store a new app.

        Raises:
            UidTakenError: ``uid`` belongs to another app.
        """
        app = App(id=new_id("app"), uid=uid, name=name, created_at=_now())
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(t.apps).values(**app.__dict__))
        except IntegrityError as err:
            raise UidTakenError(uid) from err
        return app

    async def get_app(self, id_or_uid: str) -> App | None:
        """The app with this id or, failing that, this uid."""
        query = select(t.apps).where((t.apps.c.id == id_or_uid) | (t.apps.c.uid == id_or_uid))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        # An id match wins over a uid match (uids cannot look like ids, but be exact anyway).
        rows.sort(key=lambda row: row.id != id_or_uid)
        return App(**rows[0]._mapping) if rows else None

    # Endpoints

    async def create_endpoint(self, app_id: str, **fields: Any) -> Endpoint:
        """Store a new endpoint of ``app_id`` with the given column values."""
        now = _now()
        values = {"id": new_id("ep"), "app_id": app_id, "created_at": now, "updated_at": now}
        values.update(fields)
        async with self._engine.begin() as conn:
            await conn.execute(insert(t.endpoints).values(**values))
        return Endpoint(**values)

    async def list_endpoints(self, app_id: str) -> list[Endpoint]:
        """Every endpoint of an app, oldest first."""
        query = (
            select(t.endpoints)
            .where(t.endpoints.c.app_id == app_id)
            .order_by(t.endpoints.c.created_at, t.endpoints.c.id)
        )
        async with self._engine.connect() as conn:
            return [_endpoint(row) for row in (await conn.execute(query)).all()]

    async def get_endpoint(self, endpoint_id: str, app_id: str | None = None) -> Endpoint | None:
        """One endpoint, optionally only if it belongs to ``app_id``."""
        query = select(t.endpoints).where(t.endpoints.c.id == endpoint_id)
        if app_id is not None:
            query = query.where(t.endpoints.c.app_id == app_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _endpoint(row) if row else None

    async def update_endpoint(
        self, app_id: str, endpoint_id: str, **fields: Any
    ) -> Endpoint | None:
        """Change some columns of an endpoint; ``None`` if it does not exist."""
        query = (
            update(t.endpoints)
            .where(t.endpoints.c.id == endpoint_id, t.endpoints.c.app_id == app_id)
            .values(**fields, updated_at=_now())
        )
        async with self._engine.begin() as conn:
            if (await conn.execute(query)).rowcount == 0:
                return None
        return await self.get_endpoint(endpoint_id, app_id)

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> bool:
        """Remove an endpoint; whether it existed."""
        query = delete(t.endpoints).where(
            t.endpoints.c.id == endpoint_id, t.endpoints.c.app_id == app_id
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount > 0

    # Events and the deliveries they made

    async def get_event(self, app_id: str, event_id: str) -> EventRecord | None:
        """An accepted event with the deliveries it made."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.events).where(t.events.c.app_id == app_id, t.events.c.id == event_id)
                )
            ).first()
            if row is None:
                return None
            refs = (
                await conn.execute(
                    select(t.deliveries)
                    .where(t.deliveries.c.app_id == app_id, t.deliveries.c.event_id == event_id)
                    .order_by(t.deliveries.c.endpoint_id)
                )
            ).all()
        return EventRecord(**row._mapping, deliveries=[DeliveryRef(**ref._mapping) for ref in refs])

    async def record_event(
        self, app_id: str, event_id: str, event_type: str, deliveries: Sequence[DeliveryRef]
    ) -> tuple[EventRecord, bool]:
        """Remember an accepted event and its deliveries; the first record of an id wins.

        Returns:
            The event's record and whether this call created it.
        """
        now = _now()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(t.events).values(
                        app_id=app_id, id=event_id, type=event_type, created_at=now
                    )
                )
                if deliveries:
                    await conn.execute(insert(t.deliveries), [ref.__dict__ for ref in deliveries])
        except IntegrityError:
            existing = await self.get_event(app_id, event_id)
            if existing is None:
                raise
            return existing, False
        return EventRecord(app_id, event_id, event_type, now, list(deliveries)), True

    async def get_delivery(self, app_id: str, delivery_id: str) -> DeliveryRef | None:
        """Which event and endpoint a delivery id stands for."""
        query = select(t.deliveries).where(
            t.deliveries.c.id == delivery_id, t.deliveries.c.app_id == app_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return DeliveryRef(**row._mapping) if row else None


def _endpoint(row: Row[Any]) -> Endpoint:
    return Endpoint(**row._mapping)


def _now() -> datetime:
    return datetime.now(UTC)

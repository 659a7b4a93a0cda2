"""Accepted events and the deliveries each made: the idempotency record that makes a
resubmitted event id answer with the same deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hookline.storage import tables as t
from hookline.storage.entities import DeliveryRef, EventRecord


class EventRepository:
    """The accepted events of every app, and their deliveries."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, app_id: str, event_id: str) -> EventRecord | None:
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

    async def record(
        self,
        app_id: str,
        event_id: str,
        event_type: str,
        deliveries: Sequence[DeliveryRef],
        body: str | None = None,
        created_at: datetime | None = None,
    ) -> tuple[EventRecord, bool]:
        """Remember an accepted event and its deliveries; the first record of an id wins.

        Args:
            app_id: The event's app.
            event_id: The event's id.
            event_type: The event's type.
            deliveries: The deliveries it was accepted with.
            body: The payload as sent.
            created_at: When it was accepted; default: now.

        Returns:
            The event's record and whether this call created it.
        """
        now = created_at or _now()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(t.events).values(
                        app_id=app_id, id=event_id, type=event_type, body=body, created_at=now
                    )
                )
                if deliveries:
                    await conn.execute(insert(t.deliveries), [ref.__dict__ for ref in deliveries])
        except IntegrityError:
            existing = await self.get(app_id, event_id)
            if existing is None:
                raise
            return existing, False
        return EventRecord(app_id, event_id, event_type, now, list(deliveries), body), True

    async def list(
        self,
        app_id: str,
        *,
        event_type: str | None,
        since: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[EventRecord]:
        """An app's events, newest first, without their deliveries or bodies.

        Args:
            app_id: The app.
            event_type: Only events of this type.
            since: Only events accepted at or after this time.
            limit: At most this many.
            after: Only events after this ``(created_at, id)`` in the order (the last one of
                the previous page).
        """
        query = select(t.events.c.app_id, t.events.c.id, t.events.c.type, t.events.c.created_at)
        query = query.where(t.events.c.app_id == app_id)
        if event_type is not None:
            query = query.where(t.events.c.type == event_type)
        if since is not None:
            query = query.where(t.events.c.created_at >= since)
        if after is not None:
            created, event_id = after
            query = query.where(
                (t.events.c.created_at < created)
                | ((t.events.c.created_at == created) & (t.events.c.id < event_id))
            )
        query = query.order_by(t.events.c.created_at.desc(), t.events.c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [EventRecord(**row._mapping, deliveries=[]) for row in rows]

    async def delivery(self, app_id: str, delivery_id: str) -> DeliveryRef | None:
        """Which event and endpoint a delivery id stands for."""
        query = select(t.deliveries).where(
            t.deliveries.c.id == delivery_id, t.deliveries.c.app_id == app_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return DeliveryRef(**row._mapping) if row else None


def _now() -> datetime:
    return datetime.now(UTC)

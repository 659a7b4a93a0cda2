"""The registry of apps and endpoints (and the idempotency record of events), on SQLAlchemy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, insert, select, text, update
from sqlalchemy.engine import Row, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hookline.config.settings import Settings
from hookline.contracts.ids import new_id
from hookline.storage import tables as t
from hookline.storage.api_keys import ApiKeyStore
from hookline.storage.attempt_log import AttemptLog
from hookline.storage.private_files import PRIVATE_DIR_MODE, private_dir, private_file
from hookline.storage.schema import migrate_schema
from hookline.storage.secret_box import SecretBox, SecretBoxError, secret_box_for


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
    headers: dict[str, str] = field(repr=False)  # often the receiver's credentials
    retry: dict[str, float] | None
    timeout_s: float | None
    created_at: datetime
    updated_at: datetime
    signature_scheme: str = "standard"
    signature_header: str | None = None
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    failing_since: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets an attempt signs with: the current one, and the previous one while its
        rotation grace period lasts."""
        return _signing_secrets(
            self.secret, self.previous_secret, self.previous_secret_expires_at, now
        )

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
class AppSecrets:
    """An app's own signing secret (for per-job callback URLs) and its rotation state."""

    secret: str = field(repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        return _signing_secrets(
            self.secret, self.previous_secret, self.previous_secret_expires_at, now
        )


def _signing_secrets(
    current: str, previous: str | None, expires_at: datetime | None, now: datetime
) -> list[str]:
    if previous and expires_at and expires_at > now:
        return [current, previous]
    return [current]


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
    body: str | None = field(default=None, repr=False)


KNOWN_APPS = 10_000
"""Apps a registry remembers by id or uid (``Registry.get_app``) before starting afresh."""


def create_engine(database_url: str) -> AsyncEngine:
    """An async engine for the registry.

    SQLite gets its folder made (owner-only when new), its file readable by its owner only,
    foreign keys, and WAL with ``synchronous=NORMAL`` (as the
    embedded Temporal dev server has): a commit does not wait for the disk, so a power cut
    (not a crash of Hookline) can lose the last moments of writes, never corrupt the file.
    PostgreSQL connections are pinged when taken from the pool, so a restarted server is
    reconnected to; a SQLite file needs no ping.
    """
    url = make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        private_file(Path(url.database))
    # hide_parameters: a failing statement must not print its values (secrets) in a log.
    engine = create_async_engine(database_url, pool_pre_ping=not sqlite, hide_parameters=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


class Registry:
    """Apps, endpoints and accepted events, stored in SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        """
        Args:
            engine: The database.
            box: Seals secrets before they are written and opens them when read.
        """
        self._engine = engine
        self._box = box
        self.attempts = AttemptLog(engine)
        self.keys = ApiKeyStore(engine)
        self._known_apps: dict[str, App] = {}
        self._endpoint_writes = 0

    @property
    def endpoint_writes(self) -> int:
        """How many times endpoints were written through this registry (any app): a copy of
        endpoints read before the count last changed may be out of date."""
        return self._endpoint_writes

    async def create_schema(self) -> None:
        """Create the schema, or migrate it to this version's (see ``hookline.schema``); a
        migration that seals values (custom header values an older version stored in clear)
        seals them with this registry's box."""
        await migrate_schema(self._engine, self._box)

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # Apps

    async def create_app(self, name: str, uid: str | None, secret: str) -> App:
        """Store a new app with its own signing secret (for per-job callback URLs).

        Raises:
            UidTakenError: ``uid`` belongs to another app.
        """
        app = App(id=new_id("app"), uid=uid, name=name, created_at=_now())
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(t.apps).values(**app.__dict__, secret=self._box.seal(secret))
                )
        except IntegrityError as err:
            raise UidTakenError(uid) from err
        return app

    async def get_app(self, id_or_uid: str) -> App | None:
        """The app with this id or, failing that, this uid.

        An app's id, uid and name never change and apps are not deleted, so the apps found
        are remembered (up to ``KNOWN_APPS``): most API requests then read no app row.
        """
        known = self._known_apps.get(id_or_uid)
        if known is not None:
            return known
        query = select(t.apps.c.id, t.apps.c.uid, t.apps.c.name, t.apps.c.created_at).where(
            (t.apps.c.id == id_or_uid) | (t.apps.c.uid == id_or_uid)
        )
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).all()
        # An id match wins over a uid match (uids cannot look like ids, but be exact anyway).
        rows = sorted(found, key=lambda row: row.id != id_or_uid)
        if not rows:
            return None
        app = App(**rows[0]._mapping)
        if len(self._known_apps) >= KNOWN_APPS:
            self._known_apps.clear()
        self._known_apps[id_or_uid] = app
        return app

    # Endpoints

    async def create_endpoint(self, app_id: str, **fields: Any) -> Endpoint:
        """Store a new endpoint of ``app_id`` with the given column values."""
        now = _now()
        endpoint_id = new_id("ep")
        values = {"id": endpoint_id, "app_id": app_id, "created_at": now, "updated_at": now}
        values.update(fields)
        async with self._endpoint_write() as conn:
            await conn.execute(insert(t.endpoints).values(**self._sealed(values)))
        endpoint = await self.get_endpoint(endpoint_id)
        assert endpoint is not None
        return endpoint

    async def list_endpoints(self, app_id: str) -> list[Endpoint]:
        """Every endpoint of an app, oldest first."""
        query = (
            select(t.endpoints)
            .where(t.endpoints.c.app_id == app_id)
            .order_by(t.endpoints.c.created_at, t.endpoints.c.id)
        )
        async with self._engine.connect() as conn:
            return [self._endpoint(row) for row in (await conn.execute(query)).all()]

    async def get_endpoint(self, endpoint_id: str, app_id: str | None = None) -> Endpoint | None:
        """One endpoint, optionally only if it belongs to ``app_id``."""
        query = select(t.endpoints).where(t.endpoints.c.id == endpoint_id)
        if app_id is not None:
            query = query.where(t.endpoints.c.app_id == app_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return self._endpoint(row) if row else None

    async def update_endpoint(
        self, app_id: str, endpoint_id: str, **fields: Any
    ) -> Endpoint | None:
        """Change some columns of an endpoint; ``None`` if it does not exist."""
        query = (
            update(t.endpoints)
            .where(t.endpoints.c.id == endpoint_id, t.endpoints.c.app_id == app_id)
            .values(**self._sealed(fields), updated_at=_now())
        )
        async with self._endpoint_write() as conn:
            if (await conn.execute(query)).rowcount == 0:
                return None
        return await self.get_endpoint(endpoint_id, app_id)

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> bool:
        """Remove an endpoint; whether it existed."""
        query = delete(t.endpoints).where(
            t.endpoints.c.id == endpoint_id, t.endpoints.c.app_id == app_id
        )
        async with self._endpoint_write() as conn:
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
        self,
        app_id: str,
        event_id: str,
        event_type: str,
        deliveries: Sequence[DeliveryRef],
        body: str | None = None,
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
                        app_id=app_id, id=event_id, type=event_type, body=body, created_at=now
                    )
                )
                if deliveries:
                    await conn.execute(insert(t.deliveries), [ref.__dict__ for ref in deliveries])
        except IntegrityError:
            existing = await self.get_event(app_id, event_id)
            if existing is None:
                raise
            return existing, False
        return EventRecord(app_id, event_id, event_type, now, list(deliveries), body), True

    # Secrets

    async def rotate_endpoint_secret(
        self, app_id: str, endpoint_id: str, new_secret: str, grace: timedelta
    ) -> Endpoint | None:
        """Make ``new_secret`` current; the old one keeps signing for ``grace``."""
        endpoint = await self.get_endpoint(endpoint_id, app_id)
        if endpoint is None:
            return None
        return await self.update_endpoint(
            app_id,
            endpoint_id,
            secret=new_secret,
            previous_secret=endpoint.secret,
            previous_secret_expires_at=_now() + grace,
        )

    async def get_app_secrets(self, app_id: str) -> AppSecrets:
        """The app's own signing secrets (made with the app)."""
        query = select(
            t.apps.c.secret, t.apps.c.previous_secret, t.apps.c.previous_secret_expires_at
        ).where(t.apps.c.id == app_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).one()
        previous = row.previous_secret and self._box.open(row.previous_secret)
        return AppSecrets(self._box.open(row.secret), previous, row.previous_secret_expires_at)

    async def rotate_app_secret(self, app_id: str, new_secret: str, grace: timedelta) -> None:
        """Make ``new_secret`` the app's current secret; the old one signs for ``grace``."""
        current = await self.get_app_secrets(app_id)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(t.apps)
                .where(t.apps.c.id == app_id)
                .values(
                    **self._sealed({"secret": new_secret, "previous_secret": current.secret}),
                    previous_secret_expires_at=_now() + grace,
                )
            )

    async def drop_expired_secrets(self, now: datetime) -> int:
        """Forget previous secrets whose rotation grace period is over; how many went."""
        dropped = 0
        async with self._endpoint_write() as conn:
            for table in (t.endpoints, t.apps):
                result = await conn.execute(
                    update(table)
                    .where(table.c.previous_secret_expires_at < now)
                    .values(previous_secret=None, previous_secret_expires_at=None)
                )
                dropped += result.rowcount
        return dropped

    # Endpoint health

    async def record_outcome(self, endpoint_id: str, succeeded: bool) -> Endpoint | None:
        """Note a delivery's final outcome: a success clears ``failing_since``, the first
        failure after a success sets it. The endpoint as it was before, or ``None``."""
        before = await self.get_endpoint(endpoint_id)
        if before is None:
            return None
        if succeeded and before.failing_since is not None:
            values: dict[str, Any] = {"failing_since": None}
        elif not succeeded and before.failing_since is None:
            values = {"failing_since": _now()}
        else:
            return before
        async with self._endpoint_write() as conn:
            await conn.execute(
                update(t.endpoints).where(t.endpoints.c.id == endpoint_id).values(**values)
            )
        return before

    async def disable_endpoint(self, endpoint_id: str, reason: str) -> bool:
        """Disable an endpoint; whether this call disabled it (not already disabled)."""
        query = (
            update(t.endpoints)
            .where(t.endpoints.c.id == endpoint_id, t.endpoints.c.disabled.is_(False))
            .values(disabled=True, disabled_reason=reason, updated_at=_now())
        )
        async with self._endpoint_write() as conn:
            return (await conn.execute(query)).rowcount > 0

    @asynccontextmanager
    async def _endpoint_write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes endpoints; ``endpoint_writes`` counts it once it is over
        (committed or not), so no copy read while it ran passes for current."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        finally:
            self._endpoint_writes += 1

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

    async def list_events(
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

    async def get_delivery(self, app_id: str, delivery_id: str) -> DeliveryRef | None:
        """Which event and endpoint a delivery id stands for."""
        query = select(t.deliveries).where(
            t.deliveries.c.id == delivery_id, t.deliveries.c.app_id == app_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return DeliveryRef(**row._mapping) if row else None


def _now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def opened_registry(settings: Settings) -> AsyncIterator[Registry]:
    """The registry of ``settings``, its schema created, for the ``async with`` block.

    Raises:
        SecretBoxError: no usable key for secrets at rest (see ``secret_box_for``).
    """
    if not settings.database_url:
        private_dir(settings.data_dir)  # the default SQLite file lives there
    engine = create_engine(settings.resolved_database_url)
    try:
        registry = Registry(engine, secret_box_for(settings))
        await registry.create_schema()
        yield registry
    finally:
        await engine.dispose()

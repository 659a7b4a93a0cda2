"""The registry: one repository per aggregate (apps, endpoints, events), the attempt log and
API keys, over one database and one secret box."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hookline.config.settings import Settings
from hookline.storage import tables as t
from hookline.storage.api_keys import ApiKeyStore
from hookline.storage.apps import AppRepository
from hookline.storage.attempt_log import AttemptLog
from hookline.storage.endpoints import EndpointRepository
from hookline.storage.engine import create_engine
from hookline.storage.events import EventRepository
from hookline.storage.private_files import private_dir
from hookline.storage.schema import migrate_schema
from hookline.storage.secret_box import SecretBox, secret_box_for


class Registry:
    """Apps, endpoints, accepted events, the attempt log and API keys, stored in SQLite or
    PostgreSQL."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        """
        Args:
            engine: The database.
            box: Seals secrets before they are written and opens them when read.
        """
        self._engine = engine
        self._box = box
        self.apps = AppRepository(engine, box)
        self.endpoints = EndpointRepository(engine, box)
        self.events = EventRepository(engine)
        self.attempts = AttemptLog(engine)
        self.keys = ApiKeyStore(engine)

    async def create_schema(self) -> None:
        """Create the schema, or migrate it to this version's (see ``hookline.storage.schema``);
        a migration that seals values (custom header values an older version stored in clear)
        seals them with this registry's box."""
        await migrate_schema(self._engine, self._box)

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def drop_expired_secrets(self, now: datetime) -> int:
        """Forget previous secrets whose rotation grace period is over; how many went."""
        dropped = 0
        async with self.endpoints.writing() as conn:
            for table in (t.endpoints, t.apps):
                result = await conn.execute(
                    update(table)
                    .where(table.c.previous_secret_expires_at < now)
                    .values(previous_secret=None, previous_secret_expires_at=None)
                )
                dropped += result.rowcount
        return dropped


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

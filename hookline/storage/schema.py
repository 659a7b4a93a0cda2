"""Creating and migrating the registry's schema with Alembic, one process at a time."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hookline.storage.private_files import PRIVATE_FILE_MODE
from hookline.storage.secret_box import SecretBox

SCRIPTS = Path(__file__).with_name("alembic")
# Any constant: processes starting together (API, workers) take turns on PostgreSQL.
_ADVISORY_LOCK = 7_263_511


def alembic_config(connection: Connection | None = None, box: SecretBox | None = None) -> Config:
    """Alembic's configuration for Hookline's migration scripts.

    Args:
        connection: The connection the migrations run on.
        box: What migrations that seal values seal them with (``attributes["secret_box"]``);
            upgrading past such a migration without one raises.
    """
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    config.attributes["secret_box"] = box
    return config


async def migrate_schema(engine: AsyncEngine, box: SecretBox) -> None:
    """Bring the schema to the newest revision (creating it on an empty database).

    Processes starting together (API and workers) take turns: under an advisory lock on
    PostgreSQL, under a file lock beside the database file on SQLite. Data migrations run
    once, under the same lock (the first process to start a new version runs them).

    Args:
        engine: The registry's database.
        box: Seals what a data migration seals (header values stored in clear, 0003).
    """
    async with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})"))
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync, box), "head"))


@asynccontextmanager
async def _sqlite_file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock = await asyncio.to_thread(open, f"{database}.migrate-lock", "a", opener=_owner_only)
    try:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        yield
    finally:
        lock.close()  # closing releases the lock


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE_MODE)

"""Creating and migrating the registry's schema with Alembic, one process at a time."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPTS = Path(__file__).with_name("alembic")
# Any constant: processes starting together (API, workers) take turns on PostgreSQL.
_ADVISORY_LOCK = 7_263_511


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for Hookline's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


async def migrate_schema(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (creating it on an empty database)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})"))
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))

"""The registry's database engine: SQLite (owner-only files, WAL) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hookline.storage.private_files import PRIVATE_DIR_MODE, private_file


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

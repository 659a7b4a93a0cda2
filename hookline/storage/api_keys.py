"""API keys kept in the registry: hashed at rest, admin or scoped to one app, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hookline.contracts.ids import new_id
from hookline.storage import tables as t

KEY_PREFIX = "hl_"


@dataclass(frozen=True)
class ApiKey:
    """A key's record; the key itself is shown once, when made, and never stored."""

    id: str
    name: str
    prefix: str
    """The key's first characters, to recognise it in a list."""
    app_id: str | None
    """The one app the key may act on; ``None`` for an admin key."""
    created_at: datetime
    revoked_at: datetime | None


def key_hash(key: str) -> str:
    """What is stored of a key: its SHA-256 (keys are 256-bit random, so no salt is needed)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class ApiKeyStore:
    """Makes, finds, lists and revokes API keys."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, name: str, app_id: str | None) -> tuple[ApiKey, str]:
        """A new key; returns its record and the key, which is not kept anywhere."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(new_id("key"), name, key[:10], app_id, datetime.now(UTC), None)
        async with self._engine.begin() as conn:
            await conn.execute(insert(t.api_keys).values(**record.__dict__, key_hash=key_hash(key)))
        return record, key

    async def find(self, key: str) -> ApiKey | None:
        """The live (not revoked) record of a presented key."""
        query = select(*_COLUMNS).where(
            t.api_keys.c.key_hash == key_hash(key), t.api_keys.c.revoked_at.is_(None)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return ApiKey(**row._mapping) if row else None

    async def list(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        query = select(*_COLUMNS).order_by(t.api_keys.c.created_at, t.api_keys.c.id)
        async with self._engine.connect() as conn:
            return [ApiKey(**row._mapping) for row in (await conn.execute(query)).all()]

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key; whether a live key had this id."""
        query = (
            update(t.api_keys)
            .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount > 0


_COLUMNS = [c for c in t.api_keys.c if c.name != "key_hash"]

"""API keys kept in the registry: hashed at rest, admin or scoped to one app, revocable."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hookline.contracts.ids import new_id
from hookline.storage import tables as t

KEY_PREFIX = "hl_"
_KEY_SHAPE = re.compile(r"hl_[A-Za-z0-9_-]{43}")
"""What ``ApiKeyStore.create`` makes: the prefix, then 32 random bytes in unpadded base64url."""
VERIFIED_KEY_TTL_S = 60.0
"""How long a key a lookup found live is taken as live, by this process, without another
lookup. A key revoked through this process's ``ApiKeyStore`` stops at once; one revoked by
another process (``hookline keys revoke``) stops here within this time."""
VERIFIED_KEYS_MAX = 10_000
"""How many verified keys each process remembers (per database), the least recently used
forgotten first."""


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


def is_key_shaped(key: str) -> bool:
    """Whether ``key`` has the shape of the keys ``ApiKeyStore.create`` makes (``hl_`` and 43
    base64url characters): anything else cannot be in the registry, so needs no lookup."""
    return _KEY_SHAPE.fullmatch(key) is not None


class VerifiedKeys:
    """Keys that lookups found live, by hash, with when: bounded, least recently used first.

    Args:
        ttl_s: How long a verification counts (see ``VERIFIED_KEY_TTL_S``).
        max_keys: How many keys are remembered at most.
    """

    def __init__(
        self, ttl_s: float = VERIFIED_KEY_TTL_S, max_keys: int = VERIFIED_KEYS_MAX
    ) -> None:
        self._ttl_s = ttl_s
        self._max_keys = max_keys
        self._entries: OrderedDict[str, tuple[ApiKey, float]] = OrderedDict()

    def fresh(self, digest: str) -> ApiKey | None:
        """The record of the key with this hash, if verified within the TTL."""
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry[1] >= self._ttl_s:
            return None
        self._entries.move_to_end(digest)
        return entry[0]

    def known(self, digest: str) -> bool:
        """Whether the key with this hash was verified, however long ago (while remembered)."""
        return digest in self._entries

    def remember(self, digest: str, record: ApiKey) -> None:
        """Note that the key with this hash was just found live."""
        self._entries[digest] = (record, time.monotonic())
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)

    def forget(self, digest: str) -> None:
        """Forget the key with this hash (a lookup did not find it live)."""
        self._entries.pop(digest, None)

    def forget_id(self, key_id: str) -> None:
        """Forget the key with this record id (it was revoked)."""
        for digest, (record, _) in list(self._entries.items()):
            if record.id == key_id:
                del self._entries[digest]


_VERIFIED: dict[str, VerifiedKeys] = {}
"""Each process's verified keys, by database: every store on one database shares them, so a
revocation through any of them is seen by all."""


class ApiKeyStore:
    """Makes, finds, lists and revokes API keys; remembers the keys it found live (see
    ``recently_verified``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        database = engine.url.render_as_string(hide_password=True)
        self._verified = _VERIFIED.setdefault(database, VerifiedKeys())

    async def create(self, name: str, app_id: str | None) -> tuple[ApiKey, str]:
        """A new key; returns its record and the key, which is not kept anywhere."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(new_id("key"), name, key[:10], app_id, datetime.now(UTC), None)
        async with self._engine.begin() as conn:
            await conn.execute(insert(t.api_keys).values(**record.__dict__, key_hash=key_hash(key)))
        return record, key

    async def find(self, key: str) -> ApiKey | None:
        """The live (not revoked) record of a presented key, looked up (and remembered or
        forgotten as ``recently_verified`` answers)."""
        digest = key_hash(key)
        query = select(*_COLUMNS).where(
            t.api_keys.c.key_hash == digest, t.api_keys.c.revoked_at.is_(None)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            self._verified.forget(digest)
            return None
        record = ApiKey(**row._mapping)
        self._verified.remember(digest, record)
        return record

    def recently_verified(self, key: str) -> ApiKey | None:
        """The record of ``key`` if a lookup in this process found it live within
        ``VERIFIED_KEY_TTL_S``; no lookup is made."""
        return self._verified.fresh(key_hash(key))

    def verified_before(self, key: str) -> bool:
        """Whether a lookup in this process found ``key`` live, however long ago: it is a key
        that was real, not a guess."""
        return self._verified.known(key_hash(key))

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
            revoked = (await conn.execute(query)).rowcount > 0
        self._verified.forget_id(key_id)
        return revoked


_COLUMNS = [c for c in t.api_keys.c if c.name != "key_hash"]

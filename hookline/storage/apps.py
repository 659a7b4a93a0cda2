"""Apps: created once, never renamed or deleted, each with its own signing secret (for
per-job callback URLs), sealed at rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hookline.contracts.ids import new_id
from hookline.storage import tables as t
from hookline.storage.entities import App, AppSecrets, UidTakenError
from hookline.storage.secret_box import SecretBox

KNOWN_APPS = 10_000
"""Apps a repository remembers by id or uid (``AppRepository.get``) before starting afresh."""


class AppRepository:
    """The apps of the registry."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box
        self._known_apps: dict[str, App] = {}

    async def create(self, name: str, uid: str | None, secret: str) -> App:
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

    async def get(self, id_or_uid: str) -> App | None:
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

    async def secrets(self, app_id: str) -> AppSecrets:
        """The app's own signing secrets (made with the app)."""
        query = select(
            t.apps.c.secret, t.apps.c.previous_secret, t.apps.c.previous_secret_expires_at
        ).where(t.apps.c.id == app_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).one()
        previous = row.previous_secret and self._box.open(row.previous_secret)
        return AppSecrets(self._box.open(row.secret), previous, row.previous_secret_expires_at)

    async def rotate_secret(self, app_id: str, new_secret: str, grace: timedelta) -> None:
        """Make ``new_secret`` the app's current secret; the old one signs for ``grace``."""
        current = await self.secrets(app_id)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(t.apps)
                .where(t.apps.c.id == app_id)
                .values(
                    secret=self._box.seal(new_secret),
                    previous_secret=self._box.seal(current.secret),
                    previous_secret_expires_at=_now() + grace,
                )
            )


def _now() -> datetime:
    return datetime.now(UTC)

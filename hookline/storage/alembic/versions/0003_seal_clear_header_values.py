"""Custom header values sealed at rest: those an older release stored in clear

Revision ID: 0003
Revises: 0002

Runs once, under the migration lock, with the ``SecretBox`` that ``migrate_schema`` passes in
``config.attributes["secret_box"]``. A value that is not a sealed value of a configured key is
clear text, whatever it looks like (even ``enc:v1:...``), and is sealed as it is: no one row
can stop Hookline from starting.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import context, op

from hookline.storage.secret_box import PREFIX, SecretBox, SecretBoxError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 500
"""Endpoints read at a time."""

log = logging.getLogger("hookline.storage.schema")

_endpoints = sa.table("endpoints", sa.column("id", sa.String()), sa.column("headers", sa.JSON()))


def upgrade() -> None:
    box = context.config.attributes.get("secret_box")
    if not isinstance(box, SecretBox):
        raise RuntimeError(
            "migration 0003 seals header values: pass the SecretBox (migrate_schema)"
        )
    conn = op.get_bind()
    last = ""
    while True:
        rows = conn.execute(
            sa.select(_endpoints.c.id, _endpoints.c.headers)
            .where(_endpoints.c.id > last)
            .order_by(_endpoints.c.id)
            .limit(BATCH)
        ).all()
        for row in rows:
            headers: dict[str, str] = row.headers or {}
            sealed = {name: _sealed(box, value, row.id) for name, value in headers.items()}
            if sealed != headers:
                conn.execute(
                    _endpoints.update().where(_endpoints.c.id == row.id).values(headers=sealed)
                )
        if len(rows) < BATCH:
            return
        last = rows[-1].id


def downgrade() -> None:
    # Sealed values stay sealed. Releases before this one would send them as they are stored:
    # run no such release against this registry again.
    pass


def _sealed(box: SecretBox, value: str, endpoint_id: str) -> str:
    """``value`` sealed, unless it is already sealed with a key of ``box``."""
    if value.startswith(PREFIX):
        try:
            box.open(value)
        except SecretBoxError:
            log.warning(
                "endpoint %s: a header value that looks sealed does not open with any "
                "configured key; taken as clear text and sealed",
                endpoint_id,
            )
        else:
            return value
    return box.seal(value)

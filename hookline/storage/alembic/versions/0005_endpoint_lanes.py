"""Endpoints' lane settings: rate limit, in-flight limit, ordering, pause

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("rate_limit_per_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("max_in_flight", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("ordering", sa.String(length=8), nullable=False, server_default="none")
        )
        batch.add_column(
            sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        for column in ("paused", "ordering", "max_in_flight", "rate_limit_per_s"):
            batch.drop_column(column)

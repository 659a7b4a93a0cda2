"""Each logged attempt records the URL it went to

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: attempts logged before this release recorded no URL.
    op.add_column("attempts", sa.Column("url", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("attempts", "url")

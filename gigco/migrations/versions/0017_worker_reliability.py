"""Workers' reliability: how many jobs each withdrew from, and how many they did not come to.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 23:00:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0017"
down_revision: Union[str, Sequence[str], None] = "0016"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        "workers",
        sa.Column(
            "withdrawals",
            sa.Integer(),
            nullable=False,
            server_default="0",
            comment="jobs this worker withdrew from once assigned",
        ),
    )
    op.add_column(
        "workers",
        sa.Column(
            "no_shows",
            sa.Integer(),
            nullable=False,
            server_default="0",
            comment="scheduled jobs this worker did not start in time",
        ),
    )


def downgrade() -> None:
    """Drop them (native DROP COLUMN: a batch copy of workers would lose nothing, but is slow)."""
    op.execute("ALTER TABLE workers DROP COLUMN no_shows")
    op.execute("ALTER TABLE workers DROP COLUMN withdrawals")

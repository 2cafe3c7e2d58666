"""Workers' reliability: how many jobs each withdrew from, and how many they did not come to;
and when work in progress was flagged as an overrun (with the ops console's partial index).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 23:00:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db

revision: str = "0017"
down_revision: Union[str, Sequence[str], None] = "0016"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_OVERRUNNING = (
    "overrun_flagged_at IS NOT NULL AND status = 'in_progress' AND test_clock_id IS NULL"
)


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
    op.add_column(
        "jobs",
        sa.Column(
            "overrun_flagged_at",
            gigco.db.UTCDateTime(timezone=True),
            nullable=True,
            comment="when work in progress was flagged as running past its expected end",
        ),
    )
    op.create_index(
        "ix_jobs_overrun",
        "jobs",
        ["overrun_flagged_at"],
        postgresql_where=sa.text(_OVERRUNNING),
        sqlite_where=sa.text(_OVERRUNNING),
    )


def downgrade() -> None:
    """Drop them (native DROP COLUMN: a batch copy of jobs would lose its triggers)."""
    op.drop_index("ix_jobs_overrun", table_name="jobs")
    op.execute("ALTER TABLE jobs DROP COLUMN overrun_flagged_at")
    op.execute("ALTER TABLE workers DROP COLUMN no_shows")
    op.execute("ALTER TABLE workers DROP COLUMN withdrawals")

"""Keep the previous release running: jobs.next_match_at and next_payment_at come back.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 23:00:00

Migration 0010 dropped the two shadow deadlines in the same release that stopped using them:
a contract step taken too early, which 0.1.0 (whose every read of a job names them) cannot
run on. They return, nullable and unused by 0.2.0, so that 0.1.0 workers and API processes
keep working while a rollout replaces them (docs/deploy.md); the release after 0.2.0 drops
them again, when no 0.1.0 process is left. 0.1.0 writes them beside timer_at, as it always
did; 0.2.0 reads timer_at only.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db

revision: str = "0015"
down_revision: Union[str, Sequence[str], None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# An accepted job waits between matching rounds when it has a deadline and no pending
# opportunity (as in 0010's downgrade).
_NO_PENDING = (
    "NOT EXISTS (SELECT 1 FROM opportunities o"
    " WHERE o.job_id = jobs.id AND o.status = 'pending')"
)


def upgrade() -> None:
    """Add the two columns back and fill them from timer_at for the jobs in flight now."""
    for name in ("next_match_at", "next_payment_at"):
        op.add_column(
            "jobs",
            sa.Column(
                name,
                gigco.db.UTCDateTime(timezone=True),
                nullable=True,
                comment="written by 0.1.0 only; dropped by the release after 0.2.0",
            ),
        )
    op.execute(
        "UPDATE jobs SET next_match_at = timer_at"
        f" WHERE status = 'accepted' AND timer_at IS NOT NULL AND {_NO_PENDING}"
    )
    op.execute(
        "UPDATE jobs SET next_payment_at = coalesce(timer_at, step_due_at)"
        " WHERE status = 'completed'"
    )


def downgrade() -> None:
    """Drop them (native DROP COLUMN on SQLite: a batch copy of jobs would lose its triggers)."""
    op.execute("ALTER TABLE jobs DROP COLUMN next_payment_at")
    op.execute("ALTER TABLE jobs DROP COLUMN next_match_at")

"""One deadline model: the next matching round and the next payment attempt are timer_at.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 21:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db

revision: str = "0010"
down_revision: Union[str, Sequence[str], None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# An accepted job waits between matching rounds when it has a deadline and no pending
# opportunity (the same test as gigco.lifecycle.matching.match_job).
_NO_PENDING = (
    "NOT EXISTS (SELECT 1 FROM opportunities o"
    " WHERE o.job_id = jobs.id AND o.status = 'pending')"
)


def upgrade() -> None:
    """Carry each shadow deadline into timer_at where they differ, then drop the shadows.

    Both were written with timer_at, so they differ only on a job whose step is not due now
    and whose deadline was lost; a deadline that moves is not yet sent (timer_armed_at)."""
    op.execute(
        "UPDATE jobs SET timer_at = next_match_at, timer_armed_at = NULL"
        " WHERE status = 'accepted' AND next_match_at IS NOT NULL AND step_due_at IS NULL"
        " AND (timer_at IS NULL OR timer_at <> next_match_at)"
    )
    # A payment due now (just completed or retried) is step_due_at already; a lease or a
    # retry's backoff is the deadline.
    op.execute(
        "UPDATE jobs SET timer_at = next_payment_at, timer_armed_at = NULL"
        " WHERE status = 'completed' AND next_payment_at IS NOT NULL AND step_due_at IS NULL"
        " AND (timer_at IS NULL OR timer_at <> next_payment_at)"
    )
    # Native DROP COLUMN on SQLite too (3.35+): a batch copy of jobs would lose its triggers.
    op.execute("ALTER TABLE jobs DROP COLUMN next_match_at")
    op.execute("ALTER TABLE jobs DROP COLUMN next_payment_at")


def downgrade() -> None:
    """The shadow columns again, read back from the deadline columns."""
    op.add_column(
        "jobs",
        sa.Column(
            "next_match_at",
            gigco.db.UTCDateTime(timezone=True),
            nullable=True,
            comment="when the next matching round starts",
        ),
    )
    op.add_column(
        "jobs",
        sa.Column(
            "next_payment_at",
            gigco.db.UTCDateTime(timezone=True),
            nullable=True,
            comment="when the next charge attempt is due",
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

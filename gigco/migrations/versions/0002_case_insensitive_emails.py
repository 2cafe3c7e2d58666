"""Emails unique regardless of case; notifications found by job.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 23:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Replace the case-sensitive email constraints with unique indexes on lower(email)."""
    for table in ("consumers", "workers"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_email", type_="unique")
        op.create_index(f"uq_{table}_lower_email", table, [sa.text("lower(email)")], unique=True)
    op.create_index("ix_notifications_job_id", "notifications", ["job_id"])


def downgrade() -> None:
    """Back to case-sensitive unique emails."""
    op.drop_index("ix_notifications_job_id", table_name="notifications")
    for table in ("consumers", "workers"):
        op.drop_index(f"uq_{table}_lower_email", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.create_unique_constraint(f"uq_{table}_email", ["email"])

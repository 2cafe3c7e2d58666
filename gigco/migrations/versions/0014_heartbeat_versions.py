"""Heartbeats name the release each worker and beat runs, for /ops/system during a rollout.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 22:30:00

Expand only: the previous release writes its heartbeats without the column (it shows as
"before 0.2.0").
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0014"
down_revision: Union[str, Sequence[str], None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add heartbeats.version."""
    op.add_column(
        "heartbeats",
        sa.Column(
            "version",
            sa.String(length=32),
            nullable=True,
            comment="the GigCo release the process runs (none: before 0.2.0)",
        ),
    )


def downgrade() -> None:
    """Drop heartbeats.version."""
    op.execute("ALTER TABLE heartbeats DROP COLUMN version")

"""Heartbeats of workers and beat, for /healthz and the worker's liveness probe.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create the heartbeats table."""
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="worker or beat"),
        sa.Column(
            "started_at",
            gigco.db.UTCDateTime(timezone=True),
            nullable=True,
            comment="when the process started (a new one is healthy until its bound has passed)",
        ),
        sa.Column(
            "beat_at",
            gigco.db.UTCDateTime(timezone=True),
            nullable=True,
            comment="a worker: its last task finished; a beat: its last sweep sent",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )


def downgrade() -> None:
    """Drop the heartbeats table."""
    op.drop_table("heartbeats")

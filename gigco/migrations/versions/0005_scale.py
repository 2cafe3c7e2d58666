"""Scale: matching's spatial index, the list and sweep-claim indexes, jobs.timer_armed_at.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add cube + earthdistance and the GiST index (PostgreSQL), the claim column, indexes."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS cube")
        op.execute("CREATE EXTENSION IF NOT EXISTS earthdistance")
        op.execute("CREATE INDEX ix_workers_earth ON workers USING gist (ll_to_earth(lat, lng))")
    op.create_index("ix_workers_service_radius_km", "workers", ["service_radius_km"])
    op.create_index("ix_jobs_worker_id_id", "jobs", ["worker_id", "id"])
    op.add_column(
        "jobs",
        sa.Column(
            "timer_armed_at",
            gigco.db.UTCDateTime(timezone=True),
            nullable=True,
            comment="when a sweep last sent timer_at's task; cleared whenever timer_at is written",
        ),
    )
    where = "timer_at IS NOT NULL AND timer_armed_at IS NULL"
    op.create_index(
        "ix_jobs_timer_unarmed",
        "jobs",
        ["timer_at"],
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )
    where = "timer_armed_at IS NOT NULL"
    op.create_index(
        "ix_jobs_timer_armed_at",
        "jobs",
        ["timer_armed_at"],
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def downgrade() -> None:
    """Drop them again (the extensions stay: other objects may use them)."""
    op.drop_index("ix_jobs_timer_armed_at", table_name="jobs")
    op.drop_index("ix_jobs_timer_unarmed", table_name="jobs")
    op.drop_column("jobs", "timer_armed_at")
    op.drop_index("ix_jobs_worker_id_id", table_name="jobs")
    op.drop_index("ix_workers_service_radius_km", table_name="workers")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_workers_earth", table_name="workers")

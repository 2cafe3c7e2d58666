"""Late-cancellation fees and recent strikes: what a payment charges (a job's price or its
late-cancellation fee), and each withdrawal or no-show with its time, indexed per worker.

Expand-only: the previous release writes payments without ``kind`` (its default, ``job``)
and never reads ``worker_strikes``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 01:00:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db

revision: str = "0018"
down_revision: Union[str, Sequence[str], None] = "0017"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        "payments",
        sa.Column(
            "kind",
            sa.String(length=16),
            nullable=False,
            server_default="job",
            comment="what is charged: the job's price (job) or a late-cancellation fee",
        ),
    )
    if op.get_bind().dialect.name == "postgresql":  # SQLite adds no constraint without a copy
        op.create_check_constraint(
            op.f("ck_payments_kind"), "payments", "kind IN ('job', 'late_cancel_fee')"
        )
    op.create_table(
        "worker_strikes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind", sa.String(length=16), nullable=False, comment="withdrawal or no_show"
        ),
        sa.Column("at", gigco.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('withdrawal', 'no_show')", name=op.f("ck_worker_strikes_kind")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_worker_strikes_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"],
            ["workers.id"],
            name=op.f("fk_worker_strikes_worker_id_workers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_strikes")),
    )
    op.create_index(
        "ix_worker_strikes_worker_id_at", "worker_strikes", ["worker_id", "at"], unique=False
    )


def downgrade() -> None:
    """Drop them (native DROP COLUMN: no batch copy of payments)."""
    op.drop_index("ix_worker_strikes_worker_id_at", table_name="worker_strikes")
    op.drop_table("worker_strikes")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_payments_kind"), "payments", type_="check")
    op.execute("ALTER TABLE payments DROP COLUMN kind")

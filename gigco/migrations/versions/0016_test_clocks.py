"""Test clocks: the clocks, a job's clock, and real sweeps' indexes without clock jobs.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 22:20:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db

revision: str = "0016"
down_revision: Union[str, Sequence[str], None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The real sweeps' partial indexes, before and after: clock jobs are left out of them.
_SWEPT = {
    "ix_jobs_timer_unarmed": ("timer_at", "timer_at IS NOT NULL AND timer_armed_at IS NULL"),
    "ix_jobs_timer_armed_at": ("timer_armed_at", "timer_armed_at IS NOT NULL"),
    "ix_jobs_step_due_at": ("step_due_at", "step_due_at IS NOT NULL"),
}


def _index(name: str, column: str, where: str) -> None:
    op.create_index(
        name, "jobs", [column], postgresql_where=sa.text(where), sqlite_where=sa.text(where)
    )


def upgrade() -> None:
    op.create_table(
        "test_clocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "owner",
            sa.String(length=64),
            nullable=False,
            comment="the actor name of the party that made it (consumer:<id>, …)",
        ),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("frozen_time", gigco.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "advance_to",
            gigco.db.UTCDateTime(timezone=True),
            nullable=True,
            comment="where an advance under way is going; NULL when the clock is ready",
        ),
        sa.Column(
            "deleted_at",
            gigco.db.UTCDateTime(timezone=True),
            nullable=True,
            comment="a deleted clock stays, so its jobs stay off real time",
        ),
        sa.Column("created_at", gigco.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_clocks")),
    )
    op.create_index("ix_test_clocks_owner_id", "test_clocks", ["owner", "id"])
    comment = "the test clock the job runs on; NULL (every real job) is real time"
    if op.get_bind().dialect.name == "sqlite":
        # Native ADD COLUMN (a batch copy of jobs would lose its triggers); SQLite takes the
        # reference inline only.
        op.execute(
            "ALTER TABLE jobs ADD COLUMN test_clock_id INTEGER"
            " CONSTRAINT fk_jobs_test_clock_id_test_clocks REFERENCES test_clocks (id)"
        )
    else:
        op.add_column(
            "jobs", sa.Column("test_clock_id", sa.Integer(), nullable=True, comment=comment)
        )
        op.create_foreign_key(
            op.f("fk_jobs_test_clock_id_test_clocks"),
            "jobs",
            "test_clocks",
            ["test_clock_id"],
            ["id"],
        )
    where = "test_clock_id IS NOT NULL"
    op.create_index(
        "ix_jobs_test_clock_timer",
        "jobs",
        ["test_clock_id", "timer_at"],
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )
    for name, (column, where) in _SWEPT.items():
        op.drop_index(name, table_name="jobs")
        _index(name, column, f"{where} AND test_clock_id IS NULL")


def downgrade() -> None:
    for name, (column, where) in _SWEPT.items():
        op.drop_index(name, table_name="jobs")
        _index(name, column, where)
    op.drop_index("ix_jobs_test_clock_timer", table_name="jobs")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("fk_jobs_test_clock_id_test_clocks"), "jobs", type_="foreignkey")
    op.execute("ALTER TABLE jobs DROP COLUMN test_clock_id")
    op.drop_index("ix_test_clocks_owner_id", table_name="test_clocks")
    op.drop_table("test_clocks")

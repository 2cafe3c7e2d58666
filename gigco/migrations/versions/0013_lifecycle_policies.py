"""Lifecycle policies: each job keeps the rules it was created under.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:00:00

Expand only: jobs.policy_version is nullable, so the previous release (which does not write
it) still creates jobs; a later release's contract step fills and tightens it.
"""
import datetime as dt
import hashlib
import json
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import gigco.db
from gigco.models.columns import JSONType

revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Version 1: the defaults every job before this migration ran under (lifecycle.md's table,
# the 10 % fee) and the categories' rates as they are now. The values and their hash are
# written exactly as gigco.lifecycle.policies writes them, so a process on the defaults
# finds this row instead of adding a second one.
DEFAULTS = {
    "offer_ttl_seconds": 86400.0,
    "opportunity_ttl_seconds": 900.0,
    "match_retry_base_seconds": 300.0,
    "match_max_rounds": 5,
    "review_window_seconds": 604800.0,
    "payment_max_attempts": 5,
    "payment_retry_base_seconds": 60.0,
    "fee_rate": "0.10",
}


def version_one(rates: dict[str, int]) -> tuple[dict[str, object], str]:
    """Version 1's values and their hash, given the categories' rates."""
    values = {**DEFAULTS, "hourly_rates": dict(sorted(rates.items()))}
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return values, hashlib.sha256(canonical.encode()).hexdigest()


def upgrade() -> None:
    """Create the table, version 1, and point every existing job at it."""
    policies = op.create_table(
        "lifecycle_policies",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "values_hash",
            sa.String(length=64),
            nullable=False,
            comment="sha256 of the values' canonical JSON",
        ),
        sa.Column("values", JSONType, nullable=False),
        sa.Column("created_at", gigco.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_lifecycle_policies")),
        sa.UniqueConstraint("values_hash", name=op.f("uq_lifecycle_policies_values_hash")),
    )
    conn = op.get_bind()
    rates = dict(conn.execute(sa.text("SELECT name, hourly_rate_cents FROM categories")).all())
    values, digest = version_one({name: int(rate) for name, rate in rates.items()})
    op.bulk_insert(
        policies,
        [{"version": 1, "values_hash": digest, "values": values, "created_at": dt.datetime.now(dt.UTC)}],
    )
    comment = "the lifecycle policy the job runs under (gigco.lifecycle.policies)"
    if conn.dialect.name == "sqlite":
        # Native ADD COLUMN … REFERENCES: a batch copy of jobs would lose its triggers.
        op.execute(
            "ALTER TABLE jobs ADD COLUMN policy_version INTEGER"
            " REFERENCES lifecycle_policies (version)"
        )
    else:
        op.add_column("jobs", sa.Column("policy_version", sa.Integer(), nullable=True, comment=comment))
        op.create_foreign_key(
            op.f("fk_jobs_policy_version_lifecycle_policies"),
            "jobs",
            "lifecycle_policies",
            ["policy_version"],
            ["version"],
        )
    op.execute("UPDATE jobs SET policy_version = 1")


def downgrade() -> None:
    """Drop the column and the table (jobs then follow the running settings again)."""
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(
            op.f("fk_jobs_policy_version_lifecycle_policies"), "jobs", type_="foreignkey"
        )
    op.execute("ALTER TABLE jobs DROP COLUMN policy_version")
    op.drop_table("lifecycle_policies")

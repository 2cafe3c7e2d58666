"""Counters of jobs per status and history events per kind, kept by triggers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 12:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SHARDS = 16

# Lifecycle order: a status change takes its two counter rows in this order, so two
# transactions moving jobs of one shard forward cannot each hold the row the other wants.
ORDER = (
    "draft priced offered accepted worker_assigned scheduled in_progress completed "
    "payment_failed paid review_pending closed rejected expired cancelled no_worker"
).split()

_PG_FUNCTIONS = f"""
CREATE FUNCTION gigco_jobs_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ordered text[] := ARRAY[{", ".join(f"'{s}'" for s in ORDER)}];
  statuses text[];
  deltas int[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    statuses := ARRAY[NEW.status]; deltas := ARRAY[1];
  ELSIF TG_OP = 'DELETE' THEN
    statuses := ARRAY[OLD.status]; deltas := ARRAY[-1];
  ELSIF array_position(ordered, OLD.status::text) < array_position(ordered, NEW.status::text)
  THEN
    statuses := ARRAY[OLD.status, NEW.status]; deltas := ARRAY[-1, 1];
  ELSE
    statuses := ARRAY[NEW.status, OLD.status]; deltas := ARRAY[1, -1];
  END IF;
  -- One statement; its rows are taken in the order given (WITH ORDINALITY).
  INSERT INTO job_status_counts (status, shard, n)
  SELECT s, coalesce(NEW.id, OLD.id) % {SHARDS}, d
  FROM unnest(statuses, deltas) WITH ORDINALITY AS u(s, d, k) ORDER BY k
  ON CONFLICT ON CONSTRAINT pk_job_status_counts
  DO UPDATE SET n = job_status_counts.n + excluded.n;
  RETURN NULL;
END $$;

CREATE FUNCTION gigco_job_events_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_event_counts (type, from_status, to_status, shard, n)
  VALUES (NEW.type, coalesce(NEW.from_status, ''), coalesce(NEW.to_status, ''),
          NEW.job_id % {SHARDS}, 1)
  ON CONFLICT ON CONSTRAINT pk_job_event_counts DO UPDATE SET n = job_event_counts.n + 1;
  RETURN NULL;
END $$;

CREATE TRIGGER jobs_counted AFTER INSERT OR DELETE ON jobs
  FOR EACH ROW EXECUTE FUNCTION gigco_jobs_counted();
CREATE TRIGGER jobs_status_counted AFTER UPDATE OF status ON jobs
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION gigco_jobs_counted();
CREATE TRIGGER job_events_counted AFTER INSERT ON job_events
  FOR EACH ROW EXECUTE FUNCTION gigco_job_events_counted();
"""

# SQLite (the embedded development default) has one writer at a time: no ordering needed.
_UPSERT = (
    "INSERT INTO job_status_counts (status, shard, n) VALUES ({row}.status, {row}.id % "
    f"{SHARDS}, {{delta}}) ON CONFLICT (status, shard) DO UPDATE SET n = n + excluded.n;"
)
_SQLITE = [
    "CREATE TRIGGER jobs_counted_insert AFTER INSERT ON jobs BEGIN "
    + _UPSERT.format(row="NEW", delta=1)
    + " END",
    "CREATE TRIGGER jobs_counted_delete AFTER DELETE ON jobs BEGIN "
    + _UPSERT.format(row="OLD", delta=-1)
    + " END",
    "CREATE TRIGGER jobs_status_counted AFTER UPDATE OF status ON jobs "
    "WHEN OLD.status IS NOT NEW.status BEGIN "
    + _UPSERT.format(row="OLD", delta=-1)
    + " "
    + _UPSERT.format(row="NEW", delta=1)
    + " END",
    "CREATE TRIGGER job_events_counted AFTER INSERT ON job_events BEGIN "
    "INSERT INTO job_event_counts (type, from_status, to_status, shard, n) VALUES (NEW.type, "
    f"coalesce(NEW.from_status, ''), coalesce(NEW.to_status, ''), NEW.job_id % {SHARDS}, 1) "
    "ON CONFLICT (type, from_status, to_status, shard) DO UPDATE SET n = n + 1; END",
]

BACKFILL = [
    "INSERT INTO job_status_counts (status, shard, n)"
    f" SELECT status, id % {SHARDS}, count(*) FROM jobs GROUP BY status, id % {SHARDS}",
    "INSERT INTO job_event_counts (type, from_status, to_status, shard, n)"
    " SELECT type, coalesce(from_status, ''), coalesce(to_status, ''),"
    f" job_id % {SHARDS}, count(*) FROM job_events"
    f" GROUP BY type, coalesce(from_status, ''), coalesce(to_status, ''), job_id % {SHARDS}",
]


def upgrade() -> None:
    """Create the counter tables and their triggers, then count what is there.

    On PostgreSQL the triggers and the backfill are one transaction, and creating a trigger
    locks its table against writes until the commit: no write is missed or counted twice.
    """
    op.create_table(
        "job_status_counts",
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("status", "shard", name=op.f("pk_job_status_counts")),
    )
    op.create_table(
        "job_event_counts",
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=False),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "type", "from_status", "to_status", "shard", name=op.f("pk_job_event_counts")
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTIONS)
    else:
        for statement in _SQLITE:
            op.execute(statement)
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    """Drop the triggers, their functions and the counter tables."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER job_events_counted ON job_events")
        op.execute("DROP TRIGGER jobs_status_counted ON jobs")
        op.execute("DROP TRIGGER jobs_counted ON jobs")
        op.execute("DROP FUNCTION gigco_job_events_counted()")
        op.execute("DROP FUNCTION gigco_jobs_counted()")
    else:
        for name in (
            "job_events_counted",
            "jobs_status_counted",
            "jobs_counted_delete",
            "jobs_counted_insert",
        ):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("job_event_counts")
    op.drop_table("job_status_counts")

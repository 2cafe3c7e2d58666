"""Sweeps: queries over the deadline indexes that find what is due. Cost follows the rows due."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.schedule import STEP_FOR_STATUS
from gigco.lifecycle.transitions import Due
from gigco.models import Job

BATCH = 1000


def due_timers(session: Session, *, now: dt.datetime, horizon_seconds: float) -> list[Due]:
    """Deadlines already due (``at`` ≤ now) and those due before ``now + horizon``.

    Reads ``ix_jobs_timer_at`` (partial: only jobs with a pending deadline) in keyset pages,
    so the cost follows the number of deadlines in the window, not the size of the table.
    """
    until = now + dt.timedelta(seconds=horizon_seconds)
    found: list[Due] = []
    after: tuple[dt.datetime, int] | None = None
    while True:
        stmt = (
            sa.select(Job.id, Job.status, Job.timer_at)
            .where(Job.timer_at.is_not(None), Job.timer_at <= until)
            .order_by(Job.timer_at, Job.id)
            .limit(BATCH)
        )
        if after is not None:
            stmt = stmt.where(sa.tuple_(Job.timer_at, Job.id) > sa.tuple_(*after))
        rows = session.execute(stmt).all()
        found += [
            Due(STEP_FOR_STATUS[st], job_id, at) for job_id, st, at in rows if st in STEP_FOR_STATUS
        ]
        if len(rows) < BATCH:
            return found
        after = (rows[-1].timer_at, rows[-1].id)


def stuck_steps(session: Session, *, now: dt.datetime, grace_seconds: float) -> list[Due]:
    """Steps overdue by the grace; their ``step_due_at`` restarts so each is re-kicked once.

    Reads ``ix_jobs_step_due_at``; on PostgreSQL ``SKIP LOCKED`` lets two sweepers share the
    work instead of both taking it.
    """
    found: list[Due] = []
    while True:
        overdue = (
            sa.select(Job.id)
            .where(
                Job.step_due_at.is_not(None),
                Job.step_due_at <= now - dt.timedelta(seconds=grace_seconds),
            )
            .order_by(Job.step_due_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        rows = session.execute(
            sa.update(Job)
            .where(Job.id.in_(overdue))
            .values(step_due_at=now)
            .returning(Job.id, Job.status)
            .execution_options(synchronize_session=False)
        ).all()
        found += [Due(STEP_FOR_STATUS[st], job_id) for job_id, st in rows if st in STEP_FOR_STATUS]
        if len(rows) < BATCH:
            return found

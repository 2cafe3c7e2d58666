"""Sweeps: queries over the deadline indexes that find what is due. Cost follows the rows due."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.lifecycle.history import Due
from gigco.lifecycle.states import STEP_FOR_STATUS
from gigco.models import Job

BATCH = 1000


def due_timers(session: Session, *, now: dt.datetime, horizon_seconds: float) -> list[Due]:
    """Deadlines already due (``at`` ≤ now) and those due before ``now + horizon``.

    Reads ``ix_jobs_timer_at`` (partial: only jobs with a pending deadline).
    """
    until = now + dt.timedelta(seconds=horizon_seconds)
    rows = session.execute(
        sa.select(Job.id, Job.status, Job.timer_at)
        .where(Job.timer_at.is_not(None), Job.timer_at <= until)
        .order_by(Job.timer_at)
        .limit(BATCH)
    ).all()
    return [
        Due(STEP_FOR_STATUS[status], job_id, at)
        for job_id, status, at in rows
        if status in STEP_FOR_STATUS
    ]


def stuck_steps(session: Session, *, now: dt.datetime, grace_seconds: float) -> list[Due]:
    """Steps overdue by the grace; their ``step_due_at`` restarts so each is re-kicked once.

    Reads ``ix_jobs_step_due_at``; on PostgreSQL ``SKIP LOCKED`` lets two sweepers share the
    work instead of both taking it.
    """
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
    return [
        Due(STEP_FOR_STATUS[status], job_id) for job_id, status in rows if status in STEP_FOR_STATUS
    ]

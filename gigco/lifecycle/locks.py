"""A job's row lock, taken once per transaction.

While the lock is held nobody else can change the row, so a second ``lock_job`` in the same
transaction returns the loaded job without another round trip.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import built_once
from gigco.models import Job

_LOCKED = "gigco_locked_jobs"


def lock_job(session: Session, job_id: int) -> Job | None:
    """Re-read job ``job_id`` under a row lock (PostgreSQL), or None if it is gone."""
    owner, locked = session.info.get(_LOCKED, (None, {}))
    if owner is not None and owner is session.get_transaction() and job_id in locked:
        known: Job = locked[job_id]
        if known in session:
            return known
    job = session.scalars(_lock_statement(), {"job_id": job_id}).first()
    if job is not None:
        remember_lock(session, job)
    return job


@built_once
def _lock_statement() -> sa.Select[Job]:
    """The job under its row lock, fresh. OF jobs: the job is loaded joined to its category,
    and a bare FOR UPDATE would lock the category's row as well, serialising every step and
    every new job of a category."""
    return (
        sa.select(Job)
        .where(Job.id == sa.bindparam("job_id"))
        .with_for_update(of=Job)
        .execution_options(populate_existing=True)
    )


def remember_lock(session: Session, job: Job) -> None:
    """Note that ``job`` was just read under its row lock in this transaction (``lock_job``
    then returns it without another round trip)."""
    owner, locked = session.info.get(_LOCKED, (None, {}))
    transaction = session.get_transaction()
    if owner is not transaction:
        locked = {}
    # Held here, not only in the session's weak identity map: a caller that let go of the
    # job would otherwise make the next call load it again.
    locked[job.id] = job
    session.info[_LOCKED] = (transaction, locked)

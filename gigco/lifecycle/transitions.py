"""The one way a job's status changes: the allowed moves, compare-and-set, history event.

``transition`` also writes what is due next (a ``Next``) into the job's deadline columns,
and ``dues_of`` reads them back as the ``Due`` a caller enqueues, so the two cannot
disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import utcnow
from gigco.lifecycle.errors import Conflict, NotFound
from gigco.lifecycle.schedule import STEP_FOR_STATUS, Next, Step
from gigco.models import Job, JobEvent, JobStatus
from gigco.models import JobStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.DRAFT: frozenset({S.PRICED, S.CANCELLED}),
    S.PRICED: frozenset({S.OFFERED, S.CANCELLED}),
    S.OFFERED: frozenset({S.ACCEPTED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.WORKER_ASSIGNED, S.NO_WORKER, S.CANCELLED}),
    S.WORKER_ASSIGNED: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.IN_PROGRESS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset({S.PAID, S.PAYMENT_FAILED}),
    S.PAYMENT_FAILED: frozenset({S.COMPLETED}),
    S.PAID: frozenset({S.REVIEW_PENDING}),
    S.REVIEW_PENDING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.NO_WORKER: frozenset(),
}

TERMINAL = frozenset(status for status, moves in TRANSITIONS.items() if not moves)

CANCELLABLE = frozenset(status for status, moves in TRANSITIONS.items() if S.CANCELLED in moves)

SYSTEM = "system"
OPERATOR = "operator"


def consumer_actor(consumer_id: int) -> str:
    """The actor string of a consumer."""
    return f"consumer:{consumer_id}"


def worker_actor(worker_id: int) -> str:
    """The actor string of a worker."""
    return f"worker:{worker_id}"


@dataclass(frozen=True)
class Due:
    """A step that is due on a job: now when ``at`` is None, else at ``at``."""

    step: Step
    job_id: int
    at: dt.datetime | None = None


def dues_of(job: Job | None) -> list[Due]:
    """What its deadline columns say is due on ``job``: its status's step, now or at a time."""
    step = STEP_FOR_STATUS.get(job.status) if job is not None else None
    if job is None or step is None:
        return []
    if job.step_due_at is not None:
        return [Due(step, job.id)]
    if job.timer_at is not None:
        return [Due(step, job.id, job.timer_at)]
    return []


def set_next(job: Job, then: Next, now: dt.datetime) -> list[Due]:
    """Write ``then`` into a loaded (locked) job's deadline columns; return what is due."""
    for column, value in then.columns(now).items():
        setattr(job, column, value)
    return dues_of(job)


class StatusConflict(Conflict):
    """The job is not in a status that allows the move; names the current status."""

    def __init__(self, job_id: int, current: JobStatus, wanted: str):
        super().__init__(
            f"Job {job_id} is {current.value}; {wanted} is not allowed in that status.",
            current_status=current.value,
        )
        self.current = current


def transition(
    session: Session,
    job_id: int,
    from_: JobStatus,
    to: JobStatus,
    *,
    actor: str,
    then: Next,
    event: str | None = None,
    data: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    where: Iterable[sa.ColumnElement[bool]] = (),
    now: dt.datetime | None = None,
) -> Job | None:
    """Move job ``job_id`` from ``from_`` to ``to`` if it is still there; write the event.

    One ``UPDATE … WHERE id = :id AND status = :from RETURNING`` that also takes the next
    event ``seq`` and writes ``then`` (what is due next) into the deadline columns; the
    caller returns ``dues_of(job)``. Returns the updated job, or None when the job was
    elsewhere (a lost race): a task then does nothing, an action raises with
    ``require_transition``.
    """
    if to not in TRANSITIONS[from_]:
        raise ValueError(f"{from_} -> {to} is not in the transitions table")
    if then.is_due and to not in STEP_FOR_STATUS:
        raise ValueError(f"no step acts on a {to} job, so none can be due")
    now = now or utcnow()
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == from_, *where)
        .values(
            status=to,
            event_seq=Job.event_seq + 1,
            updated_at=now,
            **then.columns(now),
            **(values or {}),
        )
        .returning(Job)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    job = session.scalars(stmt).one_or_none()
    if job is None:
        return None
    written = JobEvent(
        job_id=job_id,
        seq=job.event_seq,
        type=event or to.value,
        from_status=from_,
        to_status=to,
        actor=actor,
        data=data or {},
        created_at=now,
    )
    session.add(written)
    write_outbox(session, job_id, written)
    return job


def require_transition(
    session: Session,
    job_id: int,
    from_: JobStatus,
    to: JobStatus,
    *,
    wanted: str,
    **kwargs: Any,
) -> Job:
    """Like ``transition`` but raise StatusConflict, naming the current status, on a lost race."""
    job = transition(session, job_id, from_, to, **kwargs)
    if job is None:
        current = session.scalar(sa.select(Job.status).where(Job.id == job_id))
        if current is None:
            raise NotFound(f"Job {job_id} not found.")
        raise StatusConflict(job_id, current, wanted)
    return job


def record_event(
    session: Session,
    job_id: int,
    type_: str,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> JobEvent:
    """Write a history event that changes no status, taking the job's next ``seq``."""
    now = now or utcnow()
    seq = session.execute(
        sa.update(Job)
        .where(Job.id == job_id)
        .values(event_seq=Job.event_seq + 1)
        .returning(Job.event_seq)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    event = JobEvent(
        job_id=job_id, seq=seq, type=type_, actor=actor, data=data or {}, created_at=now
    )
    session.add(event)
    write_outbox(session, job_id, event)
    return event


def write_outbox(session: Session, job_id: int, event: JobEvent) -> None:
    """Webhook deliveries of ``event``, in its transaction (gigco.lifecycle.webhooks)."""
    # Imported here: webhooks → projection → access, which imports this module.
    from gigco.lifecycle import webhooks

    webhooks.write_outbox(session, job_id, event)


_LOCKED = "gigco_locked_jobs"


def lock_job(session: Session, job_id: int) -> Job | None:
    """Re-read job ``job_id`` under a row lock (PostgreSQL), or None if it is gone.

    Once per transaction: while the lock is held nobody else can change the row, so a
    second call returns the loaded job without another round trip.
    """
    owner, locked = session.info.get(_LOCKED, (None, set()))
    if owner is not None and owner is session.get_transaction() and job_id in locked:
        known = session.get(Job, job_id)
        if known is not None:
            return known
    # OF jobs: the job is loaded joined to its category, and a bare FOR UPDATE would lock
    # the category's row as well, serialising every step and every new job of a category.
    job = session.get(Job, job_id, with_for_update={"of": Job}, populate_existing=True)
    if job is not None:
        transaction = session.get_transaction()
        if owner is not transaction:
            locked = set()
        locked.add(job_id)
        session.info[_LOCKED] = (transaction, locked)
    return job
